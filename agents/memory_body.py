"""What the reward-trained memory agents share about f = MemoryNet (mannrl_gym.networks).

f(s) = sigmoid(BN(W x + b)) with x = s, or x = [memory, embed(input), embed(output)] when the
config embeds (section 4.3). These helpers run f in NumPy in eval mode (batch norm as an affine
map), give its pre-sigmoid output in torch, and set its batch-norm running statistics to the
exact moments of a window of states ("live statistics", as the paper's updates refresh them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import MemoryNet, fold_batch_norm


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


def sigmoid(pre: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-pre))


@torch.no_grad()
def refresh_statistics(net: MemoryNet, states: torch.Tensor) -> None:
    """Set every batch-norm layer's running mean and variance to the moments of ``states``
    (R, D) (live rows only), f's weights untouched. Needs R >= 2."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0  # running <- this batch's moments (the variance unbiased)
    was_training = net.training
    net.train()
    try:
        net(states)
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum
        net.train(was_training)
