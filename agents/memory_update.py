"""One round of the paper's memory-net update, written out in NumPy for f without embeddings.

f(s) = sigmoid(BN(W s + b)) on R sampled rows: tiny matrices (R = 128 by 70 by 48 on Logic),
where autograd and module dispatch cost ten times the arithmetic. This is the same update
as ``MannRLAgent``'s torch path: f runs in train mode on s_k and then on s_{k+1} (each batch
normalised by its own statistics, each moving the running statistics), the loss is
SmoothL1(f(s_k), gamma * f(s_{k+1}) + r_{k+1}) averaged over memory units and the usable
rows, its gradient flows through both branches (unless ``detach_target``), the gradient is
clipped by its global norm, and the optimizer steps (RMSprop in NumPy on the torch
optimizer's own state; others by torch) on the gradient written here.
``tests/test_agents.py`` compares it with autograd.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mannrl_gym.agents.replay import BatchStateReplay

BN_EPS, BN_MOMENTUM = 1e-5, 0.1


class NumpyMemoryUpdate:
    """The update of ``net.body`` = (Linear(D, M), BatchNorm1d(M), Sigmoid) on NumPy views of
    its parameters, buffers and gradients (shared memory: the torch optimizer and
    checkpoints see every change)."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        """``optimizer`` None: forward passes only (``forward_statistics``), no gradients."""
        linear, norm = net.body[0], net.body[1]
        self.params = [linear.weight, linear.bias, norm.weight, norm.bias]
        self.w, self.b, self.gamma, self.beta = (p.detach().numpy() for p in self.params)
        if optimizer is not None:
            for p in self.params:  # gradients live in NumPy arrays the optimizer reads
                p.grad = torch.zeros_like(p)
            self.g_w, self.g_b, self.g_gamma, self.g_beta = (p.grad.numpy() for p in self.params)
        self.running_mean, self.running_var = norm.running_mean.numpy(), norm.running_var.numpy()
        self.batches_tracked = norm.num_batches_tracked
        self.optimizer = optimizer

    def _step(self) -> None:
        """The optimizer's step on the gradients written here: plain RMSprop (torch's
        defaults: no momentum, not centred, no weight decay) in NumPy on the optimizer's own
        state tensors (so its state_dict is torch's), anything else by torch."""
        optimizer = self.optimizer
        group = optimizer.param_groups[0]
        if not (isinstance(optimizer, torch.optim.RMSprop) and len(optimizer.param_groups) == 1
                and not group["momentum"] and not group["centered"]
                and not group["weight_decay"] and not group["maximize"]):
            optimizer.step()
            return
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        for param, value, grad in zip(self.params, (self.w, self.b, self.gamma, self.beta),
                                      (self.g_w, self.g_b, self.g_gamma, self.g_beta)):
            state = optimizer.state[param]
            if not state:  # as torch initialises it at the first step
                state["step"] = torch.tensor(0.0)
                state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            square_avg = state["square_avg"].numpy()
            square_avg *= alpha
            square_avg += (1 - alpha) * grad * grad
            denom = np.sqrt(square_avg)
            denom += eps
            value -= lr * grad / denom

    def forward_statistics(self, replay: BatchStateReplay, samples: int,
                           generator: torch.Generator) -> None:
        """What one update does to the running statistics alone: f in train mode on
        ``samples`` sampled pairs (the same draws as ``iteration``), no loss, no gradient."""
        state, next_state, _, _ = replay.sample_pairs_numpy(samples, generator)
        if state.shape[0] >= 2:  # batch norm needs 2 rows
            self._forward(state)
            self._forward(next_state)

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        """f(x) in train mode (moves the running statistics); (output (R, M), cache)."""
        rows = x.shape[0]
        pre = x @ self.w.T
        pre += self.b
        mean = pre.sum(axis=0) * (1.0 / rows)
        centred = pre - mean
        var = (centred * centred).sum(axis=0) * (1.0 / rows)
        inv_std = 1.0 / np.sqrt(var + BN_EPS)
        normed = centred * inv_std
        out = 1.0 / (1.0 + np.exp(-(normed * self.gamma + self.beta)))
        self.running_mean *= 1 - BN_MOMENTUM
        self.running_mean += BN_MOMENTUM * mean
        self.running_var *= 1 - BN_MOMENTUM
        self.running_var += (BN_MOMENTUM * rows / (rows - 1)) * var
        self.batches_tracked += 1
        return out, (x, normed, inv_std, out)

    def _backward(self, d_out: np.ndarray, cache: tuple) -> None:
        """Add this branch's gradients to the parameters' (the two branches sum)."""
        x, normed, inv_std, out = cache
        inv_rows = 1.0 / x.shape[0]
        d_y = d_out * out * (1.0 - out)
        self.g_gamma += (d_y * normed).sum(axis=0)
        self.g_beta += d_y.sum(axis=0)
        d_normed = d_y * self.gamma
        d_pre = d_normed - d_normed.sum(axis=0) * inv_rows
        d_pre -= normed * ((d_normed * normed).sum(axis=0) * inv_rows)
        d_pre *= inv_std
        self.g_w += d_pre.T @ x
        self.g_b += d_pre.sum(axis=0)

    def iteration(self, replay: BatchStateReplay, samples: int, generator: torch.Generator,
                  gamma: float, detach_target: bool, clipping: float,
                  update_weights: bool) -> float | None:
        """One update on ``samples`` sampled pairs; the loss, or None when too few rows."""
        state, next_state, reward, usable = replay.sample_pairs_numpy(samples, generator)
        if state.shape[0] < 2 or not usable.any():  # batch norm needs 2 rows
            return None
        memory, cache = self._forward(state)
        next_memory, next_cache = self._forward(next_state)
        expected = next_memory * gamma
        expected += reward[:, None]
        diff = memory - expected
        size = np.abs(diff)
        small = size < 1.0
        size -= 0.5
        per_row = np.where(small, 0.5 * diff * diff, size).sum(axis=1) * (1.0 / diff.shape[1])
        count = int(usable.sum())
        loss = float(per_row[usable].sum()) / count
        if not update_weights or not np.isfinite(loss):
            return loss
        # d loss / d memory: SmoothL1's slope (the difference, clipped to [-1, 1]), averaged
        # over units and usable rows
        d_memory = np.clip(diff, -1.0, 1.0)
        d_memory *= (usable * (1.0 / (count * diff.shape[1]))).astype(np.float32)[:, None]
        for grad in (self.g_w, self.g_b, self.g_gamma, self.g_beta):
            grad.fill(0.0)
        self._backward(d_memory, cache)
        if not detach_target:
            self._backward(-gamma * d_memory, next_cache)
        norm = float(np.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in
                                 (self.g_w, self.g_b, self.g_gamma, self.g_beta))))
        scale = min(1.0, clipping / (norm + 1e-6))
        for grad in (self.g_w, self.g_b, self.g_gamma, self.g_beta):
            grad *= scale
        self._step()
        return loss
