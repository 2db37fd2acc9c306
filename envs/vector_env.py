"""The batched MANN-RL environment: B slots reading constant streams through one action network."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mannrl_gym.config import Config, ConfigError
from mannrl_gym.envs.core import StepCore, as_memory, make_learner, make_spaces
from mannrl_gym.stream import EpochStream, layout
from mannrl_gym.supervised import ActionLearner
from mannrl_gym.tasks.base import Task


def check_num_envs(num_envs) -> None:
    """Raise ConfigError unless ``num_envs`` is a whole number >= 1."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ConfigError(f"environment kwargs: num_envs must be a whole number >= 1, "
                          f"got {num_envs!r}")


class MannRLVectorEnv(VectorEnv):
    """B slots that share one embedded action network A, which learns as the env steps.

    The agent plays the memory-net: it reads each slot's state and writes that slot's next
    memory. A (``self.learner.net``) reads (input, memory), predicts the target symbol and, in a
    learning env, takes one supervised Adam step per env step on the batch of slots.

    Episodes: one epoch, a pass over the split with the data laid out as B constant streams
    (``mannrl_gym.stream``): when a slot's sequence ends, it takes the next sequence of the
    order on the following step (``batching="refill"``, the reference's), so only the pass's
    last steps have idle slots. A training env staggers each slot's first sequence by a few
    idle steps (``stagger``) so that no input stands at the same step in every slot. At the
    pass's last step every slot is truncated; the next ``step`` resets (Gymnasium's NEXT_STEP
    autoreset) to a fresh pass, reshuffled.

    Observation space: ``Box`` of shape (B, M + F + V_out), float32, per row
    ``[memory m_t | input features x_t | A's output probabilities y_t]`` (slices in
    ``self.layout``). Memory and output lie in [0, 1]; input features in the task's range.

    Action space: ``Box(0, 1, (B, M), float32)``, the next memory m_{t+1} of each slot.
    Wrong shapes, non-float dtypes, NaN, infinity or values outside [0, 1] raise ``ActionError``.
    Idle slots hold a zero memory, so a slot's first sequence starts from zeros. With
    ``start_memory`` set (``carry_memory=False`` sets zeros; evaluation sets a warm memory) the
    memory of a slot starting a new sequence is that vector, whatever the action.

    Reward: ``-clamp(loss_{t+1}, 0, memory_clamp)`` per slot, loss being A's cross-entropy at the
    step the new memory was used; 0 for idle slots. Rewards lie in [-memory_clamp, 0].

    Info (arrays of shape (B,)): ``loss`` (float32), ``correct`` (bool, A's argmax equals the
    target), ``prediction`` and ``target`` (int64 symbol ids), ``valid`` (False on idle slots at
    the end of a pass), ``sequence_start`` (a new sequence began this step), ``answer_step`` (the
    target needs memory), ``long_range`` (answer step deciding more than 10 steps back),
    ``kind`` (int64 sequence category, named by ``task.train.kind_names``), ``sequence``
    (int64 index of the sequence in the split, -1 on idle slots).

    Curriculum (sentence tasks with ``curriculum_every``): a pass over the train split reads
    the sequences that train in the env's epoch (``task.split_at``). ``reset(options={"epoch":
    e})`` sets the epoch (0-based; the trainer passes it, so a resumed run reads the same data);
    otherwise a learning env counts its passes, a seeded reset starting again at 0.

    Seeding: ``reset(seed=s)`` redraws everything from ``s``: the data order and, when the env
    owns its action network, A's weights and optimizer. ``reset()`` without a seed starts a new
    pass and keeps A as it is. An env built with ``learner=`` shares that network (e.g. an
    evaluation env beside a training env) and never reinitialises it.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, task: Task, config: Config, num_envs: int, split: str = "train",
                 learner: ActionLearner | None = None, learn: bool = True,
                 shuffle: bool = True) -> None:
        check_num_envs(num_envs)
        self.task, self.config, self.num_envs = task, config, num_envs
        self.render_mode = None
        self.split = split
        self.data = task.split(split)
        if len(self.data) == 0:
            raise ValueError(f"the {split} split of task {task.name!r} holds no sequences")
        self.epoch: int | None = None  # the curriculum's epoch; None before the first pass
        self.owns_learner = learner is None
        self.learner = learner if learner is not None else make_learner(task, config, config.seed)
        self.learn, self.shuffle = learn, shuffle
        self.single_observation_space, self.single_action_space, self.layout = make_spaces(
            task, config.memory_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.core = StepCore(task, self.learner, self.layout, config.memory_clamp)
        self._generator = torch.Generator().manual_seed(config.seed)
        self._memory_shape = (num_envs, config.memory_size)
        self.start_memory: np.ndarray | None = (
            None if config.carry_memory else np.zeros(config.memory_size, dtype=np.float32))
        self.stream: EpochStream | None = None
        self._t = 0
        self._needs_reset = True

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a pass over the data from zero memory (``start_memory`` in slots whose first
        sequence starts at once); return (observation, info).

        ``options={"epoch": e}`` reads the curriculum's data of epoch e (see the class docstring).
        """
        super().reset(seed=seed)
        if seed is not None:
            self._generator = torch.Generator().manual_seed(seed)
            if self.owns_learner:
                self.learner.reinitialize(seed)
        if options is not None and "epoch" in options:
            self.epoch = int(options["epoch"])
        elif self.learn:
            self.epoch = 0 if seed is not None or self.epoch is None else self.epoch + 1
        self.data = self.task.split_at(self.split, self.epoch)
        self.stream = layout(self.data, self.num_envs, self._generator if self.shuffle else None,
                             self.config.batching, stagger=self.config.stagger and self.learn)
        self._rows = {name: getattr(self.stream, name).numpy() for name in
                      ("inputs", "targets", "start", "valid", "answer", "long_range", "kind",
                                "sequence")}
        for array in self._rows.values():  # handed out in info: read-only
            array.setflags(write=False)
        self._all_valid = self._rows["valid"].all(axis=1)
        self._t = 0
        self._needs_reset = False
        memory = np.zeros(self._memory_shape, dtype=np.float32)
        if self.start_memory is not None:
            memory[self._rows["start"][0]] = self.start_memory
        observation, _, info = self._advance(memory)
        return observation, info

    def step(self, actions):
        """Write each slot's next memory, advance one symbol; see the class docstring."""
        if self.stream is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if self._needs_reset:
            observation, info = self.reset()
            zeros = np.zeros(self.num_envs, dtype=np.float32)
            false = np.zeros(self.num_envs, dtype=bool)
            return observation, zeros, false, false.copy(), info
        memory = as_memory(actions, self._memory_shape)
        self._t += 1
        if self.start_memory is not None:
            memory = np.where(self._rows["start"][self._t][:, None], self.start_memory, memory)
        if not self._all_valid[self._t]:
            memory = np.where(self._rows["valid"][self._t][:, None], memory, np.float32(0))
        observation, reward, info = self._advance(memory)
        truncated = np.full(self.num_envs, self._t == self.stream.num_steps - 1)
        self._needs_reset = bool(truncated[0])
        return observation, reward, np.zeros(self.num_envs, dtype=bool), truncated, info

    def generator_state(self) -> torch.Tensor:
        """The state of the generator that orders the data (a checkpoint keeps it)."""
        return self._generator.get_state()

    def set_generator_state(self, state: torch.Tensor) -> None:
        """Restore what ``generator_state`` returned: the next pass is ordered as it would have
        been."""
        self._generator.set_state(state)

    @property
    def steps_per_pass(self) -> int:
        """Number of env steps in the current pass (T); ``step`` is called T - 1 times."""
        return self.stream.num_steps

    # -- internals -------------------------------------------------------------------------
    def _advance(self, memory: np.ndarray):
        rows, t = self._rows, self._t
        target = rows["targets"][t]
        observation, reward, loss, prediction = self.core(
            rows["inputs"][t], target, rows["valid"][t], memory, self.learn,
            all_valid=bool(self._all_valid[t]))
        info = {"loss": loss, "correct": prediction == target, "prediction": prediction,
                "target": target, "valid": rows["valid"][t], "sequence_start": rows["start"][t],
                "answer_step": rows["answer"][t], "long_range": rows["long_range"][t],
                "kind": rows["kind"][t], "sequence": rows["sequence"][t]}
        return observation, reward, info
