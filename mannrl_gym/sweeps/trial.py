"""One sweep trial: a ``mannrl train`` child process that dies with the worker that started it.

``python -m mannrl_gym.sweeps.trial PARENT_PID train CONFIG ...`` asks Linux to SIGKILL it
when its parent dies (PR_SET_PDEATHSIG), so a worker killed with SIGKILL leaves no trainer
running on; then it replaces itself with ``python -m mannrl_gym.cli train CONFIG ...`` (exec
keeps the request), so the trial is exactly a ``mannrl train`` run and this module never
imports the command line that imports it.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mannrl_gym.sweeps.stopping import POLL_S, Stop, signal_group

PR_SET_PDEATHSIG = 1


class TrialFailed(RuntimeError):
    """A trial's training exited non-zero or logged no usable metric."""


def run_trial(config_file: str, metric: str, values: dict[str, Any], run_dir: Path,
              stop: Stop) -> float:
    """Train one trial with ``values`` overriding the config file; return ``metric`` from the
    last line of its metrics.jsonl. Raises Interrupted if ``stop`` was set while it ran (the
    trainer gets SIGTERM, then SIGKILL; its run directory keeps its last finished epoch)."""
    command = [sys.executable, "-m", "mannrl_gym.sweeps.trial", str(os.getpid()), "train",
               config_file, *trial_args(values), f"out_dir={run_dir.parent}",
               f"run_name={run_dir.name}", "progress=false"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "WANDB_SILENT": "true"},
                          start_new_session=True) as child:  # Ctrl-C reaches the sweep alone
        stdout, stderr = _wait(child, stop)
    if child.returncode != 0:
        stop.check()
        tail = (stderr or stdout).strip().splitlines()[-3:]
        raise TrialFailed(f"exit {child.returncode}: {' | '.join(tail)}")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    value = json.loads(lines[-1]).get(metric) if lines else None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TrialFailed(f"metric {metric!r} is {value!r} in the last line of metrics.jsonl")
    return float(value)


def trial_args(values: dict[str, Any]) -> list[str]:
    """The ``--key=value`` arguments that give a trial ``values`` (read back as YAML)."""
    return [f"--{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in values.items()]


def _wait(child: subprocess.Popen, stop: Stop) -> tuple[str, str]:
    """The child's output once it ends; signals its process group when ``stop`` asks to."""
    sent = None
    while True:
        try:
            return child.communicate(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            wanted = stop.wanted()
            if wanted is not None and wanted != sent:
                signal_group(child.pid, wanted)
                sent = wanted


def die_with_parent(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Get ``signum`` when the parent dies (Linux; elsewhere nothing happens); exit at once if
    it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(1)


def main(argv: list[str]) -> None:
    die_with_parent(int(argv[0]))
    os.execv(sys.executable, [sys.executable, "-m", "mannrl_gym.cli", *argv[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
