"""The batched MANN-RL environment: B slots reading constant streams through one action network."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mannrl_gym.config import Config, ConfigError
from mannrl_gym.envs.core import (StepCore, as_memory, check_open, check_options, check_seed,
                                  make_learner, make_spaces)
from mannrl_gym.envs.spec import SpecSettled
from mannrl_gym.envs.render import (RENDER_FPS, RENDER_MODES, can_render, check_render_mode,
                                    text_frame)
from mannrl_gym.stream import EpochStream, PassPlan, build, plan, schedule
from mannrl_gym.supervised import ActionLearner
from mannrl_gym.tasks.base import Task


def check_num_envs(num_envs) -> None:
    """Raise ConfigError unless ``num_envs`` is a whole number >= 1."""
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ConfigError(f"environment kwargs: num_envs must be a whole number >= 1, "
                          f"got {num_envs!r}")


def autoreset_step(env: VectorEnv):
    """The step after a truncated one (NEXT_STEP autoreset): a new pass's first observation,
    zero rewards, nothing terminated or truncated."""
    observation, info = env.reset()
    zeros = np.zeros(env.num_envs, dtype=np.float32)
    false = np.zeros(env.num_envs, dtype=bool)
    return observation, zeros, false, false.copy(), info


def evaluation_env(task: Task, config: Config, learner: ActionLearner, split: str,
                   num_envs: int) -> "MannRLVectorEnv":
    """A non-learning env over ``split``, in data order, reading through ``learner`` (A)."""
    return MannRLVectorEnv(task, config, num_envs, split=split, learner=learner, learn=False,
                           shuffle=False)


class MannRLVectorEnv(SpecSettled, VectorEnv):
    """B slots that read the data through one shared action network A, which learns as the env
    steps; the agent plays the memory-net.

    ## Description

    MANN-RL (Barrett, *Learning to Remember*): A reads only the current input symbol and a
    memory vector and predicts a target symbol, trained by supervised learning; the memory-net
    f, the agent, writes the next memory from the current state and is rewarded with minus A's
    loss. This env holds A (``self.learner.net``) and the data; at each step it takes every
    slot's next memory, lets A read the next symbol with it and, in a learning env, takes one
    supervised Adam step on the batch of slots. The paper's batching: slots are the rows of A's
    batch, so they share A and its batch norm.

    ## Observation Space

    ``Box`` of shape ``(B, D)``, float32, ``D = M + F + V_out``; each row is one slot's state
    (``self.layout`` holds the slices):

    | Slice            | Observation                                   | Min                   | Max                   |
    |------------------|-----------------------------------------------|-----------------------|-----------------------|
    | `0 : M`          | memory m_t that A just read                   | 0                     | 1                     |
    | `M : M + F`      | features x_t of the current input symbol      | the task table's min  | the task table's max  |
    | `M + F : D`      | A's output probabilities y_t for this step    | 0                     | 1                     |

    Input features are one-hot for Logic and the symbolic tasks, word vectors for POS (F: the
    vectors' width), one-hot characters for the sentence tasks. Idle slots (end of a pass) show a
    zero output.

    ## Action Space

    ``Box(0, 1, (B, M), float32)``: the next memory m_{t+1} of each slot. Wrong shapes,
    non-float dtypes, NaN, infinity or values outside [0, 1] raise ``ActionError``. Idle slots
    keep a zero memory whatever the action; with ``start_memory`` set (``carry_memory=False``
    sets zeros; evaluation sets a warm memory) a slot starting a new sequence gets that vector.

    ## Rewards

    ``-clamp(loss_{t+1}, 0, memory_clamp)`` per slot, loss being A's cross-entropy at the step
    that read the new memory; 0 for idle slots. Rewards lie in [-memory_clamp, 0].

    ## Starting State

    ``reset`` lays the split out as B constant streams (``mannrl_gym.stream``): with
    ``batching="refill"`` (the reference's) a slot whose sequence ends takes the next sequence
    of the order on the following step. A training env delays each slot's first sequence by a
    few idle steps (``stagger``) so that no input stands at the same step in every slot. Every
    memory starts at zero (``start_memory`` where set) and step 0 is shown.

    ## Episode End

    An episode is one pass over the split (``steps_per_pass`` = T steps, ``step`` called T - 1
    times). There is no termination; at the pass's last step every slot is truncated, and the
    next ``step`` resets to a fresh, reshuffled pass (Gymnasium's NEXT_STEP autoreset).

    ## Info

    Arrays of shape (B,): ``loss`` (float32), ``correct`` (A's argmax equals the target;
    False on idle slots), ``prediction`` and ``target`` (int64 symbol ids), ``valid`` (False
    on idle slots), ``sequence_start`` (a new sequence began this step), ``answer_step`` (the
    target needs memory), ``long_range`` (an answer deciding more than 10 steps back), ``kind`` (int64
    sequence category, named by ``task.train.kind_names``), ``sequence`` (int64 index of the
    sequence in the split, -1 on idle slots).

    ## Arguments

    ```python
    gymnasium.make_vec("MannRL-Logic-v0", num_envs=16, **config_keys)
    MannRLVectorEnv(task, config, num_envs, split="train", learner=None, learn=True, shuffle=True,
                    render_mode=None)
    ```

    * ``num_envs``: B, the number of slots (A's batch size; the paper: 16). Gymnasium's
      ``make_vec`` default is 1: one row a step, which batch norm cannot train on, so A then
      gathers ``batch_size`` steps into one supervised step, as the single-slot env does.
    * ``config_keys`` / ``config``: any key of ``mannrl_gym.config.Config`` (docs/config.md);
      an env id's defaults are its table's settings (``configs/*.yaml``).
    * ``split``: ``"train"`` or ``"validation"`` (an env of its own, whose A learns from that
      split; to evaluate a training env's A on held-out data: ``env.evaluation_env()``).
    * ``learner``: share this A (e.g. an evaluation env beside a training env:
      ``env.evaluation_env()``); the env then never reinitialises it.
    * ``learn``: False evaluates A without training it.
    * ``shuffle``: False reads the split in data order.
    * ``render_mode``: ``"ansi"``: ``render()`` returns the last step as text, a line per
      slot (input, target, A's prediction, loss); None (default): ``render()`` warns.

    Curriculum (sentence tasks with ``curriculum_every``): a pass over the train split reads
    the sequences that train in the env's epoch (``task.split_at``); ``reset(options={"epoch":
    e})`` sets it (0-based; the trainer passes it, so a resumed run reads the same data),
    otherwise a learning env counts its passes.

    Seeding: ``reset(seed=s)`` redraws everything from ``s``: the data order and, when the env
    owns A, A's weights and optimizer. ``reset()`` without a seed starts a new pass and keeps A.

    ## Version History

    * v0: the paper's environment (sections 4.1 to 4.3); each id's defaults are its table's
      packaged config (``mannrl_gym.presets``).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": RENDER_MODES,
                "render_fps": RENDER_FPS}

    def __init__(self, task: Task, config: Config, num_envs: int, split: str = "train",
                 learner: ActionLearner | None = None, learn: bool = True,
                 shuffle: bool = True, render_mode: str | None = None) -> None:
        check_num_envs(num_envs)
        self.task, self.config, self.num_envs = task, config, num_envs
        self.render_mode = check_render_mode(render_mode)
        self.asked_render_mode = render_mode  # what make_vec was given (render() names it)
        self._shown: dict[str, np.ndarray] | None = None  # the last step's info
        self.split = split
        self.data = task.split(split)
        if len(self.data) == 0:
            raise ValueError(f"the {split} split of task {task.name!r} holds no sequences")
        self.epoch: int | None = None  # the curriculum's epoch; None before the first pass
        self.owns_learner = learner is None
        # one slot gives A one row a step, which batch norm cannot train on: gather
        # batch_size steps into one supervised step, as the single-slot env does
        self.learner = learner if learner is not None else make_learner(
            task, config, config.seed, gather_small=num_envs == 1)
        self.learn, self.shuffle = learn, shuffle
        self.single_observation_space, self.single_action_space, self.layout = make_spaces(
            task, config.memory_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.core = StepCore(task, self.learner, self.layout, config.memory_clamp,
                             config.memory_sees_output)
        self._generator = torch.Generator().manual_seed(config.seed)
        self._memory_shape = (num_envs, config.memory_size)
        self.start_memory: np.ndarray | None = (
            None if config.carry_memory else np.zeros(config.memory_size, dtype=np.float32))
        self.stream: EpochStream | None = None
        self._t = 0
        self._needs_reset = True

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start a pass over the data from zero memory (``start_memory`` in slots whose first
        sequence starts at once); return (observation, info).

        ``options={"epoch": e}`` reads the curriculum's data of epoch e (see the class docstring).
        """
        return self.start_pass(self.plan_pass(seed=seed, options=options))

    def plan_pass(self, *, seed: int | None = None, options: dict[str, Any] | None = None
                  ) -> PassPlan:
        """The first half of ``reset``: reseed, choose the epoch's data, draw the pass's order
        (``stream.plan``). ``start_pass`` does the rest; between the two, several envs'
        schedules may be computed together (``ReplicatedVectorEnv``)."""
        check_open(self.closed, "reset()")
        check_seed(seed)
        check_options(options)
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
        return plan(self.data, self.num_envs, self._generator if self.shuffle else None,
                    stagger=self.config.stagger and self.learn)

    def start_pass(self, pass_plan: PassPlan,
                   placement: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The second half of ``reset``: lay the planned pass out (its ``placement`` (slot,
        start step) per sequence, computed by ``stream.schedule`` unless given) and take step
        0; return (observation, info)."""
        if placement is None:
            placement = schedule(pass_plan, self.config.batching)
        self.stream = build(self.data, self.num_envs, pass_plan, *placement)
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

    def step(self, actions: np.ndarray | torch.Tensor) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Write each slot's next memory (B, M), advance one symbol; return (observation
        (B, D), reward (B,), terminated (B,), truncated (B,), info). See the class docstring."""
        check_open(self.closed, "step()")
        if self.stream is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if self._needs_reset:
            return autoreset_step(self)
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

    def seek(self, t: int) -> None:
        """Continue the current pass after step ``t``: the next ``step`` takes step t + 1 (a
        ``ReplicatedVectorEnv`` steps its replicas' batched steps itself)."""
        self._t = t

    def evaluation_env(self, split: str = "validation", num_envs: int | None = None
                       ) -> "MannRLVectorEnv":
        """An env that evaluates this env's A on ``split`` (default the held-out data) without
        training it: A shared, not copied, the split read in data order, ``num_envs`` slots
        (default this env's B). It is what ``mannrl train`` evaluates on, and the env to give
        an evaluation callback. (``make_vec(id, split="validation")`` makes an env with an A of
        its own, which learns from the held-out data as it steps.)"""
        return evaluation_env(self.task, self.config, self.learner, split,
                              self.num_envs if num_envs is None else num_envs)

    # -- internals -------------------------------------------------------------------------
    def _advance(self, memory: np.ndarray):
        rows, t = self._rows, self._t
        target = rows["targets"][t]
        observation, reward, loss, prediction = self.core(
            rows["inputs"][t], target, rows["valid"][t], memory, self.learn,
            all_valid=bool(self._all_valid[t]))
        info = {"loss": loss, "correct": (prediction == target) & rows["valid"][t],
                "prediction": prediction,
                "target": target, "valid": rows["valid"][t], "sequence_start": rows["start"][t],
                "answer_step": rows["answer"][t], "long_range": rows["long_range"][t],
                "kind": rows["kind"][t], "sequence": rows["sequence"][t]}
        self._shown = info
        return observation, reward, info

    def render(self) -> str | None:
        """``render_mode="ansi"``: the last step as text, one line per slot (input, target,
        prediction, loss; ``idle`` for an idle slot); None before the first reset or without
        a render mode."""
        if not can_render(self.render_mode, self.asked_render_mode) or self._shown is None:
            return None
        header = f"{self.split} pass, step {self._t + 1}/{self.stream.num_steps}"
        return text_frame(self.task, header, self._shown, self._rows["inputs"][self._t])
