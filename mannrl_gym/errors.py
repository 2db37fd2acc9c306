"""Errors about the user's input, in one low-level module that imports nothing of the package
(so any module may raise them without importing back up). ``mannrl`` prints them as one line
naming the file and key or line, with no traceback."""

from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or impossible."""


def not_a_file(path: str | Path, what: str = "file") -> str:
    """Why ``path`` (not a file) cannot be read, for a message "<path>: <this>": "a directory,
    not a <what>", or "<what> not found", with the absolute path looked for when ``path`` is
    relative (relative paths are read from the current directory)."""
    path = Path(path)
    if path.is_dir():
        return f"a directory, not a {what}"
    if path.exists():  # a device, a pipe or a socket: /dev/null
        return "not a regular file (a device, a pipe or a socket)"
    if path.is_absolute():
        return f"{what} not found"
    return (f"{what} not found (looked for {os.path.normpath(path.absolute())}: relative to "
            f"the current directory)")


def not_a_run_dir(path: str | Path, needs: str) -> str:
    """Why ``path`` is not a run directory (it has no ``needs``, e.g. config.yaml), for a
    message "<path>: <this>": nothing there (where it was looked for), a file (a run's file:
    its folder is the run), or a folder without that file."""
    path = Path(path)
    if path.is_file():
        if (path.parent / needs).is_file():
            return f"a file of a run; give the run's folder: {path.parent}"
        return "a file, not a run's folder"
    if not path.exists():
        return (f"no such folder{'' if path.is_absolute() else f' (looked for {path.absolute()})'}"
                f" (mannrl train prints a run's folder first, as run: ...)")
    return f"not a run directory ({needs} missing)"


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 file; DataError names the file and line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_no = data[:error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line_no}: not valid UTF-8 ({error.reason} at byte "
                        f"{error.start})") from None
