"""K independent MANN-RL vector envs (replicas: seeds or sweep points) stepped as one.

Replica k is an ordinary :class:`MannRLVectorEnv` of B slots with its own data, data order
and action network A_k; this env lays the K of them side by side. Every action network is
rebound onto stacked (K, ...) arrays (``mannrl_gym.stacked_learners.StackedLearners``), so a
step where every slot of every replica reads a sequence trains all K networks in one batched
step; any other step (a pass's staggered start and its tail) runs each replica's own
single-env code. Each replica therefore computes exactly what it would alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from mannrl_gym.envs.core import (as_memory, check_open, check_options, check_replica_seed,
                                  step_outputs)
from mannrl_gym.envs.user_warning import warn_at_user_line
from mannrl_gym.envs.vector_env import MannRLVectorEnv, autoreset_step
from mannrl_gym.stacked_learners import StackedLearners
from mannrl_gym.stream import refill_schedules

# the per-step flags of a pass, padded with these values where a replica idles
ROW_FILL = {"inputs": 0, "targets": 0, "start": False, "valid": False, "answer": False,
            "long_range": False, "kind": 0, "sequence": -1}


@dataclass(frozen=True)
class StackedPass:
    """The current pass of K replicas of B slots laid side by side (read-only arrays).

    rows: each of ``ROW_FILL``'s names -> its (T, K, B) per-step array (T: the longest
        replica's pass; a replica that has ended shows the fill values);
    fast: (T,) bool, every slot of every replica reads a sequence (the batched steps);
    start_memory: (K, 1, M) float32, the memory a new sequence starts from in the replicas
        with ``has_start`` ((K,) bool: carry_memory False); None when no replica has one.
    """

    rows: dict[str, np.ndarray]
    fast: np.ndarray
    start_memory: np.ndarray | None
    has_start: np.ndarray


def replica_mask(mask: Any, count: int) -> np.ndarray:
    """``options["replicas"]`` as (K,) bools: ValueError in one line unless it holds K bools,
    at least one True (a pass in which no replica runs has no steps)."""
    values = np.asarray(mask)
    if values.shape != (count,) or values.dtype != bool:
        raise ValueError(f"reset(options={{'replicas': ...}}): the mask must hold {count} bools "
                         f"(True: the replica runs this pass), got {mask!r}")
    if not values.any():
        raise ValueError("reset(options={'replicas': ...}): the mask leaves every replica out; "
                         "at least one must run the pass")
    return values


class ReplicatedVectorEnv(VectorEnv):
    """K learning ``MannRLVectorEnv`` replicas of B slots each, as one vector env of K * B rows.

    Layout: row ``k * B + b`` is slot b of replica k (``replica_slice(k)``). Observation
    (K * B, D) and action (K * B, M) rows are those of the replicas' own spaces, stacked;
    ``info`` holds each replica's info arrays concatenated (K * B,), plus ``replica`` (int64,
    the row's replica) and ``replica_active`` (bool, False once the replica's pass has ended).

    Episodes: ``reset`` starts a pass in every replica; passes differ in length (each replica
    draws its own data order). A replica whose pass ended idles (``valid`` False, reward 0,
    its network untouched) until the longest pass ends; there every row is truncated and the
    next ``step`` starts the next pass of every replica (NEXT_STEP autoreset).

    ``reset(seed=s)`` reseeds replica k with ``s + k``. ``reset(options={"epoch": e})`` reads
    epoch e's data in every replica; ``options={"replicas": mask}`` (K bools) runs this pass
    in the masked replicas only, the others idle throughout (their data order does not move).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, replicas: Sequence[MannRLVectorEnv]) -> None:
        self.replicas = list(replicas)
        if not self.replicas:
            raise ValueError("ReplicatedVectorEnv needs at least one replica")
        first = self.replicas[0]
        if any(not env.learn for env in self.replicas):
            raise ValueError("replicas are learning envs (evaluate each replica's own env)")
        if len({(env.num_envs, env.layout) for env in self.replicas}) != 1:
            raise ValueError("replicas must share num_envs and the observation layout")
        self.num_replicas, self.slots = len(self.replicas), first.num_envs
        self.num_envs = self.num_replicas * self.slots
        self.render_mode = None
        self.layout = first.layout
        self.single_observation_space = first.single_observation_space
        self.single_action_space = first.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.learners = StackedLearners([env.learner for env in self.replicas])
        tables = [env.core.table for env in self.replicas]
        shared = all(t.shape == tables[0].shape and np.array_equal(t, tables[0]) for t in tables)
        # the input features: (V, F) shared by every replica, or (K, V, F)
        self.tables = tables[0] if shared else np.stack(tables)
        # each replica's reward clamp (K, 1)
        self.clamp = np.array([[env.config.memory_clamp] for env in self.replicas],
                              dtype=np.float32)
        # (K, 1, 1): 0 where a replica's memory-net does not see A's output; None: all see it
        gate = np.array([[[float(env.config.memory_sees_output)]] for env in self.replicas],
                        dtype=np.float32)
        self.output_gate = None if gate.all() else gate
        self._memory_shape = (self.num_replicas, self.slots, self.layout.memory_size)
        self._replica_of_row = np.repeat(np.arange(self.num_replicas), self.slots)
        self._replica_of_row.setflags(write=False)
        self._idle_observation = np.concatenate(
            [np.zeros((self.slots, self.layout.memory_size), np.float32),
             np.repeat(tables[0][:1], self.slots, axis=0),
             np.zeros((self.slots, self.layout.num_outputs), np.float32)], axis=1)
        self.lengths = np.zeros(self.num_replicas, dtype=np.int64)
        self.stacked: StackedPass | None = None  # the current pass, from ``reset`` on
        self._t = 0
        self._needs_reset = True
        # threads that lay out the K passes at each reset (each replica's data order and
        # first step; results do not depend on it): 1 on the CPU path, all cores on a device,
        # where this host work bounds the rate at large K
        self.reset_workers = 1

    def replica_slice(self, k: int) -> slice:
        """The rows of replica k in observations, actions and info arrays (``k`` in
        ``[-K, K)``, negative from the end as Python's indexing)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or not -self.num_replicas <= k < self.num_replicas:
            raise IndexError(f"replica_slice({k!r}): replica index out of range for "
                             f"{self.num_replicas} replicas")
        k = int(k) % self.num_replicas
        return slice(k * self.slots, (k + 1) * self.slots)

    def render(self) -> None:
        """Nothing: a replicated env draws no frames (render one replica's env:
        ``make_vec(id, render_mode="ansi")`` without ``replicas``); warns, as Gymnasium's envs
        do without a render mode."""
        warn_at_user_line("render(): a replicated env draws no frames; render one replica's "
                          "env (make_vec(id, render_mode='ansi') without replicas)")

    @property
    def t(self) -> int:
        """The current pass's step last taken (0: the reset)."""
        return self._t

    def seek(self, t: int) -> None:
        """Continue the pass after step ``t``, whose steps were taken elsewhere (the device
        path: ``mannrl_gym.replicas.device``)."""
        self._t = t

    @property
    def steps_per_pass(self) -> int:
        """Steps of the current pass: the longest replica's; ``step`` is called this - 1 times."""
        return max(1, int(self.lengths.max()))

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check_open(self.closed, "reset()")
        check_options(options, known=("epoch", "replicas"))
        check_replica_seed(seed, self.num_replicas, f"reset(seed={seed!r})")
        super().reset(seed=seed)
        options = dict(options or {})
        running = replica_mask(options.pop("replicas", [True] * self.num_replicas),
                               self.num_replicas)
        shape = (self.num_replicas, self.slots)
        observations = np.empty(shape + (self.layout.size,), np.float32)
        loss, prediction = np.zeros(shape, np.float32), np.zeros(shape, np.int64)
        self.lengths[:] = 0

        chosen = [int(k) for k in np.flatnonzero(running)]
        # each replica's own reset, in two halves: its draws (from its own generator), then,
        # with the refill schedules of all replicas computed in one loop, its layout and step 0
        plans = [self.replicas[k].plan_pass(seed=None if seed is None else seed + k,
                                            options=options or None) for k in chosen]
        placements: list = [None] * len(chosen)
        if len(chosen) > 1 and all(self.replicas[k].config.batching == "refill" for k in chosen):
            placements = refill_schedules([p.lengths.numpy() for p in plans],
                                          np.stack([p.first_free.numpy() for p in plans]))

        def start(j: int):
            return self.replicas[chosen[j]].start_pass(plans[j], placements[j])

        if self.reset_workers > 1 and len(chosen) > 1:  # replicas touch only their own state
            with ThreadPoolExecutor(min(self.reset_workers, len(chosen))) as pool:
                started = list(pool.map(start, range(len(chosen))))
        else:
            started = [start(j) for j in range(len(chosen))]
        for k, (observation, info) in zip(chosen, started):
            observations[k] = observation
            loss[k], prediction[k] = info["loss"], info["prediction"]
            self.lengths[k] = self.replicas[k].steps_per_pass
        observations[~running] = self._idle_observation
        steps = self.steps_per_pass
        rows = {}
        for name, fill in ROW_FILL.items():
            dtype = np.int64 if isinstance(fill, int) and not isinstance(fill, bool) else bool
            stacked = np.full((steps, self.num_replicas, self.slots), fill, dtype=dtype)
            for k, env in enumerate(self.replicas):
                if running[k]:
                    stacked[:self.lengths[k], k] = getattr(env.stream, name).numpy()
            stacked.setflags(write=False)
            rows[name] = stacked
        fast = rows["valid"].all(axis=(1, 2))  # every slot of every replica live
        fast.setflags(write=False)
        start_memories = [env.start_memory for env in self.replicas]
        has_start = np.array([m is not None for m in start_memories])  # (K,)
        start_memory = (  # (K, 1, M); rows of replicas that carry their memory unused
            np.stack([np.zeros(self.layout.memory_size, np.float32) if m is None else m
                      for m in start_memories])[:, None, :] if has_start.any() else None)
        self.stacked = StackedPass(rows, fast, start_memory, has_start)
        self._t = 0
        self._needs_reset = False
        return observations.reshape(self.num_envs, -1), self._info(loss, prediction)

    def step(self, actions):
        check_open(self.closed, "step()")
        if self.stacked is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        if self._needs_reset:
            return autoreset_step(self)
        memory = as_memory(actions, (self.num_envs, self.layout.memory_size))
        memory = memory.reshape(self._memory_shape)
        self._t += 1
        t = self._t
        if self.stacked.fast[t]:
            observation, reward, loss, prediction = self._batched_step(t, memory)
        else:
            observation, reward, loss, prediction = self._replica_steps(t, memory)
        truncated = np.full(self.num_envs, t == self.steps_per_pass - 1)
        self._needs_reset = bool(truncated[0])
        return (observation.reshape(self.num_envs, -1), reward.reshape(-1),
                np.zeros(self.num_envs, dtype=bool), truncated, self._info(loss, prediction))

    # -- internals -------------------------------------------------------------------------
    def _batched_step(self, t: int, memory: np.ndarray):
        """Every slot of every replica is live: all K networks train in one batched step."""
        stacked = self.stacked
        rows = stacked.rows
        if stacked.start_memory is not None:  # carry_memory=False: new sequences start from it
            starts = rows["start"][t] & stacked.has_start[:, None]
            memory = np.where(starts[:, :, None], stacked.start_memory, memory)
        inputs = rows["inputs"][t]
        features = (self.tables[inputs] if self.tables.ndim == 2
                    else self.tables[np.arange(self.num_replicas)[:, None], inputs])
        probs, loss = self.learners.train_step(features, memory, rows["targets"][t])
        observation, reward, prediction = step_outputs(memory, features, probs, loss, self.clamp,
                                                        self.output_gate)
        return observation, reward, loss, prediction

    def _replica_steps(self, t: int, memory: np.ndarray):
        """Each replica still in its pass takes its own single-env step; the rest idle."""
        shape = (self.num_replicas, self.slots)
        observation = np.empty(shape + (self.layout.size,), np.float32)
        reward, loss = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        prediction = np.zeros(shape, np.int64)
        for k, env in enumerate(self.replicas):
            if t >= self.lengths[k]:
                observation[k] = self._idle_observation
                continue
            env.seek(t - 1)  # the single env resumes at this replica's step
            observation[k], reward[k], _, _, info = env.step(memory[k])
            loss[k], prediction[k] = info["loss"], info["prediction"]
        return observation, reward, loss, prediction

    def _info(self, loss: np.ndarray, prediction: np.ndarray) -> dict[str, np.ndarray]:
        rows, t = self.stacked.rows, self._t
        target = rows["targets"][t].reshape(-1)
        prediction = prediction.reshape(-1)
        valid = rows["valid"][t].reshape(-1)
        return {"loss": loss.reshape(-1), "correct": (prediction == target) & valid,
                "prediction": prediction, "target": target,
                "valid": valid,
                "sequence_start": rows["start"][t].reshape(-1),
                "answer_step": rows["answer"][t].reshape(-1),
                "long_range": rows["long_range"][t].reshape(-1),
                "kind": rows["kind"][t].reshape(-1), "sequence": rows["sequence"][t].reshape(-1),
                "replica": self._replica_of_row,
                "replica_active": np.repeat(t < self.lengths, self.slots)}

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.replicas:
            env.close()

