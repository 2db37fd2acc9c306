"""Errors about the user's input, in one low-level module that imports nothing of the package
(so any module may raise them without importing back up). ``mannrl`` prints them as one line
naming the file and key or line, with no traceback."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or impossible."""


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 file; DataError names the file and line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_no = data[:error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line_no}: not valid UTF-8 ({error.reason} at byte "
                        f"{error.start})") from None
