"""The paper's memory-net agent: Q-learning with experience replay over memory vectors.

Read top to bottom: ``act`` writes the next memory, ``observe`` runs the training dance,
``learn`` is one round of memory-net updates.

The dance, repeated forever (counted in env steps):
  settle   ``settle`` steps: the env trains A, the agent only acts;
  buffer   ``history`` steps: the env still trains A, the agent keeps each batch-state;
  train    A waits while the agent makes ``memory_train_iterations`` updates of f, each on
           ``memory_samples`` random pairs (s_k, s_{k+1}) of the buffer (all B slots of each),
           minimising SmoothL1( f(s_k), gamma * f(s_{k+1}) - clamp(loss_{k+1}) ); then the
           buffer is emptied.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from mannrl_gym.agents.memory_optimizer import clip_and_step
from mannrl_gym.agents.memory_update import (NumpyMemoryUpdate, forward_torch, loss_torch,
                                             memory_blocks, running_statistics_torch)
from mannrl_gym.agents.replay import BatchStateReplay, ReplayCycle
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import MemoryNet, fold_batch_norm, initialize
from mannrl_gym.numerics import raise_non_finite
from mannrl_gym.threads import one_thread, split_matmul


def act_folded(maps: list[tuple[np.ndarray, np.ndarray]], state: np.ndarray,
               layout: ObservationLayout) -> np.ndarray:
    """f in eval mode from its folded affine maps (``MannRLAgent.folded``): states (..., B, D)
    -> memories (..., B, M) in [0, 1]. One agent: maps (W' (I, O), b' (O,)); K agents stacked:
    (W' (K, I, O), b' (K, 1, O)) and states (K, B, D). With three maps (f's embeddings) the
    input and output parts of each state are embedded (affine, relu) first."""
    if len(maps) == 3:
        (w_in, b_in), (w_out, b_out), _ = maps
        embedded_input = np.maximum(np.matmul(state[..., layout.input], w_in) + b_in, 0)
        embedded_output = np.maximum(np.matmul(state[..., layout.output], w_out) + b_out, 0)
        state = np.concatenate([state[..., layout.memory], embedded_input, embedded_output],
                               axis=-1)
    weight, bias = maps[-1]
    pre = split_matmul(state, weight)  # on two cores when the run has two threads
    pre += bias
    np.negative(pre, out=pre)  # the sigmoid, in place
    np.exp(pre, out=pre)
    pre += 1.0
    return np.reciprocal(pre, out=pre)


class MannRLAgent:
    """Memory-net f(s) = sigmoid(BN(W s + b)) trained by the paper's Q-learning; with
    ``config.embed_size`` the input and output parts of s are embedded first (section 4.3).

    Args:
        layout: the env's observation layout (state size D, memory size M).
        config: history, settle, memory_* settings, gamma, detach_target, carry_memory.
        num_slots: B, the env's number of slots.
        seed: draws f's weights and the replay sampling.
        learn: False freezes f at its initial weights and statistics (the "frozen memory"
            ablation).
        update_weights: False runs the paper's update schedule in full (f's batch-norm running
            statistics follow the memories) but never steps the optimizer: the "frozen weights,
            live statistics" control, which shows what the reward itself teaches.

    Idle slots (``info["valid"]`` False) are never stored as learnable and never enter f's
    batch statistics: the sampled batch shrinks to the live rows, as in the reference.
    """

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int, seed: int,
                 learn: bool = True, update_weights: bool = True) -> None:
        self.config, self.layout, self.learns = config, layout, learn
        self.update_weights = update_weights
        self.net = MemoryNet(layout.memory_size, layout.input_dim, layout.num_outputs,
                             config.embed_size)
        initialize(self.net, torch.Generator().manual_seed(seed + 1))
        self.generator = torch.Generator().manual_seed(seed + 2)
        optimizer = torch.optim.RMSprop if config.memory_optimizer == "rmsprop" else torch.optim.Adam
        self.optimizer = optimizer(self.net.parameters(), lr=config.memory_lr, foreach=True)
        self.cycle = ReplayCycle(config.settle, config.history, num_slots, layout.size)
        # without embeddings f's update runs in NumPy (the same update, a fraction of the time)
        self.numpy_update = (NumpyMemoryUpdate(self.net, self.optimizer)
                             if self.net.embed_input is None else None)
        self.updates = 0
        self.version = 0  # counts every change of f (an update, a load): ``folded`` follows it
        self._acting: list[tuple[np.ndarray, np.ndarray]] | None = None

    @classmethod
    def replicate(cls, agents: Sequence["MannRLAgent"], slots: int):
        """K agents of this class (one shape) acting and observing as one
        (``mannrl_gym.protocols.AgentReplicas``): batched ``act``, stacked replays."""
        from mannrl_gym.replicas.agents import ReplicatedAgents

        return ReplicatedAgents(agents, slots)

    @property
    def replay(self) -> BatchStateReplay:
        """The batch-states of the current cycle (``self.cycle``)."""
        return self.cycle.replay

    def learning_rate(self, epoch: int) -> float:
        """f's learning rate in (0-based) ``epoch``: memory_lr, times memory_lr_decay every
        memory_lr_decay_every epochs when that is set."""
        every = self.config.memory_lr_decay_every
        steps = epoch // every if every else 0
        return self.config.memory_lr * self.config.memory_lr_decay ** steps

    def start_epoch(self, epoch: int) -> None:
        """Set the optimizer's learning rate for ``epoch`` (see ``learning_rate``)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(epoch)

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """The paper's agent explores through its own updates: the same as ``act``."""
        return self.act(observation)

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Next memory (B, M) in [0, 1] for observations (B, D): f in eval mode.

        Batch norm in eval mode is an affine map, folded into the linear layers once per update.
        """
        return act_folded(self.folded(), np.asarray(observation, dtype=np.float32),
                          self.layout)

    def folded(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """f in eval mode: each linear + BN pair as one affine map (W' (in, out), b' (out,)), in
        order (the input's and output's embeddings first, where f has them); cached until f
        changes (``version``)."""
        if self._acting is None:
            blocks = [self.net.embed_input, self.net.embed_output] if self.net.embed_input else []
            self._acting = [fold_batch_norm(block[0], block[1])
                            for block in blocks + [self.net.body]]
        return self._acting

    def changed(self) -> None:
        """f's weights or statistics changed: fold them again before the next ``act``."""
        self.version += 1
        self._acting = None

    def took_updates(self, count: int, step_in_cycle: int) -> None:
        """Account for ``count`` updates made elsewhere on this agent's own parameters,
        statistics and optimizer state (the device path), which left its cycle at
        ``step_in_cycle``."""
        self.updates += count
        self.cycle.resume_at(step_in_cycle)
        self.changed()

    def observe(self, observation: np.ndarray, reward: np.ndarray, info: dict) -> dict | None:
        """Record the step that produced ``observation``; train f when the cycle says so.

        Returns the update's statistics after a memory update, else None.
        """
        if not self.learns:
            return None
        self.cycle.record(observation, reward, self.usable_rows(info), info["valid"])
        return self.learn_if_due()

    def usable_rows(self, info: dict) -> np.ndarray:
        """Which rows' transitions (s_{k-1} -> s_k) may be learned from: the live ones, less a
        sequence's first step when the env zeroed its memory (carry_memory False)."""
        if self.config.carry_memory:
            return info["valid"]
        return info["valid"] & ~info["sequence_start"]

    def learn_if_due(self) -> dict | None:
        """After a recorded step: the update's statistics if the cycle was due, else None."""
        if not self.cycle.due:
            return None
        stats = self.learn()
        self.cycle.restart()
        return stats

    def learn(self) -> dict:
        """``memory_train_iterations`` SmoothL1 updates of f on pairs sampled from the replay.

        Torch on one thread: the products split themselves in two (``split_bmm``) when the run
        has two threads, and torch's pool, asleep, cannot stall the rest (``mannrl_gym.threads``).
        """
        with one_thread():
            return self._learn()

    def _learn(self) -> dict:
        cfg = self.config
        self.net.train()
        if self.numpy_update is not None:
            return self._learn_numpy()
        losses = []
        blocks = memory_blocks(self.net)
        split = self.net.split_sizes if self.net.embed_input is not None else None
        gamma = torch.full((1, 1, 1), cfg.gamma)
        for _ in range(cfg.memory_train_iterations):
            states, index, reward, usable = self.replay.sample_pair_rows(cfg.memory_samples,
                                                                        self.generator)
            if int(index.shape[1]) < 2 or not bool(usable.any()):  # batch norm needs 2 rows
                continue
            live_rows = torch.full((1,), index.shape[1])  # the rows are all live: no mask
            with torch.set_grad_enabled(self.update_weights):  # the control needs no graph
                params = [tuple(p.unsqueeze(0) for p in (block[0].weight, block[0].bias,
                                                         block[1].weight, block[1].bias))
                          for block in blocks]
                # one group; each stored state's product by f's memory part once
                out, statistics = forward_torch(params, states[None], None, split, index[None])
                loss = loss_torch(out, reward[None], usable[None], gamma, cfg.detach_target)[0]
            if not bool(torch.isfinite(loss)):
                raise_non_finite("memory-net", f"at update {self.updates + 1}", "the SmoothL1 loss",
                                 self.net)
            with torch.no_grad():  # batch norm's running statistics, as two forwards move them
                for block, batch in zip(blocks, statistics):
                    norm = block[1]
                    mean, var = running_statistics_torch(
                        (norm.running_mean[None], norm.running_var[None]), batch, live_rows)
                    norm.running_mean.copy_(mean[0])
                    norm.running_var.copy_(var[0])
                    norm.num_batches_tracked += 2
            if self.update_weights:
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_and_step(self.optimizer, list(self.net.parameters()), cfg.memory_clipping)
            losses.append(loss.detach())
        self.updates += 1
        self.changed()
        return {"memory_loss": float(torch.stack(losses).mean()) if losses else float("nan")}

    def _learn_numpy(self) -> dict:
        """``learn`` through ``NumpyMemoryUpdate`` (f without embeddings)."""
        cfg, losses = self.config, []
        for _ in range(cfg.memory_train_iterations):
            loss = self.numpy_update.iteration(
                self.replay, cfg.memory_samples, self.generator, cfg.gamma, cfg.detach_target,
                cfg.memory_clipping, self.update_weights)
            if loss is None:
                continue
            if not math.isfinite(loss):
                raise_non_finite("memory-net", f"at update {self.updates + 1}",
                                 "the SmoothL1 loss", self.net)
            losses.append(loss)
        self.updates += 1
        self.changed()
        return {"memory_loss": float(np.mean(losses)) if losses else float("nan")}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), **self.cycle.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.cycle.load_state_dict(state)
        self.updates = int(state["updates"])
        self.changed()
