"""What the reward-trained memory agents share about f = MemoryNet (mannrl_gym.networks).

f(s) = sigmoid(BN(W x + b)) with x = s, or x = [memory, embed(input), embed(output)] when the
config embeds (section 4.3). These helpers run f in NumPy in eval mode (batch norm as an affine
map), give its pre-sigmoid output in torch, and keep its batch-norm running statistics live
exactly as the paper's agent does (``PaperStatistics``), so that an agent differs from the
``frozen_weights`` control only by what the reward teaches f's weights.
"""

from __future__ import annotations

import numpy as np
import torch

from mannrl_gym.agents.memory_update import NumpyMemoryUpdate
from mannrl_gym.agents.replay import ReplayCycle
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import MemoryNet, fold_batch_norm, initialize
from mannrl_gym.threads import split_matmul


def seeded_net(layout: ObservationLayout, config: Config, seed: int
               ) -> tuple[MemoryNet, list[torch.nn.Parameter]]:
    """f drawn from ``seed + 1`` (as every memory agent draws it), in eval mode, and the
    parameters of its last block that a reward-trained agent moves: [W (M, D'), batch norm's
    gain (M,) and shift (M,)] (the bias b is cancelled by batch norm's mean)."""
    net = MemoryNet(layout.memory_size, layout.input_dim, layout.num_outputs, config.embed_size)
    initialize(net, torch.Generator().manual_seed(seed + 1))
    net.eval()
    linear, norm = net.body[0], net.body[1]
    return net, [linear.weight, norm.weight, norm.bias]


def embedding_affines(net: MemoryNet) -> list[tuple[np.ndarray, np.ndarray]]:
    """The input and output embedding blocks folded to (W' (in, out), b' (out,)); [] if none."""
    if net.embed_input is None:
        return []
    return [fold_batch_norm(block[0], block[1]) for block in (net.embed_input, net.embed_output)]


def embed_numpy(affines: list[tuple[np.ndarray, np.ndarray]], layout: ObservationLayout,
                state: np.ndarray) -> np.ndarray:
    """x (B, D') from states (B, D): the body's input, f in eval mode."""
    if not affines:
        return state
    (w_in, b_in), (w_out, b_out) = affines
    embedded_input = np.maximum(state[:, layout.input] @ w_in + b_in, 0)
    embedded_output = np.maximum(state[:, layout.output] @ w_out + b_out, 0)
    return np.concatenate([state[:, layout.memory], embedded_input, embedded_output], 1)


def pre_activation(net: MemoryNet, state: torch.Tensor) -> torch.Tensor:
    """f's output before the sigmoid, (R, M), in the net's current mode (autograd on)."""
    if net.embed_input is not None:
        memory, features, output = state.split(net.split_sizes, dim=1)
        state = torch.cat([memory, net.embed_input(features), net.embed_output(output)], 1)
    return net.body[1](net.body[0](state))


class FoldedNet:
    """f's pre-sigmoid output in NumPy, eval mode, batch norm folded into the linear maps;
    the folding is rebuilt on first use after ``stale()`` (call it when weights or statistics
    change)."""

    def __init__(self, net: MemoryNet, layout: ObservationLayout) -> None:
        self.net, self.layout = net, layout
        self._maps: list | None = None

    def stale(self) -> None:
        self._maps = None

    def pre(self, observation: np.ndarray) -> np.ndarray:
        """pre_f(s), (B, M), for states (B, D)."""
        if self._maps is None:
            self._maps = [embedding_affines(self.net),
                          fold_batch_norm(self.net.body[0], self.net.body[1])]
        embed, (weight, bias) = self._maps
        x = embed_numpy(embed, self.layout, np.asarray(observation, dtype=np.float32))
        return split_matmul(x, weight) + bias


def sigmoid(pre: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-pre))


class PaperStatistics:
    """f's batch-norm running statistics kept exactly as the paper's agent keeps them (and the
    ``frozen_weights`` control): f's weights are not touched here.

    On the paper's schedule (``replay.ReplayCycle``: every ``settle + history`` steps, the
    live batch-states of the last ``history``), ``memory_train_iterations`` times f runs in
    train mode on ``memory_samples`` sampled pairs (s_k, s_{k+1}) (batch norm's momentum 0.1
    moves the running statistics toward those batches).
    """

    def __init__(self, net: MemoryNet, config: Config, num_slots: int, state_dim: int,
                 seed: int) -> None:
        self.net, self.config = net, config
        self.cycle = ReplayCycle(config.settle, config.history, num_slots, state_dim)
        self.generator = torch.Generator().manual_seed(seed)
        # without embeddings: the paper's agent's NumPy forward (agents/memory_update.py)
        self._numpy = NumpyMemoryUpdate(net, None) if net.embed_input is None else None

    def observe(self, observation: np.ndarray, valid: np.ndarray) -> bool:
        """Record one step (states (B, D), live rows (B,)); True when the statistics moved."""
        if not self.cycle.record(observation, np.zeros(valid.shape[0], np.float32), valid, valid):
            return False
        cfg = self.config
        if self._numpy is not None:  # the same NumPy forward as the paper's agent
            for _ in range(cfg.memory_train_iterations):
                self._numpy.forward_statistics(self.cycle.replay, cfg.memory_samples,
                                               self.generator)
            self.net.eval()
            self.cycle.restart()
            return True
        with torch.no_grad():
            self.net.train()
            for _ in range(cfg.memory_train_iterations):
                state, next_state, _, _ = self.cycle.replay.sample_pairs(cfg.memory_samples,
                                                                         self.generator)
                if int(state.shape[0]) >= 2:  # batch norm needs 2 rows
                    self.net(state)
                    self.net(next_state)
            self.net.eval()
        self.cycle.restart()
        return True

    def state_dict(self) -> dict:
        return {**self.cycle.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.cycle.load_state_dict(state)
        self.generator.set_state(state["generator"])
