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

import math

import numpy as np
import torch
from torch import nn

from mannrl_gym.agents.replay import BatchStateReplay
from mannrl_gym.networks import BN_EPS, BN_MOMENTUM


class NumpyMemoryUpdate:
    """The update of ``net.body`` = (Linear(D, M), BatchNorm1d(M), Sigmoid) on NumPy views of
    its parameters, buffers and gradients (shared memory: the torch optimizer and
    checkpoints see every change).

    With an optimizer, the four parameters, their gradients and RMSprop's square averages
    are views of one flat buffer each, so clipping and RMSprop are a few passes over (P,).
    The two branches (s_k and s_{k+1}) run as one stacked (2, R, ...) pass, each normalised
    by its own batch statistics.

    Public state (with an optimizer): ``flat`` (P,) torch, the four parameters in order (W,
    b, gamma, beta); ``grad_flat`` (P,) NumPy, their gradient; ``square_flat`` (P,) torch,
    RMSprop's square averages; ``running_mean``, ``running_var`` (M,), ``batches_tracked``
    (1,) NumPy views of the batch-norm buffers.
    """

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        """``optimizer`` None: forward passes only (``forward_statistics``), no gradients."""
        linear, norm = net.body[0], net.body[1]
        self.params = [linear.weight, linear.bias, norm.weight, norm.bias]
        if optimizer is not None:
            sizes = [p.numel() for p in self.params]
            self.flat = torch.cat([p.detach().reshape(-1) for p in self.params])
            self.grad_flat = np.zeros(sum(sizes), dtype=np.float32)
            self.square_flat = torch.zeros(sum(sizes))
            self._square_views, offset = [], 0
            for p, size in zip(self.params, sizes):  # parameters and gradients: flat views
                p.data = self.flat[offset:offset + size].view_as(p)
                p.grad = torch.from_numpy(self.grad_flat[offset:offset + size]).view_as(p)
                self._square_views.append(self.square_flat[offset:offset + size].view_as(p))
                offset += size
            self.g_w, self.g_b, self.g_gamma, self.g_beta = (p.grad.numpy() for p in self.params)
        self.w, self.b, self.gamma, self.beta = (p.detach().numpy() for p in self.params)
        self.running_mean, self.running_var = norm.running_mean.numpy(), norm.running_var.numpy()
        self.batches_tracked = norm.num_batches_tracked.view(1).numpy()
        self.optimizer = optimizer

    @property
    def plain_rmsprop(self) -> bool:
        """The optimizer is torch's RMSprop with its defaults (no momentum, not centred, no
        weight decay), which this class (and the device path) can step itself."""
        optimizer = self.optimizer
        group = optimizer.param_groups[0]
        return (isinstance(optimizer, torch.optim.RMSprop) and len(optimizer.param_groups) == 1
                and not group["momentum"] and not group["centered"]
                and not group["weight_decay"] and not group["maximize"])

    def rmsprop_state(self, create: bool) -> bool:
        """Make RMSprop's square averages views of the flat buffer (a loaded state's values
        are adopted); without state yet, create it as torch does at its first step when
        ``create``. True when the state exists (afterwards)."""
        optimizer = self.optimizer
        for param, view in zip(self.params, self._square_views):
            state = optimizer.state.get(param)
            if not state:
                if not create:
                    return False
                view.zero_()
                optimizer.state[param] = {"step": torch.tensor(0.0), "square_avg": view}
            elif state["square_avg"] is not view:  # loaded: adopt its values
                view.copy_(state["square_avg"])
                state["square_avg"] = view
        return True

    def count_steps(self, count: int) -> None:
        """Add ``count`` optimizer steps to RMSprop's step counts (its state must exist)."""
        for param in self.params:
            self.optimizer.state[param]["step"] += count

    def _step(self) -> None:
        """The optimizer's step on the gradients written here: plain RMSprop (torch's
        defaults) in NumPy on the optimizer's own state tensors (so its state_dict is
        torch's; they are views of one flat buffer, taken over again after a
        ``load_state_dict``), anything else by torch."""
        if not self.plain_rmsprop:
            self.optimizer.step()
            return
        group = self.optimizer.param_groups[0]
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        self.rmsprop_state(create=True)
        self.count_steps(1)
        square_avg, grad, value = self.square_flat.numpy(), self.grad_flat, self.flat.numpy()
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        denom = np.sqrt(square_avg)
        denom += eps
        value -= lr * grad / denom

    def forward_statistics(self, replay: BatchStateReplay, samples: int,
                           generator: torch.Generator) -> None:
        """What one update does to the running statistics alone: f in train mode on
        ``samples`` sampled pairs (the same draws as ``iteration``), no loss, no gradient."""
        pairs, _, _ = replay.sample_pair_stack(samples, generator)
        if pairs.shape[1] >= 2:  # batch norm needs 2 rows
            self._forward(pairs)

    def _forward(self, pairs: np.ndarray) -> tuple[np.ndarray, tuple]:
        """f in train mode on both branches (2, R, D), each normalised by its own batch
        statistics, moving the running statistics (s_k's batch, then s_{k+1}'s);
        (output (2, R, M), cache)."""
        rows = pairs.shape[1]
        centred = np.matmul(pairs, self.w.T)
        centred += self.b
        mean = centred.sum(axis=1, keepdims=True)
        mean *= 1.0 / rows
        centred -= mean
        var = np.square(centred).sum(axis=1, keepdims=True)
        var *= 1.0 / rows
        inv_std = var + BN_EPS
        np.sqrt(inv_std, out=inv_std)
        np.reciprocal(inv_std, out=inv_std)
        normed = centred
        normed *= inv_std
        out = normed * self.gamma
        out += self.beta
        np.negative(out, out=out)
        np.exp(out, out=out)
        out += 1.0
        np.reciprocal(out, out=out)
        unbiased = BN_MOMENTUM * rows / (rows - 1)
        for branch in range(2):
            self.running_mean *= 1 - BN_MOMENTUM
            self.running_mean += BN_MOMENTUM * mean[branch, 0]
            self.running_var *= 1 - BN_MOMENTUM
            self.running_var += unbiased * var[branch, 0]
        self.batches_tracked += 2
        return out, (pairs, normed, inv_std, out)

    def _backward(self, d_out: np.ndarray, cache: tuple) -> None:
        """Write the parameters' gradients from d loss / d output of the first
        ``d_out.shape[0]`` branches (2: both, summed; 1: s_k's alone)."""
        branches = d_out.shape[0]
        pairs, normed, inv_std, out = (part[:branches] for part in cache)
        inv_rows = 1.0 / pairs.shape[1]
        size = self.w.shape[0]
        d_y = 1.0 - out  # d loss / d (gamma * normed + beta), through the sigmoid
        d_y *= out
        d_y *= d_out
        # per branch: d gamma = sum(d_y * normed), d beta = sum(d_y) over its rows
        d_gamma = np.einsum("brm,brm->bm", d_y, normed)
        d_beta = np.einsum("brm->bm", d_y)
        np.sum(d_gamma, axis=0, out=self.g_gamma)
        np.sum(d_beta, axis=0, out=self.g_beta)
        # batch norm's backward: d pre = gamma * inv_std * (d_y - mean(d_y) - normed *
        # mean(d_y * normed)), the means over each branch's rows
        d_gamma *= inv_rows
        d_beta *= inv_rows
        d_pre = normed * d_gamma[:, None]
        d_pre += d_beta[:, None]
        np.subtract(d_y, d_pre, out=d_pre)
        d_pre *= inv_std * self.gamma
        flat_pre = d_pre.reshape(-1, size)
        np.matmul(flat_pre.T, pairs.reshape(-1, pairs.shape[2]), out=self.g_w)
        np.sum(flat_pre, axis=0, out=self.g_b)

    def iteration(self, replay: BatchStateReplay, samples: int, generator: torch.Generator,
                  gamma: float, detach_target: bool, clipping: float,
                  update_weights: bool) -> float | None:
        """One update on ``samples`` sampled pairs; the loss, or None when too few rows."""
        pairs, reward, usable = replay.sample_pair_stack(samples, generator)
        if pairs.shape[1] < 2 or not usable.any():  # batch norm needs 2 rows
            return None
        out, cache = self._forward(pairs)
        memory, next_memory = out
        expected = next_memory * gamma
        expected += reward[:, None]
        diff = memory - expected
        # SmoothL1 (beta 1) per element: c * (|d| - c / 2) with c = min(|d|, 1)
        size = np.abs(diff)
        clipped = np.minimum(size, 1.0)
        size -= 0.5 * clipped
        size *= clipped
        count = int(usable.sum())
        # the mean over memory units and usable rows: one weight per row
        weight = (usable * (1.0 / (count * diff.shape[1]))).astype(np.float32)
        loss = float(np.dot(weight, size.sum(axis=1)))
        if not update_weights or not math.isfinite(loss):
            return loss
        # d loss / d memory: SmoothL1's slope (the difference, clipped to [-1, 1]) times the
        # row's weight; the target branch's is -gamma times it
        d_out = np.empty((1 if detach_target else 2,) + diff.shape, np.float32)
        np.clip(diff, -1.0, 1.0, out=d_out[0])
        d_out[0] *= weight[:, None]
        if not detach_target:
            np.multiply(d_out[0], -gamma, out=d_out[1])
        self._backward(d_out, cache)
        grad = self.grad_flat
        norm = float(np.sqrt(float(np.dot(grad, grad))))
        grad *= min(1.0, clipping / (norm + 1e-6))
        self._step()
        return loss
