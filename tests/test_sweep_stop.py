"""A stopped `mannrl sweep` stops: real processes get SIGTERM / SIGINT (Ctrl-C) / SIGKILL, and
no worker or trainer runs on, their trials are marked, and the command says so in one line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from test_sweep import write_sweep


def descendants(pid: int) -> set[int]:
    """The live processes below ``pid`` (from /proc; zombies count as gone)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (not zombies)."""
    running = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                running.add(pid)
        except OSError:
            pass
    return running


def foreground_signals() -> None:
    """preexec_fn: the child's SIGINT at its default, as a terminal's foreground job has it
    (pytest itself may run as a shell's `&` job, whose children inherit SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, seconds: float) -> bool:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("workers, signum, whom", [
    (2, signal.SIGTERM, "parent"),   # kill -TERM <pid of mannrl sweep>
    (2, signal.SIGINT, "group"),     # Ctrl-C in a terminal: every process of the job
    (1, signal.SIGINT, "group"),
    (2, signal.SIGKILL, "parent"),   # the parent cannot react: its workers stop themselves
])
def test_a_stopped_sweep_stops_its_workers_and_marks_their_trials(tmp_path, workers, signum,
                                                                  whom):
    path = write_sweep(tmp_path, epochs=200)  # trials far longer than the test
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "mannrl_gym.cli", "sweep", str(path), "--trials", "6",
               "--workers", str(workers), "--out-dir", str(out)]
    sweep = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE,
                             preexec_fn=foreground_signals,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(list(out.glob("sweep/trial-*/config.yaml"))) == workers, 120)
        started = descendants(sweep.pid)  # workers and trainers
        assert len(started) >= 2 * workers - (workers == 1)
        os.killpg(sweep.pid, signum) if whom == "group" else sweep.send_signal(signum)
        stdout, stderr = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(started), 20), alive(started)
    if signum == signal.SIGKILL:
        assert sweep.returncode == -signal.SIGKILL
    else:
        assert sweep.returncode == 128 + signum
        assert stderr.strip() == (f"mannrl sweep: stopped by {signal.Signals(signum).name}: "
                                  f"trial{'s 0, 1' if workers == 2 else ' 0'} stopped and marked "
                                  f"failed (user attribute 'interrupted'); the same command "
                                  f"continues the study")
    assert "Traceback" not in stdout + stderr
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    # a worker's trial records the SIGTERM its parent (or the parent's death) sent
    expected = "SIGTERM" if workers > 1 else signal.Signals(signum).name
    assert wait_for(lambda: all(t.state.name == "FAIL" for t in study.get_trials()), 10)
    assert [(t.state.name, t.user_attrs.get("interrupted")) for t in study.get_trials()] == \
        [("FAIL", expected)] * workers  # and no trial started after the signal


@pytest.fixture
def foreground_sigint():
    """This process's SIGINT handled as in a terminal's foreground job: a shell's `&` job (a
    CI script started in the background, nohup) starts with SIGINT ignored, which ``Stop``
    rightly leaves ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_second_signal_asks_for_sigkill_and_handlers_are_put_back(foreground_sigint):
    from mannrl_gym.sweeps.stopping import Interrupted, Stop

    before = signal.getsignal(signal.SIGTERM)
    stop = Stop()
    stop.install()
    try:
        assert stop.wanted() is None
        stop.check()  # nothing asked yet
        os.kill(os.getpid(), signal.SIGTERM)
        assert wait_for(lambda: stop.signum == signal.SIGTERM, 5)
        assert stop.wanted() == signal.SIGTERM and stop.exit_code == 143
        with pytest.raises(Interrupted, match="stopped by SIGTERM"):
            stop.check()
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: no more waiting
        assert wait_for(lambda: stop.wanted() == signal.SIGKILL, 5)
        assert stop.signum == signal.SIGTERM  # the first signal is the one reported
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) is before
