"""Which code trained a run, and on which data: mannrl-gym's version and, in a git checkout,
its commit; the sha256 of every file the run reads.

A run resumed on other code goes on with arithmetic that may round differently from the code
it started on (a BLAS kernel, a sum split in two): still the same maths, but no longer the
same numbers as one uninterrupted run. The checkpoint keeps the list of the code versions
that trained the run; a resume on a new one says so, and ``summary.json`` lists them.

A data file edited after a run began would make a resume train on other sentences (or fail
on a vocabulary of another size), ``predict`` read with another vocabulary and a table mix
data: the checkpoint and ``summary.json`` keep each file's sha256 (``data_sha256``), and
``check_same_data`` stops each of them, in one line, when a file no longer holds them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from mannrl_gym import __version__

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, for an editable install


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``__version__``, or ``<version>+g<commit>`` (``.dirty`` when tracked files differ
    from that commit) when the package is a git checkout's and git can tell."""
    if not (CHECKOUT / ".git").exists():
        return __version__
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True,
                                  text=True, timeout=20, check=True).stdout.strip()
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" + (".dirty" if dirty else "")


def trained_by(saved: list[str] | None, run_dir: Path) -> list[str]:
    """The code versions that trained a run, ``saved`` (its checkpoint's; None: a fresh run,
    or a checkpoint from before they were kept) and this one, in order; a resume on a new
    version prints one line saying so."""
    now = code_version()
    versions = list(saved or [])
    if versions and now not in versions:
        print(f"{run_dir}: resuming on mannrl-gym {now}; epochs so far were trained by "
              f"{', '.join(versions)}: the same maths, but the numbers may round differently "
              f"from one uninterrupted run")
    return versions + [now] if now not in versions else versions


def data_sha256(config: Any) -> dict[str, list[str]]:
    """The sha256 of each file ``config``'s path keys name (``config.PATH_KEYS``; each part of
    an ``os.pathsep``-joined value, in order), by key; a key without files is left out."""
    from mannrl_gym.config import PATH_KEYS

    digests = {}
    for key in PATH_KEYS:
        parts = [part for part in str(getattr(config, key) or "").split(os.pathsep) if part]
        if parts and all(os.path.isfile(part) for part in parts):
            digests[key] = [_file_sha256(os.path.abspath(part), *_stamp(part)) for part in parts]
    return digests


def _stamp(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256 (hex), cached while its size and modification time stay."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_same_data(saved: dict[str, list[str]] | None, config: Any, where: Path | str,
                    what: str) -> dict[str, list[str]]:
    """``config``'s ``data_sha256``, once it is known to match ``saved`` (a run's; None: a run
    from before they were kept, not checked). ConfigError naming the key and its file when a
    file changed since the run read it: ``what`` says what would go wrong."""
    from mannrl_gym.config import ConfigError

    now = data_sha256(config)
    for key, digests in (saved or {}).items():
        if key in now and now[key] != list(digests):
            files = [part for part in str(getattr(config, key)).split(os.pathsep) if part]
            pairs = list(zip(files, digests, now[key]))
            file, then, today = next((pair for pair in pairs if pair[1] != pair[2]),
                                     (os.pathsep.join(files), f"{len(digests)} files",
                                      f"{len(now[key])} files"))
            raise ConfigError(f"{where}: {key} {file} has changed since the run read it "
                              f"(sha256 {then[:12]} then, {today[:12]} now): {what}; restore "
                              f"the file, or start a new run on it")
    return now
