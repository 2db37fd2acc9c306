"""A run directory: claiming it (one ``mannrl train`` at a time, for the run's whole life) and
reading it back (``load_run``: its config and last checkpoint, for predict, plot, benchmarks).

The claim is an exclusive ``flock`` on the directory itself, so a process that cannot get it
has written nothing there; the kernel drops the lock when the holder exits, even on SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


from mannrl_gym import checkpoint, provenance
from mannrl_gym.config import Config, ConfigError, as_saved, from_mapping, read_yaml
from mannrl_gym.errors import not_a_run_dir

READ_ONLY = {"progress": False, "wandb_mode": "disabled"}  # a run read back logs nothing


def load_run_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The config saved in ``run_dir`` (``config.yaml``), with ``overrides`` (e.g. more epochs)
    applied; ConfigError naming the file if it is missing or invalid."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file() and (Path(run_dir) / "replicas.yaml").is_file():
        inside = sorted(d.name for d in Path(run_dir).iterdir() if (d / "config.yaml").is_file())
        raise ConfigError(f"{run_dir}: a replicated run (replicas.yaml); give one of its "
                          f"replicas' run directories: {', '.join(inside[:4])}"
                          f"{', ...' if len(inside) > 4 else ''} (e.g. {Path(run_dir) / inside[0]})"
                          if inside else f"{run_dir}: a replicated run with no replica yet")
    if not path.is_file():
        raise ConfigError(f"{run_dir}: {not_a_run_dir(run_dir, 'config.yaml')}")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a run's config (a mapping of keys to values)")
    return from_mapping({**as_saved(data), **(overrides or {})}, source=str(path))


@dataclass
class SavedRun:
    """A run directory as read back: its config and its last checkpoint."""

    run_dir: Path
    config: Config
    state: dict[str, Any]  # the checkpoint: epoch, elapsed, config, experiment, ...

    @property
    def epochs_trained(self) -> int:
        return int(self.state["epoch"])

    @property
    def experiment_state(self) -> dict[str, Any]:
        """What ``Experiment.load_state_dict`` takes."""
        return self.state["experiment"]


def load_run(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> SavedRun:
    """Read ``run_dir``'s ``config.yaml`` (with ``READ_ONLY`` and ``overrides`` applied) and
    ``checkpoint.pt``; writes nothing. ConfigError / CheckpointError name the file."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir, {**READ_ONLY, **(overrides or {})})
    state = checkpoint.load(run_dir / "checkpoint.pt")
    provenance.check_same_data(state.get("data_sha256"), config, run_dir,
                               "its networks would read it with another vocabulary or split")
    return SavedRun(run_dir, config, state)


def holds_run(run_dir: Path) -> bool:
    """True when ``run_dir`` holds a run that finished at least one epoch."""
    metrics = run_dir / "metrics.jsonl"
    return (run_dir / "checkpoint.pt").exists() or (metrics.exists() and metrics.stat().st_size > 0)


def check_creatable(run_dir: Path, source: str) -> None:
    """ConfigError, naming the file, when ``run_dir`` or a folder above it is not a directory."""
    for path in (run_dir, *run_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"{source}: {path} exists and is not a directory, so the run "
                                  f"cannot go to {run_dir}; choose another out_dir or run_name")
            return


def in_use(run_dir: Path) -> bool:
    """Whether another process holds ``run_dir`` (``claim``) now: a run in training. A
    directory that is not there is not in use. The probe holds a shared lock for an instant:
    a claim made in that very instant fails as if the run were in use (one line, nothing
    written; the same command again goes on)."""
    try:
        handle = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while a claim holds it
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # the probe's own lock goes with it


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
        check_creatable(run_dir, source)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # /proc/x, a read-only disk: the key that named the place
            raise ConfigError(f"{source}: key 'out_dir': cannot make the run directory "
                              f"{run_dir} ({exc.strerror})") from None
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
