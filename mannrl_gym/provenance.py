"""Which code trained a run: mannrl-gym's version and, in a git checkout, its commit.

A run resumed on other code goes on with arithmetic that may round differently from the code
it started on (a BLAS kernel, a sum split in two): still the same maths, but no longer the
same numbers as one uninterrupted run. The checkpoint keeps the list of the code versions
that trained the run; a resume on a new one says so, and ``summary.json`` lists them.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

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
