"""K action networks of one shape trained by one batched step (a leading replica axis K).

``StackedLearners`` rebinds K ordinary ``ActionLearner`` objects so that each one's
parameters, gradient, Adam moments and batch-norm buffers are row k of stacked (K, ...)
arrays (``LearnerStorage.row``). The single-run code keeps working on each learner (its
evaluation, checkpoints, a step of one replica alone), while ``train_step`` here runs the
single step's own functions (``supervised.forward_backward``, ``clip_scale``,
``adam_rows``) on the stacks: matrix products over the leading axis ((K, B, I) @ (K, I,
O)), reductions over the rows axis, clipping per row of the (K, P) buffers, and torch's
fused Adam over their K rows. ``tests/test_replicas.py`` checks it equals the K single
steps bit for bit.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from mannrl_gym.numerics import raise_non_finite
from mannrl_gym.supervised import (ActionLearner, BatchNormBlock, LearnerStorage, adam_rows,
                                   clip_scale, forward_backward)


def stacked_view(stack: np.ndarray, row0: np.ndarray, view: np.ndarray) -> np.ndarray:
    """The (K, *view.shape) view of ``stack`` (K, N) whose row 0 part is ``view``, a view of
    ``row0`` = ``stack[0]``."""
    offset = (view.__array_interface__["data"][0] - row0.__array_interface__["data"][0]) \
        // view.itemsize
    return stack[:, offset:offset + view.size].reshape((stack.shape[0],) + view.shape)


def stacked_block(block: BatchNormBlock, rows: tuple[np.ndarray, ...],
                  stacks: tuple[np.ndarray, ...]) -> BatchNormBlock:
    """A BatchNormBlock over the (K, ...) stacked views of replica 0's ``block``: x (K, B, I).

    rows: replica 0's (parameters, gradient, statistics, counts); stacks: the (K, ...) arrays.
    """
    (flat0, grad0, stat0, count0), (params, grads, statistics, counts) = rows, stacks

    def param(view):
        return stacked_view(params, flat0, view)

    def grad(view):
        return stacked_view(grads, grad0, view)

    stacked = BatchNormBlock.__new__(BatchNormBlock)
    stacked.bind(param(block.w), grad(block.g_w), param(block.b), grad(block.g_b),
                 param(block.gamma), grad(block.g_gamma), param(block.beta), grad(block.g_beta),
                 stacked_view(statistics, stat0, block.running_mean),
                 stacked_view(statistics, stat0, block.running_var),
                 stacked_view(counts, count0, block.batches_tracked))
    return stacked


class StackedLearners:
    """K ``ActionLearner``s of one shape, rebound onto stacked storage, and their batched step.

    Shapes: features (K, B, F), memory (K, B, M), targets (K, B) int64. Each learner keeps
    its own ``lr`` and ``clipping`` (sweep points), used as (K, 1) vectors.
    """

    def __init__(self, learners: Sequence[ActionLearner]) -> None:
        self.learners = list(learners)
        first = self.learners[0]
        shapes = {LearnerStorage.sizes(learner.net) for learner in self.learners}
        if len(shapes) != 1 or len({len(lr.blocks) for lr in self.learners}) != 1:
            raise ValueError("replicated learners must share one shape")
        if len({(lr.double_softmax, lr.embed is None) for lr in self.learners}) != 1:
            raise ValueError("replicated learners must share double_softmax and embed_size")
        self.storage = LearnerStorage.allocate(first.net, replicas=len(self.learners))
        for k, learner in enumerate(self.learners):
            learner.bind(self.storage.row(k))
        self.double_softmax = first.double_softmax
        self.has_embed = first.embed is not None
        params, grads = self.storage.flat.numpy(), self.storage.grad
        statistics, counts = self.storage.statistics.numpy(), self.storage.counts.numpy()
        rows = (params[0], grads[0], statistics[0], counts[0])
        self.blocks = [stacked_block(block, rows, (params, grads, statistics, counts))
                       for block in first.blocks]
        self.embed = self.blocks[0] if self.has_embed else None
        self.hidden = self.blocks[1:] if self.has_embed else self.blocks
        self.w_out = stacked_view(params, rows[0], first.w_out)
        self.b_out = stacked_view(params, rows[0], first.b_out)
        self.g_w_out = stacked_view(grads, rows[1], first.g_w_out)
        self.g_b_out = stacked_view(grads, rows[1], first.g_b_out)
        self.params, self.grads = params, grads
        self.exp_avg, self.exp_avg_sq = self.storage.exp_avg.numpy(), self.storage.exp_avg_sq.numpy()
        # Adam's operands per replica: rows of the stacks (and K step counts) for the fused kernel
        steps = torch.zeros(self.replicas)
        self._steps = steps.numpy()
        self._rows = tuple(list(stack.unbind(0)) for stack in (
            self.storage.flat, torch.from_numpy(grads), self.storage.exp_avg,
            self.storage.exp_avg_sq, steps))
        self._indices: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._clipping = [learner.clipping for learner in self.learners]

    @property
    def replicas(self) -> int:
        return len(self.learners)

    def train_step(self, features: np.ndarray, memory: np.ndarray,
                   targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of every replica; return (probabilities (K, B, V), loss (K, B)).

        The same arithmetic as ``ActionLearner.train_step`` on each replica (B >= 2 rows).
        """
        rows = features.shape[1]
        if rows not in self._indices:
            self._indices[rows] = (np.arange(self.replicas)[:, None], np.arange(rows)[None, :])
        probs, loss = forward_backward(self, features, memory, targets, self._indices[rows])
        self._clip(rows)
        self._adam()
        for block in self.blocks:
            block.update_statistics()
        return probs, loss

    def _clip(self, rows: int) -> None:
        """clip_grad_norm_ per replica, folding in the 1/B of the mean (as the single step)."""
        norms, scales = zip(*(clip_scale(grad, limit, rows)
                              for grad, limit in zip(self.grads, self._clipping)))
        if not all(map(math.isfinite, norms)):
            k = next(k for k, norm in enumerate(norms) if not math.isfinite(norm))
            raise_non_finite("action network", f"of replica {k} at training step "
                             f"{self.learners[k].steps + 1}", "the gradient norm",
                             self.learners[k].net)
        self.grads *= np.array(scales, np.float32)[:, None]

    def _adam(self) -> None:
        """torch.optim.Adam per replica, as the single step's: the fused kernel over the K rows
        of the stacks, each row with its own step count; one call per learning rate."""
        for k, learner in enumerate(self.learners):
            learner.steps += 1
            self._steps[k] = learner.steps
        adam_rows(self._rows, [learner.lr for learner in self.learners])
