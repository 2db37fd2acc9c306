"""Errors about the user's input, in one low-level module that imports nothing of the package
(so any module may raise them without importing back up). ``mannrl`` prints them as one line
naming the file and key or line, with no traceback."""

from __future__ import annotations


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and line."""


class ConfigError(ValueError):
    """A configuration key is unknown, mistyped or impossible."""
