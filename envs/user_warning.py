"""Warnings attributed to the user's line, as Gymnasium's own envs warn."""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path

import gymnasium


def warn_at_user_line(message: str) -> None:
    """A UserWarning attributed to the user's line that made the env (the first frame
    outside mannrl-gym and Gymnasium), not to this module."""
    import mannrl_gym

    inside = (*(str(Path(module.__file__).resolve().parent) + os.sep
                for module in (mannrl_gym, gymnasium)),
              str(Path(__file__).resolve().parent) + os.sep)  # this env package
    frame, level = inspect.currentframe(), 0
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level + 1)
