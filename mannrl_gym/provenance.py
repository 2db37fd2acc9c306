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
from typing import TYPE_CHECKING

from mannrl_gym.config import PATH_KEYS, ConfigError, path_parts
from mannrl_gym.vectors import DEFAULT_CACHE

if TYPE_CHECKING:
    from mannrl_gym.config import Config

from mannrl_gym import __version__

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, for an editable install
DIGEST_CACHE = DEFAULT_CACHE / "sha256"  # one small file a large data file
DIGEST_CACHE_FROM = 64 << 20  # bytes: files this large keep their sha256 on disk


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


def data_sha256(config: Config) -> dict[str, list[str]]:
    """The sha256 of each file ``config``'s path keys name (``config.PATH_KEYS``; each part of
    an ``os.pathsep``-joined value, in order), by key; a key without files is left out."""
    digests = {}
    for key in PATH_KEYS:
        parts = path_parts(getattr(config, key))
        if parts and all(os.path.isfile(part) for part in parts):
            digests[key] = [file_sha256(part) for part in parts]
    return digests


def file_sha256(path: str | Path) -> str:
    """A file's sha256 (hex). Kept, by the file's absolute path, size and modification time,
    in this process and in ``DIGEST_CACHE`` on disk: a 5 GB vectors file is read once, not
    by every run, resume and predict."""
    stat = os.stat(path)
    return _sha256(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """``file_sha256`` once the file's stamp is known (the stamp keys both caches)."""
    stamp = hashlib.sha256(f"{path}\0{size}\0{mtime_ns}".encode()).hexdigest()
    kept = DIGEST_CACHE / stamp
    try:
        text = kept.read_text().strip()
        if len(text) == 64:
            return text
    except OSError:
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if size >= DIGEST_CACHE_FROM:  # small files are read again sooner than looked up
        try:
            DIGEST_CACHE.mkdir(parents=True, exist_ok=True)
            kept.write_text(digest.hexdigest())
        except OSError:  # a read-only home: hashed again next time
            pass
    return digest.hexdigest()


def changed_files(saved: dict[str, list[str]] | None, config: Config) -> list[str]:
    """The path keys whose files no longer hold what ``saved`` (a run's ``data_sha256``)
    says; a key the run kept no digest for, or whose files are not there, is not judged."""
    now = data_sha256(config)
    return [key for key, digests in (saved or {}).items()
            if key in now and now[key] != list(digests)]


def same_files(key: str, saved: dict[str, list[str]] | None, config: Config) -> bool:
    """Whether ``config``'s files for ``key`` hold what a run read (``saved``, its
    ``data_sha256``), wherever they lie now: a table read back on another machine, or data
    moved. False when the run kept no digest for ``key``."""
    return key in (saved or {}) and data_sha256(config).get(key) == list(saved[key])


def not_moved(key: str, saved_value: str, saved_digests: list[str], config: Config) -> str:
    """Why ``config``'s ``key`` is not the run's data moved (the run read ``saved_value``,
    whose sha256 were ``saved_digests``): a file it names is missing, or holds other bytes."""
    value = getattr(config, key)
    now = data_sha256(config).get(key)
    if now is None:
        return (f"key '{key}' {value!r}: not every file it names is there (the run read "
                f"{saved_value!r}); give where that file lies now")
    there, then = next(((a, b) for a, b in zip(now, saved_digests) if a != b),  # else a count
                       (f"of {len(now)} files", f"of {len(saved_digests)}"))
    return (f"key '{key}' {value!r} does not hold the bytes the run read at {saved_value!r} "
            f"(sha256 {there[:12]} there, {then[:12]} then): a resume would train on other "
            f"data; give where that file lies now, or start a new run")


def check_same_data(saved: dict[str, list[str]] | None, config: Config, where: Path | str,
                    what: str) -> None:
    """ConfigError naming the key and its file when a file changed since the run read it
    (``saved``: the run's ``data_sha256``; None: a run from before they were kept, not
    checked); ``what`` says what would go wrong."""
    for key in changed_files(saved, config):
        files = path_parts(getattr(config, key))
        now = [file_sha256(part) for part in files]
        file, then, today = next(pair for pair in [
            *zip(files, saved[key], now),  # else the count differs: the files named now
            (os.pathsep.join(files), f"of {len(saved[key])} files", f"of {len(now)}")]
            if pair[1] != pair[2])
        raise ConfigError(f"{where}: {key} {file} has changed since the run read it "
                          f"(sha256 {then[:12]} then, {today[:12]} now): {what}; restore the "
                          f"file, or start a new run on it")
