"""Errors about the user's input, in one low-level module that imports nothing of the package
(so any module may raise them without importing back up)."""

from __future__ import annotations


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""
