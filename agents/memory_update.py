"""One round of the paper's memory-net update, written once per backend.

f(s) = sigmoid(BN(W s + b)) (with embeddings, the input and output parts of s first pass
through linear, BN, relu each) runs in train mode on s_k and then on s_{k+1} (each batch
normalised by its own statistics, each moving the running statistics), the loss is
SmoothL1(f(s_k), gamma * f(s_{k+1}) + r_{k+1}) averaged over memory units and the usable
rows, its gradient flows through both branches (unless ``detach_target``), the gradient is
clipped by its global norm, and the optimizer steps.

* Host, NumPy (``NumpyMemoryUpdate``, f without embeddings): R = 128 by 70 by 48 on Logic,
  where autograd and module dispatch cost ten times the arithmetic; RMSprop in NumPy on the
  torch optimizer's own state (others by torch).
* torch, over a leading group axis G (``forward_torch``, ``loss_torch``,
  ``running_statistics_torch``, ``clip_rmsprop_torch``): the device path's K replicas
  (masks for idle rows), and a single run's f with embeddings at G = 1 (autograd for the
  gradient, through ``GroupLinear``'s hand-written backward for the linear layers).

``tests/test_memory_update.py`` feeds both the same inputs and compares every output,
gradient and updated parameter; ``tests/test_agents.py`` compares the two agents' updates.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from mannrl_gym.agents.memory_optimizer import plain_rmsprop
from mannrl_gym.agents.replay import BatchStateReplay
from mannrl_gym.networks import BN_EPS, BN_MOMENTUM
from mannrl_gym.threads import split_bmm


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
        """The optimizer is torch's RMSprop with its defaults, which this class (and the
        device path) can step itself (``memory_optimizer.plain_rmsprop``)."""
        return plain_rmsprop(self.optimizer)

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
        _, loss = self.loss_and_gradient(pairs, reward, usable, gamma, detach_target,
                                         update_weights)
        if update_weights and math.isfinite(loss):
            self.clip_and_step(clipping)
        return loss

    def loss_and_gradient(self, pairs: np.ndarray, reward: np.ndarray, usable: np.ndarray,
                          gamma: float, detach_target: bool, gradient: bool = True
                          ) -> tuple[np.ndarray, float]:
        """f in train mode on ``pairs`` (2, R, D) (all live rows; R >= 2), moving the running
        statistics; the SmoothL1 loss over the ``usable`` rows (R,) of rewards (R,) and, with
        ``gradient`` and a finite loss, its gradient written into ``grad_flat``. Returns
        (memories (2, R, M), loss)."""
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
        if not gradient or not math.isfinite(loss):
            return out, loss
        # d loss / d memory: SmoothL1's slope (the difference, clipped to [-1, 1]) times the
        # row's weight; the target branch's is -gamma times it
        d_out = np.empty((1 if detach_target else 2,) + diff.shape, np.float32)
        np.clip(diff, -1.0, 1.0, out=d_out[0])
        d_out[0] *= weight[:, None]
        if not detach_target:
            np.multiply(d_out[0], -gamma, out=d_out[1])
        self._backward(d_out, cache)
        return out, loss

    def clip_and_step(self, clipping: float) -> None:
        """Clip ``grad_flat`` by its norm to ``clipping``, then the optimizer's step."""
        grad = self.grad_flat
        norm = float(np.sqrt(float(np.dot(grad, grad))))
        grad *= min(1.0, clipping / (norm + 1e-6))
        self._step()


# -- the same round in torch, over a leading group axis G (replicas; a single run is G = 1) ---
Block = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # W, b, gamma, beta


def memory_blocks(net: nn.Module) -> list[nn.Sequential]:
    """f's linear + batch-norm pairs in parameter order: [embed_input, embed_output,] body."""
    embedded = [net.embed_input, net.embed_output] if net.embed_input is not None else []
    return embedded + [net.body]


def forward_torch(blocks: Sequence[Block], pairs: torch.Tensor, live: torch.Tensor | None,
                  split: Sequence[int] | None = None, index: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """f in train mode on both branches of G groups: ``pairs`` (G, 2, R, D), each branch of
    each group normalised by the statistics of its ``live`` rows ((G, R) bool; the others
    enter no statistic; None: all R rows, with no mask to multiply by, the same numbers).
    ``blocks``: each (W (G, O, I), b (G, O), gamma (G, O), beta (G, O)),
    as ``memory_blocks`` orders them; with ``split`` (M, F, V) the input and output parts are
    embedded first (linear, BN, relu). Returns (memories (G, 2, R, M), the batch statistics
    (mean, biased variance), each (G, 2, 1, O), of every batch-norm layer in order).

    With ``index`` (G, 2, R) long, ``pairs`` holds the distinct states instead (G, U, D: a
    replay's stored states) and ``index`` picks each branch's rows from them: the body's
    product by the part of the input that takes no gradient (f's memory; all of it without
    ``split``) runs once per distinct state (``GroupLinear``), however many pairs hold it."""
    group, rows = pairs.shape[0], (pairs if index is None else index).shape[2]
    if live is None:  # a mask of ones changes no number: leave out its passes
        mask = None
        count = torch.full((group, 1, 1, 1), float(max(rows, 2)), dtype=pairs.dtype)
    else:
        mask = live.to(pairs.dtype).view(group, 1, -1, 1)
        count = live.sum(dim=1).clamp(min=2).to(pairs.dtype).view(group, 1, 1, 1)
    statistics = []

    def block(x: torch.Tensor | None, params: Block, fixed: torch.Tensor | None = None,
              picked: torch.Tensor | None = None) -> torch.Tensor:
        w, b, g, beta = params
        pre = GroupLinear.apply(w, b, x, fixed, picked)
        mean = (pre if mask is None else pre * mask).sum(dim=2, keepdim=True) / count
        centred = pre - mean
        square = centred * centred
        var = (square if mask is None else square * mask).sum(dim=2, keepdim=True) / count
        statistics.append((mean, var))
        normed = centred * torch.rsqrt(var + BN_EPS)
        return normed * g.view(group, 1, 1, -1) + beta.view(group, 1, 1, -1)

    if index is not None and 2 * rows < pairs.shape[1]:  # fewer rows as pairs: gather them
        pairs = pick_rows(pairs, index)
        index = None
    if split is None:
        if index is None:
            return torch.sigmoid(block(pairs, blocks[-1])), statistics
        return torch.sigmoid(block(None, blocks[-1], pairs, index)), statistics
    memory_size = split[0]
    memory = pairs[..., :memory_size]
    rest = pairs[..., memory_size:] if index is None else pick_rows(pairs[..., memory_size:],
                                                                    index)
    features, output = rest.split(list(split[1:]), dim=3)
    embedded = torch.cat([torch.relu(block(features, blocks[0])),
                          torch.relu(block(output, blocks[1]))], dim=3)
    return torch.sigmoid(block(embedded, blocks[-1], memory, index)), statistics


def pick_rows(states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(G, 2, R, D) rows of ``states`` (G, U, D) that ``index`` (G, 2, R) names."""
    group, branches, rows = index.shape
    picked = states.reshape(-1, states.shape[2]).index_select(0, flat_rows(index,
                                                                            states.shape[1]))
    return picked.view(group, branches, rows, states.shape[2])


def flat_rows(index: torch.Tensor, distinct: int) -> torch.Tensor:
    """``index`` (G, ...) of rows in each group's ``distinct`` rows, as rows of all G groups'
    rows stacked (G * distinct): (G * ...,). Picking whole rows with ``index_select`` (and
    summing them back with ``index_add_``) copies rows; ``gather`` (``scatter_add_``) with the
    index expanded over the columns reads an index per element, 10 times slower on the CPU
    (0.44 against 0.03 ms for 256 rows of 1,024; the same numbers)."""
    group = index.shape[0]
    offsets = torch.arange(group, device=index.device).view(group, *[1] * (index.dim() - 1))
    return (index + offsets * distinct).reshape(-1)


class GroupLinear(torch.autograd.Function):
    """[fixed | x] W^T + b per group, the rows of both branches as one product: W (G, O, I),
    b (G, O), x (G, 2, R, I') -> (G, 2, R, O). ``fixed`` (G, 2, R, I - I') is a leading part
    of the input that takes no gradient (f's memory; None: there is none; x None: the input
    is all fixed): only x's gradient is computed, (R 2 O I') multiply-adds, not (R 2 O I).
    With ``index`` (G, 2, R) long, ``fixed`` is (G, U, I - I') distinct rows that ``index``
    picks: fixed W_fixed^T is computed for each distinct row once and picked, and its part
    of the weight gradient from the picked rows' gradients summed per distinct row
    ((U O (I - I')) multiply-adds each way, not (2 R O (I - I'))). Autograd's matmul would
    also write one weight gradient per branch and then add them."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor | None,
                fixed: torch.Tensor | None, index: torch.Tensor | None = None) -> torch.Tensor:
        tail = 0 if x is None else x.shape[3]
        ctx.tail, ctx.distinct = tail, index is not None
        if index is None:
            full = x if fixed is None else fixed if x is None else torch.cat([fixed, x], dim=3)
            group, _, rows, width = full.shape
            flat = full.reshape(group, 2 * rows, width)
            ctx.save_for_backward(w, flat)
            return split_bmm(flat, w.transpose(1, 2), b.unsqueeze(1)).view(group, 2, rows, -1)
        group, _, rows = index.shape
        head = w.shape[2] - tail
        flat_index = flat_rows(index, fixed.shape[1])  # (G 2R,) rows of the G U distinct
        distinct = split_bmm(fixed, w[:, :, :head].transpose(1, 2))  # (G, U, O)
        pre = distinct.reshape(-1, w.shape[1]).index_select(0, flat_index).view(
            group, 2 * rows, -1)
        if x is None:
            pre += b.unsqueeze(1)
            x_flat = None
        else:
            x_flat = x.reshape(group, 2 * rows, tail)
            pre += split_bmm(x_flat, w[:, :, head:].transpose(1, 2), b.unsqueeze(1))
        ctx.save_for_backward(w, fixed, flat_index, x_flat)
        return pre.view(group, 2, rows, -1)

    @staticmethod
    def backward(ctx, d_out: torch.Tensor):
        group, _, rows, size = d_out.shape
        d_flat = d_out.reshape(group, 2 * rows, size)
        tail = ctx.tail
        d_b = d_flat.sum(dim=1) if ctx.needs_input_grad[1] else None
        if not ctx.distinct:
            w, flat = ctx.saved_tensors
            d_w = split_bmm(d_flat.transpose(1, 2), flat) if ctx.needs_input_grad[0] else None
        else:
            w, fixed, flat_index, x_flat = ctx.saved_tensors
            d_w = None
            if ctx.needs_input_grad[0]:
                d_distinct = torch.zeros((group, fixed.shape[1], size), dtype=d_flat.dtype,
                                         device=d_flat.device)
                d_distinct.view(-1, size).index_add_(0, flat_index, d_flat.reshape(-1, size))
                d_w = torch.empty_like(w)
                head = w.shape[2] - tail
                split_bmm(d_distinct.transpose(1, 2), fixed, out=d_w[:, :, :head])
                if x_flat is not None:
                    split_bmm(d_flat.transpose(1, 2), x_flat, out=d_w[:, :, head:])
        d_x = None
        if ctx.needs_input_grad[2]:
            d_x = split_bmm(d_flat, w[:, :, w.shape[2] - tail:]).view(group, 2, rows, tail)
        return d_w, d_b, d_x, None, None


def loss_torch(out: torch.Tensor, reward: torch.Tensor, usable: torch.Tensor,
               gamma: torch.Tensor, detach_target: bool) -> torch.Tensor:
    """SmoothL1(f(s_k), gamma * f(s_{k+1}) + r_{k+1}) per group (G,): the mean over memory
    units and the ``usable`` rows ((G, R) bool). out (G, 2, R, M), reward (G, R), gamma
    (G, 1, 1)."""
    memory, next_memory = out[:, 0], out[:, 1]
    if detach_target:
        next_memory = next_memory.detach()
    # torch's fused SmoothL1 (beta 1): 0.5 d^2 where |d| < 1, else |d| - 0.5, d = the difference
    per_row = nn.functional.smooth_l1_loss(memory, next_memory * gamma + reward.unsqueeze(2),
                                           reduction="none").sum(dim=2)
    rows = usable.sum(dim=1).clamp(min=1)
    weight = usable.to(per_row.dtype) / (rows * memory.shape[2]).unsqueeze(1)
    return (per_row * weight).sum(dim=1)


def running_statistics_torch(running: tuple[torch.Tensor, torch.Tensor],
                             batch: tuple[torch.Tensor, torch.Tensor], live_rows: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch norm's running (mean, var) (G, O) after s_k's batch and then s_{k+1}'s (``batch``:
    (mean, biased var) (G, 2, 1, O) of ``live_rows`` (G,) rows each), as two train-mode
    forwards of ``nn.BatchNorm1d`` move them."""
    running_mean, running_var = running
    mean, var = (part.detach() for part in batch)
    unbiased = (live_rows.to(mean.dtype) / (live_rows.clamp(min=2) - 1)).unsqueeze(1)
    for branch in range(2):
        running_mean = torch.lerp(running_mean, mean[:, branch, 0], BN_MOMENTUM)
        running_var = running_var * (1 - BN_MOMENTUM) + var[:, branch, 0] * (BN_MOMENTUM
                                                                              * unbiased)
    return running_mean, running_var


def clip_rmsprop_torch(flat: torch.Tensor, grad: torch.Tensor, square: torch.Tensor,
                       lr: torch.Tensor, clipping: torch.Tensor, alpha: float, eps: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's gradient (G, P) clipped by its norm to ``clipping`` (G,), then plain RMSprop
    (torch's defaults) with learning rate ``lr`` (G,); (new parameters, new square averages)."""
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad = grad * torch.clamp(clipping.unsqueeze(1) / (norm + 1e-6), max=1.0)
    square = square * alpha + (1 - alpha) * grad * grad
    return flat - grad / (square.sqrt() + eps) * lr.unsqueeze(1), square
