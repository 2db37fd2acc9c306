"""``mannrl_gym.stopping``: a stop asked for by signal raises once and is remembered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from mannrl_gym import stopping


class Asked(Exception):
    pass


def test_the_first_signal_raises_later_ones_are_counted_and_the_flag_stays():
    restore = stopping.on_signal(Asked, signals=(signal.SIGUSR1,), ignore=(signal.SIGUSR2,))
    try:
        assert not stopping.requested()
        stopping.raise_if_requested()  # nothing asked: nothing raised
        with pytest.raises(Asked):
            os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs at the next bytecode
        os.kill(os.getpid(), signal.SIGUSR1)  # a second: no raise inside the cleanup
        os.kill(os.getpid(), signal.SIGUSR2)  # ignored outright
        assert stopping.requested()
        with pytest.raises(KeyboardInterrupt):  # the trainer's check after an epoch
            stopping.raise_if_requested()
    finally:
        restore()
        stopping.forget()
    assert not stopping.requested()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL


def test_a_run_stops_at_the_next_epoch_when_the_raise_was_lost(tmp_path):
    """A stop whose KeyboardInterrupt landed where Python swallows it (a finalizer): the
    trainer stops before its next epoch, as on Ctrl-C, instead of training on."""
    from conftest import small_config

    from mannrl_gym.trainer import Interrupted, train

    restore = stopping.on_signal(Asked, signals=(signal.SIGUSR1,))
    try:
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
        except Asked:  # swallowed, as a finalizer's exception is
            pass
        with pytest.raises(Interrupted) as stopped:
            train(small_config(out_dir=str(tmp_path)), tmp_path / "run")
    finally:
        restore()
        stopping.forget()
    assert stopped.value.epoch == 1 and not (tmp_path / "run").exists()
    assert "before its first checkpoint; nothing kept" in str(stopped.value)


def test_sigterm_after_the_results_line_does_not_fail_a_finished_run(tmp_path):
    """A sweep that stops just as a trial prints `results:` must not lose it: the exit that
    follows (wandb's teardown) ignores SIGTERM, and the command ends 0."""
    import subprocess
    import sys
    import time

    from conftest import ROOT

    command = [sys.executable, "-m", "mannrl_gym.cli", "train", str(ROOT / "configs/logic.yaml"),
               "epochs=1", "num_sequences=300", "eval_batch_size=64", f"out_dir={tmp_path}",
               "run_name=r", "wandb_mode=offline"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in process.stdout:
        if line.startswith("results:"):
            time.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            break
    process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read()
    assert (tmp_path / "r" / "summary.json").exists()


def test_once_the_work_is_written_further_signals_are_ignored():
    """After a run's results (or its interrupted line), Ctrl-C pressed again and again must
    not reach the exit handlers (torch's printed a KeyboardInterrupt traceback)."""
    code = ("import signal, sys\nfrom mannrl_gym import stopping\nstopping.done()\n"
            "print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN == "
            "signal.getsignal(signal.SIGTERM))\n"
            "import os\nos.kill(os.getpid(), signal.SIGINT)\nprint('alive')")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert said.returncode == 0 and said.stdout.split() == ["True", "alive"], said.stderr
