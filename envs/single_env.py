"""The single-slot MANN-RL environment: one sequence per episode."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch

from mannrl_gym.config import Config
from mannrl_gym.envs.core import (StepCore, as_memory, check_open, check_options, check_seed,
                                  make_learner, make_spaces)
from mannrl_gym.envs.spec import SpecSettled
from mannrl_gym.envs.render import (RENDER_FPS, RENDER_MODES, can_render, check_render_mode,
                                    text_frame)
from mannrl_gym.tasks.base import Task


class MannRLEnv(SpecSettled, gymnasium.Env):
    """One slot reading one sequence per episode, with its own embedded action network A; the
    agent plays the memory-net.

    ## Description

    The single-slot form of ``MannRLVectorEnv`` (read that class for the method): given the
    state at step t the agent writes the memory m_{t+1} with which A reads the next input
    symbol. A learns as the env steps, but batch norm needs more than one row, so each step is
    answered in eval mode and A takes one supervised step on every ``batch_size`` steps
    gathered. Use the vector env for the paper's batching; this one is for tools that expect
    ``gymnasium.make`` (``check_env``, SB3's ``make_vec_env``).

    ## Observation Space

    ``Box`` of shape ``(D,)``, float32, ``D = M + F + V_out`` (``self.layout``):

    | Slice            | Observation                                   | Min                   | Max                   |
    |------------------|-----------------------------------------------|-----------------------|-----------------------|
    | `0 : M`          | memory m_t that A just read                   | 0                     | 1                     |
    | `M : M + F`      | features x_t of the current input symbol      | the task table's min  | the task table's max  |
    | `M + F : D`      | A's output probabilities y_t for this step    | 0                     | 1                     |

    ## Action Space

    ``Box(0, 1, (M,), float32)``: the next memory. Wrong shapes or dtypes, NaN, infinity and
    values outside [0, 1] raise ``ActionError``.

    ## Rewards

    ``-clamp(loss_{t+1}, 0, memory_clamp)``, A's cross-entropy on the step that used the new
    memory; always in [-memory_clamp, 0].

    ## Starting State

    ``reset`` draws a sequence of the split, sets the memory to zeros and shows step 0 (its
    loss is in the reset info).

    ## Episode End

    Each ``step`` reads the next symbol; the episode terminates when the last symbol (the
    answer step for Logic) has been read, after ``length - 1`` steps. There is no truncation.

    ## Info

    Scalars: ``loss``, ``correct``, ``prediction``, ``target``, ``valid`` (always True),
    ``sequence_start`` (step 0), ``answer_step``, ``long_range``, ``kind``, ``sequence``
    (index in the split) and ``position`` (index in the sequence).

    ## Arguments

    ```python
    gymnasium.make("MannRL-Logic-v0", split="train", **config_keys)
    MannRLEnv(task, config, split="train", learn=True, render_mode=None)
    ```

    * ``config_keys`` / ``config``: any key of ``mannrl_gym.config.Config`` (docs/config.md);
      an env id's defaults are its table's settings (``configs/*.yaml``).
    * ``split``: ``"train"`` or ``"validation"``.
    * ``learn``: False evaluates A without training it.
    * ``render_mode``: ``"ansi"``: ``render()`` returns the last step as text (input,
      target, A's prediction, loss); None (default): ``render()`` warns and returns None.

    Curriculum (sentence tasks with ``curriculum_every``): episodes draw from the training
    sequences of epoch 0, or of epoch e after ``reset(options={"epoch": e})``.

    Seeding: ``reset(seed=s)`` redraws the sequence order and A's weights and optimizer from
    ``s``, so the same seed and actions reproduce the episode exactly.

    ## Version History

    * v0: the paper's environment (sections 4.1 to 4.3); each id's defaults are its table's
      packaged config (``mannrl_gym.presets``).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def __init__(self, task: Task, config: Config, split: str = "train", learn: bool = True,
                 render_mode: str | None = None) -> None:
        self.task, self.config, self.learn = task, config, learn
        self.render_mode = check_render_mode(render_mode)
        self.asked_render_mode = render_mode  # what make was given (render() names it)
        self.closed = False
        self._shown: tuple[np.ndarray, dict[str, Any]] | None = None  # last step: ids, info
        self.split = split
        self.data = task.split_at(split, 0)
        if len(self.data) == 0:
            raise ValueError(f"the {split} split of task {task.name!r} holds no sequences")
        self.learner = make_learner(task, config, config.seed, gather_small=True)
        self.observation_space, self.action_space, self.layout = make_spaces(task, config.memory_size)
        self._core = StepCore(task, self.learner, self.layout, config.memory_clamp,
                              config.memory_sees_output)
        self._generator = torch.Generator().manual_seed(config.seed)
        self._sequence, self._position, self._start, self._length = -1, 0, 0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a sequence, zero the memory, show step 0; return (observation (D,), info)."""
        check_open(self.closed, "reset()")
        check_seed(seed)
        check_options(options)
        super().reset(seed=seed)
        if seed is not None:
            self._generator = torch.Generator().manual_seed(seed)
            self.learner.reinitialize(seed)
        if options is not None and "epoch" in options:
            self.data = self.task.split_at(self.split, int(options["epoch"]))
        self._sequence = int(torch.randint(len(self.data), (1,), generator=self._generator))
        self._start = int(self.data.offsets[self._sequence])
        self._length = int(self.data.lengths[self._sequence])
        self._position = 0
        observation, _, info = self._advance(np.zeros((1, self.config.memory_size), np.float32))
        return observation, info

    def step(self, action: np.ndarray | torch.Tensor
             ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Write the next memory (M,), read the next symbol; return (observation (D,), reward,
        terminated, truncated (always False), info)."""
        check_open(self.closed, "step()")
        if self._sequence < 0:
            raise gymnasium.error.ResetNeeded("call reset() before the first step()")
        if self._position >= self._length - 1:
            raise gymnasium.error.ResetNeeded("call reset() before step(): the episode has ended")
        memory = as_memory(action, (self.config.memory_size,))[None]
        self._position += 1
        observation, reward, info = self._advance(memory)
        terminated = self._position == self._length - 1
        return observation, reward, terminated, False, info

    def _advance(self, memory: np.ndarray):
        token = self._start + self._position
        ids = self.data.inputs[token:token + 1].numpy()
        targets = self.data.targets[token:token + 1].numpy()
        observation, reward, loss, prediction = self._core(
            ids, targets, np.ones(1, dtype=bool), memory, self.learn, all_valid=True)
        info = {"loss": float(loss[0]), "correct": bool(prediction[0] == targets[0]),
                "prediction": int(prediction[0]), "target": int(targets[0]), "valid": True,
                "sequence_start": self._position == 0,
                "answer_step": bool(self.data.answer[token]),
                "long_range": bool(self.data.long_range[token]),
                "kind": int(self.data.kind[self._sequence]),
                "position": self._position, "sequence": self._sequence}
        self._shown = (ids, info)
        return observation[0], float(reward[0]), info

    def close(self) -> None:
        """Mark the env closed: a later ``step()`` or ``reset()`` raises Gymnasium's
        ``ClosedEnvironmentError``; closing twice does nothing."""
        self.closed = True

    def render(self) -> str | None:
        """``render_mode="ansi"``: the last step as text (sequence, position, input, target,
        prediction, loss); None before the first reset or without a render mode."""
        if not can_render(self.render_mode, self.asked_render_mode) or self._shown is None:
            return None
        ids, info = self._shown
        header = (f"{self.split} sequence {self._sequence}, step {self._position + 1}"
                  f"/{self._length}")
        return text_frame(self.task, header, info, ids)
