"""Text frames for ``render_mode="ansi"``: what each slot read, should write and wrote."""

from __future__ import annotations

from typing import Any

import numpy as np

from mannrl_gym.envs.user_warning import warn_at_user_line
from mannrl_gym.tasks.base import Task

RENDER_MODES = ["ansi"]
RENDER_FPS = 4  # Gymnasium's checker asks for one; text frames have no natural rate


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` if it is one of ``RENDER_MODES``, else None: a mode the env cannot
    draw renders nothing, with a warning at the user's line, but ``"rgb_array"`` silently
    (Stable-Baselines3's ``make_vec_env`` asks every env for it)."""
    if render_mode in RENDER_MODES:
        return render_mode
    if render_mode is not None and render_mode != "rgb_array":
        warn_at_user_line(f"render_mode {render_mode!r} is not one this env draws: it draws "
                          f"{' or '.join(map(repr, RENDER_MODES))} (text frames, returned by "
                          f"render()); it renders nothing")
    return None


def can_render(render_mode: str | None, asked: str | None = None) -> bool:
    """True for a render mode; without one, warn as Gymnasium's envs do (at the user's
    line), naming the mode ``asked`` at ``make`` where it was one this env cannot draw, and
    return False."""
    if render_mode is None and asked is not None:
        warn_at_user_line(f"render(): render_mode {asked!r} is not one this env draws; it "
                          f"draws {' or '.join(map(repr, RENDER_MODES))} (text frames)")
        return False
    if render_mode is None:
        warn_at_user_line("render() called without a render_mode; make the env with "
                          "render_mode='ansi'")
        return False
    return True


def _symbol(names: tuple[str, ...], index: int) -> str:
    return repr(names[index]) if 0 <= index < len(names) else f"#{index}"


def text_frame(task: Task, header: str, info: dict[str, Any], inputs: np.ndarray) -> str:
    """One line per slot: its input symbol, target, A's prediction and whether it is right.

    Args:
        task: names the symbols (``input_symbols``, ``output_symbols``).
        header: the frame's first line (e.g. the step).
        info: the last step's info; ``target``, ``prediction``, ``valid``, ``loss`` of shape
            (B,) (or scalars for one slot).
        inputs: (B,) int64 input symbol ids of the last step.
    """
    targets, predictions = np.atleast_1d(info["target"]), np.atleast_1d(info["prediction"])
    valid, loss = np.atleast_1d(info["valid"]), np.atleast_1d(info["loss"])
    lines = [header]
    for slot in range(len(targets)):
        if not valid[slot]:
            lines.append(f"slot {slot:3d}  idle")
            continue
        mark = "ok" if predictions[slot] == targets[slot] else "wrong"
        lines.append(f"slot {slot:3d}  input {_symbol(task.input_symbols, int(inputs[slot]))}  "
                     f"target {_symbol(task.output_symbols, int(targets[slot]))}  "
                     f"prediction {_symbol(task.output_symbols, int(predictions[slot]))}  "
                     f"{mark}  loss {float(loss[slot]):.3f}")
    return "\n".join(lines) + "\n"
