"""Claiming a run directory: one ``mannrl train`` at a time, for the run's whole life.

The claim is an exclusive ``flock`` on the directory itself, so a process that cannot get it
has written nothing there; the kernel drops the lock when the holder exits, even on SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from mannrl_gym.config import ConfigError


def holds_run(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a run that finished at least one epoch."""
    metrics = run_dir / "metrics.jsonl"
    return (run_dir / "checkpoint.pt").exists() or (metrics.exists() and metrics.stat().st_size > 0)


@contextmanager
def claim(run_dir: Path, new_run: bool, source: str) -> Iterator[Path]:
    """Hold ``run_dir`` exclusively until the block ends.

    ``new_run``: create the directory if needed and refuse one that already holds a run;
    otherwise (``--resume``) the directory must exist. Raises ConfigError, having written
    nothing, when another process holds the directory. A directory that was empty when
    claimed is removed again if the block fails before the first checkpoint is written.
    """
    run_dir = Path(run_dir)
    if new_run:
        run_dir.mkdir(parents=True, exist_ok=True)
    elif not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no run to resume here (not a directory)")
    handle = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{run_dir}: another `mannrl train` is running in this directory; "
                              f"wait for it to end, or choose another run_name") from None
        if new_run and holds_run(run_dir):
            raise ConfigError(f"{source}: run directory {run_dir} already holds a run; resume "
                              f"it with `mannrl train --resume {run_dir}` or choose another "
                              f"run_name")
        was_empty = not any(run_dir.iterdir())
        try:
            yield run_dir
        except BaseException:
            if was_empty and not (run_dir / "checkpoint.pt").exists():
                shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written left behind
            raise
    finally:
        os.close(handle)  # releases the lock
