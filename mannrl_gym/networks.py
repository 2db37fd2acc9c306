"""The paper's two networks and a seeded initialisation.

ActionNet  A(x, m): linear, batch norm, relu, linear, [softmax]   -> (B, V_out)
MemoryNet  f(s):    linear, batch norm, sigmoid                    -> (B, M), s = (m, x, y)
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ActionNet(nn.Module):
    """Maps (input features (B, F), memory (B, M)) to scores over V_out symbols.

    With ``softmax_output`` (the reference) the scores are probabilities; otherwise logits.
    """

    def __init__(self, input_dim: int, memory_size: int, hidden_size: int, num_outputs: int,
                 softmax_output: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(input_dim + memory_size, hidden_size), nn.BatchNorm1d(hidden_size),
            nn.ReLU(), nn.Linear(hidden_size, num_outputs))
        self.softmax_output = softmax_output

    def forward(self, features: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        scores = self.body(torch.cat([features, memory], dim=1))
        return scores.softmax(dim=1) if self.softmax_output else scores


class MemoryNet(nn.Module):
    """Maps a state s = (memory, input, output), (B, M + F + V_out), to the next memory (B, M) in [0, 1]."""

    def __init__(self, state_dim: int, memory_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(state_dim, memory_size), nn.BatchNorm1d(memory_size),
                                  nn.Sigmoid())

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.body(state)


@torch.no_grad()
def initialize(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation, drawn from ``generator`` instead of the global RNG."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=generator)
            if layer.bias is not None:
                layer.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(layer, nn.BatchNorm1d):
            layer.reset_parameters()
