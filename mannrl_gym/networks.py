"""The paper's two networks and a seeded initialisation.

ActionNet  A(x, m): [embed x: linear, BN, relu], (linear, BN, relu) x L, linear, [softmax]
                    -> (B, V_out). Logic and POS: no embedding, L = 1. Sentences: a 96-wide
                    embedding of the one-hot character, L = 2 (section 4.3).
MemoryNet  f(s):    [embed input and output: linear, BN, relu each], linear, BN, sigmoid
                    -> (B, M), s = (m, x, y).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mannrl_gym.threads import SPLIT_ELEMENTS, in_halves

# batch norm's constants (nn.BatchNorm1d's defaults), for the arithmetic written out by hand
BN_EPS, BN_MOMENTUM = 1e-5, 0.1


def bn_block(in_features: int, out_features: int) -> list[nn.Module]:
    """linear, batch norm, relu: the paper's building block."""
    return [nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU()]


class ActionNet(nn.Module):
    """Maps (input features (B, F), memory (B, M)) to scores over V_out symbols.

    Args:
        hidden_layers: L linear-BN-relu blocks before the output layer.
        embed_size: if set, the input features first pass through a linear-BN-relu block of
            this width (the paper's learned character embedding); else they are used as is.
        softmax_output: the scores are probabilities (the reference); otherwise logits.
    """

    def __init__(self, input_dim: int, memory_size: int, hidden_size: int, num_outputs: int,
                 softmax_output: bool = True, hidden_layers: int = 1,
                 embed_size: int | None = None) -> None:
        super().__init__()
        self.embed = nn.Sequential(*bn_block(input_dim, embed_size)) if embed_size else None
        width = (embed_size or input_dim) + memory_size
        layers: list[nn.Module] = []
        self.hidden_blocks: list[tuple[nn.Linear, nn.BatchNorm1d]] = []  # each block's (linear, BN), in body
        for _ in range(hidden_layers):
            block = bn_block(width, hidden_size)
            self.hidden_blocks.append((block[0], block[1]))
            layers += block
            width = hidden_size
        layers.append(nn.Linear(width, num_outputs))
        self.body = nn.Sequential(*layers)  # one Sequential: the checkpoint keys body.<i>.*
        self.softmax_output = softmax_output

    @property
    def output_layer(self) -> nn.Linear:
        """The last linear layer: (B, width) -> scores (B, V_out)."""
        return self.body[-1]

    def forward(self, features: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            features = self.embed(features)
        scores = self.body(torch.cat([features, memory], dim=1))
        return scores.softmax(dim=1) if self.softmax_output else scores


class MemoryNet(nn.Module):
    """Maps a state s = [memory (M) | input (F) | output (V_out)], (B, D), to the next memory
    (B, M) in [0, 1].

    With ``embed_size`` the input and the output each pass through their own linear-BN-relu
    block of that width before being concatenated with the memory (section 4.3).
    """

    def __init__(self, memory_size: int, input_dim: int, num_outputs: int,
                 embed_size: int | None = None) -> None:
        super().__init__()
        self.split_sizes = [memory_size, input_dim, num_outputs]
        if embed_size:
            self.embed_input = nn.Sequential(*bn_block(input_dim, embed_size))
            self.embed_output = nn.Sequential(*bn_block(num_outputs, embed_size))
            state_dim = memory_size + 2 * embed_size
        else:
            self.embed_input = self.embed_output = None
            state_dim = memory_size + input_dim + num_outputs
        self.body = nn.Sequential(nn.Linear(state_dim, memory_size), nn.BatchNorm1d(memory_size),
                                  nn.Sigmoid())

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        if self.embed_input is not None:
            memory, features, output = state.split(self.split_sizes, dim=1)
            state = torch.cat([memory, self.embed_input(features), self.embed_output(output)], 1)
        return self.body(state)


def fold_batch_norm(linear: nn.Linear, norm: nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """(W' (in, out), b' (out,)) with ``x @ W' + b' == norm(linear(x))`` in eval mode
    (NumPy on the modules' memory: called after every memory update).

    A large W' (``threads.SPLIT_ELEMENTS`` or more: f's body on the sentence task) is stored
    (out, in), as the linear layer's weight, and returned as its (in, out) view: the
    layout in which ``threads.split_matmul`` multiplies it through torch's BLAS, 1.5 times
    faster at 16 x 1216 x 1024 than NumPy's at (in, out) (benchmarks/sentence_speed.py).
    Either way each element is w * gamma / sqrt(var + eps), the same number."""
    weight, bias, gamma, beta = (p.detach().numpy() for p in (linear.weight, linear.bias,
                                                             norm.weight, norm.bias))
    scale = gamma / np.sqrt(norm.running_var.numpy() + norm.eps)
    if weight.size < SPLIT_ELEMENTS:
        folded = np.empty(weight.shape[::-1], np.result_type(weight, scale))
        np.multiply(weight.T, scale, out=folded)
    else:  # one pass over the weight's rows; on two cores in halves
        stored = np.empty(weight.shape, np.result_type(weight, scale))
        half = stored.shape[0] // 2
        if not in_halves(
                lambda: np.multiply(weight[:half], scale[:half, None], out=stored[:half]),
                lambda: np.multiply(weight[half:], scale[half:, None], out=stored[half:])):
            np.multiply(weight, scale[:, None], out=stored)
        folded = stored.T
    shifted = (bias - norm.running_mean.numpy()) * scale
    shifted += beta
    return folded, shifted


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
