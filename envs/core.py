"""What both MANN-RL environments share: spaces, action checks and one batched step of A."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from mannrl_gym.config import MAX_SEED, Config, ConfigError
from mannrl_gym.supervised import ActionLearner
from mannrl_gym.tasks.base import Task


def check_seed(seed: int | None) -> None:
    """ValueError in one line for a ``reset(seed=...)`` outside ``[0, MAX_SEED]``: the seed
    also seeds torch generators and A's weights, as the config's ``seed`` does."""
    if seed is not None and (isinstance(seed, bool) or not (
            isinstance(seed, (int, np.integer)) and 0 <= seed <= MAX_SEED)):
        raise ValueError(f"reset(seed={seed!r}): the seed must be an integer in [0, {MAX_SEED}] "
                         "(it seeds torch's generators and A's weights, like the config's seed)")


def check_open(closed: bool, call: str) -> None:
    """Gymnasium's ``ClosedEnvironmentError`` for ``call`` (``"step()"``, ``"reset()"``) on
    an env after its ``close()``: a closed env's A and data are not to be stepped on."""
    if closed:
        raise gymnasium.error.ClosedEnvironmentError(
            f"{call} after close(): this env is closed; make a new one")


def check_options(options: dict | None, known: tuple[str, ...] = ("epoch",)) -> None:
    """ValueError in one line for ``reset(options=...)`` that is not a mapping, names a key the
    env does not read (a typo such as ``{"epcoh": 3}`` would otherwise train epoch 0's data
    silently), or gives an ``epoch`` that is not a whole number >= 0."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise ValueError(f"reset(options={options!r}): options must be a dict such as "
                         "{'epoch': 3}")
    unknown = sorted(str(key) for key in options if key not in known)
    if unknown:
        raise ValueError(f"reset(options=...): unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"this env reads {', '.join(map(repr, known))}")
    epoch = options.get("epoch")
    if "epoch" in options and not (isinstance(epoch, (int, np.integer))
                                   and not isinstance(epoch, bool) and epoch >= 0):
        raise ValueError(f"reset(options={{'epoch': {epoch!r}}}): the epoch must be a whole "
                         "number >= 0 (the curriculum's epoch whose data the pass reads)")


def check_replica_seed(seed: int | None, count: int, where: str) -> None:
    """ConfigError (a ValueError) in one line where ``count`` replicas from ``seed`` (replica
    k takes seed + k) would pass ``MAX_SEED``; ``where`` names the call. The seed itself is
    ``check_seed``'s."""
    check_seed(seed)
    if seed is not None and seed + count - 1 > MAX_SEED:
        raise ConfigError(f"{where}: replica k takes seed + k, so with {count} replicas the "
                          f"seed must be at most {MAX_SEED - count + 1}, got {seed}")


class ActionError(ValueError):
    """An action (the next memory) has the wrong shape or dtype, or values outside [0, 1]."""


@dataclass(frozen=True)
class ObservationLayout:
    """Where each part lies in the flat observation ``[memory | input | output]``.

    memory: (M,) the memory the action network just read, in [0, 1].
    input: (F,) features of the current input symbol (one-hot for Logic).
    output: (V_out,) the action network's output probabilities for this step.
    """

    memory_size: int
    input_dim: int
    num_outputs: int

    @property
    def memory(self) -> slice:
        return slice(0, self.memory_size)

    @property
    def input(self) -> slice:
        return slice(self.memory_size, self.memory_size + self.input_dim)

    @property
    def output(self) -> slice:
        return slice(self.memory_size + self.input_dim, self.size)

    @property
    def size(self) -> int:
        return self.memory_size + self.input_dim + self.num_outputs


def make_spaces(task: Task, memory_size: int) -> tuple[spaces.Box, spaces.Box, ObservationLayout]:
    """(observation space, action space, layout) of one slot."""
    layout = ObservationLayout(memory_size, task.input_dim, task.num_outputs)
    low = np.zeros(layout.size, dtype=np.float32)
    high = np.ones(layout.size, dtype=np.float32)
    low[layout.input] = float(task.input_table.min())
    high[layout.input] = float(task.input_table.max())
    observation_space = spaces.Box(low, high, dtype=np.float32)
    action_space = spaces.Box(0.0, 1.0, (memory_size,), dtype=np.float32)
    return observation_space, action_space, layout


def make_learner(task: Task, config: Config, seed: int, gather_small: bool = False) -> ActionLearner:
    return ActionLearner(task.input_dim, config.memory_size, config.hidden_size, task.num_outputs,
                         config.lr, config.clipping, config.double_softmax, seed,
                         min_batch=config.batch_size, gather_small=gather_small,
                         hidden_layers=config.hidden_layers, embed_size=config.embed_size)


def as_memory(action, shape: tuple[int, ...]) -> np.ndarray:
    """Check an action and return it as a float32 array of ``shape`` (no copy when possible).

    Accepts NumPy arrays and torch tensors. Raises ActionError for a wrong shape, a non-float
    dtype, NaN, infinity or values outside [0, 1].
    """
    if isinstance(action, torch.Tensor):
        action = action.detach().cpu().numpy()
    memory = np.asarray(action)
    if memory.dtype.kind != "f":
        raise ActionError(f"action dtype is {memory.dtype}; expected floating point in [0, 1]")
    if memory.shape != shape:
        raise ActionError(f"action shape is {memory.shape}; expected {shape} (the next memory)")
    memory = memory.astype(np.float32, copy=False)
    if not (memory.min() >= 0.0 and memory.max() <= 1.0):  # False for NaN too
        if np.isnan(memory).any():
            raise ActionError("action contains NaN")
        if np.isinf(memory).any():
            raise ActionError("action contains infinite values")
        raise ActionError(f"action values must lie in [0, 1]; got min {float(memory.min())!r}, "
                          f"max {float(memory.max())!r}")
    return memory


def step_outputs(memory: np.ndarray, features: np.ndarray, probs: np.ndarray, loss: np.ndarray,
                 reward_clamp: float | np.ndarray, output_gate: float | np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a step shows the agent, for rows (B, ...) or K replicas' stacks (K, B, ...):
    (observation [memory | features | probabilities] (..., B, D), reward -min(loss, clamp)
    (..., B) (loss >= 0: in [-clamp, 0]; ``reward_clamp`` a number or (K, 1)), A's
    prediction (..., B)). ``output_gate`` (a number or (K, 1, 1)) multiplies the
    probabilities the observation shows: 0 where the memory-net must not see A's output
    (``memory_sees_output=false``); None shows them all."""
    reward = -np.minimum(loss, reward_clamp)
    shown = probs if output_gate is None else probs * output_gate
    observation = np.concatenate([memory, features, shown], axis=-1)
    return observation, reward, probs.argmax(axis=-1)


class StepCore:
    """One batched step of the action network: features, prediction, loss, reward (NumPy).

    ``learn=True`` trains A on the rows that are valid; ``learn=False`` only evaluates it.
    """

    def __init__(self, task: Task, learner: ActionLearner, layout: ObservationLayout,
                 reward_clamp: float, sees_output: bool = True) -> None:
        self.table = task.input_table.to(torch.float32).numpy()
        self.learner, self.layout, self.reward_clamp = learner, layout, reward_clamp
        self.sees_output = sees_output  # False: the observation's output block stays zero

    def __call__(self, input_ids: np.ndarray, targets: np.ndarray, valid: np.ndarray,
                 memory: np.ndarray, learn: bool, all_valid: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (observation (B, D), reward (B,), loss (B,), prediction (B,)).

        Rows that are not valid get a zero output and zero loss; ``all_valid`` skips the masking.
        """
        features = self.table[input_ids]
        run = self.learner.train_step if learn else self.learner.evaluate
        if all_valid:
            probs, loss = run(features, memory, targets)
        else:
            probs = np.zeros((input_ids.shape[0], self.layout.num_outputs), dtype=np.float32)
            loss = np.zeros(input_ids.shape[0], dtype=np.float32)
            if valid.any():
                probs[valid], loss[valid] = run(features[valid], memory[valid], targets[valid])
        observation, reward, prediction = step_outputs(memory, features, probs, loss,
                                                        self.reward_clamp,
                                                        None if self.sees_output else 0.0)
        return observation, reward, loss, prediction
