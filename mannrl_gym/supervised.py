"""The action network's supervised learner, embedded in every environment.

It owns the action network A (a torch ``ActionNet``) and trains it one batch per env step:
forward, per-row cross-entropy, gradient-norm clipping, one Adam step, batch-norm running
statistics; the same arithmetic as ``loss.mean().backward()``, ``clip_grad_norm_`` and
``torch.optim.Adam``. Per-step work on 16 rows is tiny, so framework overhead would dominate;
the step is written out by hand in NumPy, on arrays that share memory with the module's
parameters and buffers (``tests/test_supervised.py`` checks it against autograd).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mannrl_gym.networks import ActionNet, initialize
from mannrl_gym.numerics import raise_non_finite

BETA1, BETA2, ADAM_EPS, BN_EPS, BN_MOMENTUM = 0.9, 0.999, 1e-8, 1e-5, 0.1


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class ActionLearner:
    """A(x, m) and its training. Shapes: features (B, F), memory (B, M), targets (B,) int64.

    Args:
        double_softmax: the reference's quirk: A ends in a softmax and cross-entropy is then
            applied to those probabilities (a second softmax). False: cross-entropy on logits.
        min_batch: batch norm needs at least 2 rows. With ``gather_small`` (the single-slot
            env) a smaller batch is answered in eval mode and kept until ``min_batch`` rows are
            gathered, then trained on; without it (the vector env, whose last steps of a pass
            may hold one live slot) such a batch is only evaluated.
    """

    def __init__(self, input_dim: int, memory_size: int, hidden_size: int, num_outputs: int,
                 lr: float, clipping: float, double_softmax: bool, seed: int,
                 min_batch: int = 16, gather_small: bool = False) -> None:
        self.net = ActionNet(input_dim, memory_size, hidden_size, num_outputs,
                             softmax_output=double_softmax)
        self.lr, self.clipping, self.double_softmax = lr, clipping, double_softmax
        self.min_batch, self.gather_small = max(2, min_batch), gather_small
        self.eval_batch_statistics = False  # evaluate with each batch's own statistics
        params = list(self.net.parameters())
        self.flat = torch.zeros(sum(p.numel() for p in params))
        views, offset = [], 0
        for p in params:  # every parameter becomes a view of one flat buffer
            view = self.flat[offset:offset + p.numel()].view_as(p)
            p.data = view
            views.append(p.data.numpy())
            offset += p.numel()
        self.w1, self.b1, self.gamma, self.beta, self.w2, self.b2 = views
        bn = self.net.body[1]
        self.running_mean, self.running_var = bn.running_mean.numpy(), bn.running_var.numpy()
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.flat), torch.zeros_like(self.flat)
        # NumPy views of the same memory, updated in place
        self._flat, self._exp_avg, self._exp_avg_sq = (
            self.flat.numpy(), self.exp_avg.numpy(), self.exp_avg_sq.numpy())
        self._batches_tracked = bn.num_batches_tracked.view(1).numpy()
        self.grad = np.zeros(self.flat.numel(), dtype=np.float32)
        grads, offset = [], 0
        for p in params:
            grads.append(self.grad[offset:offset + p.numel()].reshape(tuple(p.shape)))
            offset += p.numel()
        self.g_w1, self.g_b1, self.g_gamma, self.g_beta, self.g_w2, self.g_b2 = grads
        self.reinitialize(seed)

    def reinitialize(self, seed: int) -> None:
        """Fresh weights and optimizer state drawn from ``seed``."""
        initialize(self.net, torch.Generator().manual_seed(seed))
        self.exp_avg.zero_()
        self.exp_avg_sq.zero_()
        self.steps = 0
        self._moments: list | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # -- forward ------------------------------------------------------------------------------
    def _scores(self, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores fed to cross-entropy, output probabilities) from the hidden layer (B, H)."""
        logits = hidden @ self.w2.T
        logits += self.b2
        probs = np.exp(log_softmax(logits))
        return (probs, probs) if self.double_softmax else (logits, probs)

    def evaluate(self, features: np.ndarray, memory: np.ndarray,
                 targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict without learning (batch norm in eval mode); (probabilities (B, V), loss (B,))."""
        inputs = np.concatenate([features, memory], axis=1)
        hidden = inputs @ self.w1.T
        hidden += self.b1
        if self._moments is not None:
            self._moments[0] += hidden.shape[0]
            self._moments[1] += hidden.sum(axis=0, dtype=np.float64)
            self._moments[2] += (hidden.astype(np.float64) ** 2).sum(axis=0)
        if self.eval_batch_statistics and hidden.shape[0] > 1:
            mean, var = hidden.mean(axis=0), hidden.var(axis=0)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.gamma / np.sqrt(var + BN_EPS)
        hidden = (hidden - mean) * scale + self.beta
        np.maximum(hidden, 0, out=hidden)
        scores, probs = self._scores(hidden)
        loss = -np.take_along_axis(log_softmax(scores), targets[:, None], axis=1)[:, 0]
        return probs, loss

    # -- one training step ----------------------------------------------------------------------
    def train_step(self, features: np.ndarray, memory: np.ndarray,
                   targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict and learn from one batch; return (probabilities (B, V), loss per row (B,))."""
        rows = features.shape[0]
        if rows < 2:
            if not self.gather_small:
                return self.evaluate(features, memory, targets)
            return self._train_small(features, memory, targets)
        inputs = np.concatenate([features, memory], axis=1)  # (B, F + M)
        pre = inputs @ self.w1.T
        pre += self.b1
        inv_rows = 1.0 / rows
        mean = pre.sum(axis=0) * inv_rows
        centred = pre - mean
        var = (centred * centred).sum(axis=0) * inv_rows  # biased, as batch norm normalises
        inv_std = 1.0 / np.sqrt(var + BN_EPS)
        normed = centred * inv_std
        act = normed * self.gamma
        act += self.beta
        hidden = np.maximum(act, 0)
        scores, probs = self._scores(hidden)
        log_q = log_softmax(scores)
        index = np.arange(rows)
        loss = -log_q[index, targets]

        # backward of loss.mean(), kept unscaled by 1/B until the clipping step
        d_scores = np.exp(log_q)
        d_scores[index, targets] -= 1.0
        if self.double_softmax:  # through the first softmax
            d_scores = probs * (d_scores - (d_scores * probs).sum(axis=1, keepdims=True))
        np.matmul(d_scores.T, hidden, out=self.g_w2)
        d_scores.sum(axis=0, out=self.g_b2)
        d_act = d_scores @ self.w2
        d_act *= act > 0
        (d_act * normed).sum(axis=0, out=self.g_gamma)
        d_act.sum(axis=0, out=self.g_beta)
        d_normed = d_act * self.gamma
        d_pre = d_normed - d_normed.sum(axis=0) * inv_rows
        d_pre -= normed * ((d_normed * normed).sum(axis=0) * inv_rows)
        d_pre *= inv_std
        np.matmul(d_pre.T, inputs, out=self.g_w1)
        d_pre.sum(axis=0, out=self.g_b1)

        # clip_grad_norm_(max_norm=clipping), folding in the 1/B of the mean
        norm = math.sqrt(float(np.dot(self.grad, self.grad))) / rows
        if not math.isfinite(norm):  # NaN in inputs, weights or loss all end up here
            raise_non_finite("action network", f"at training step {self.steps + 1}",
                             "the gradient norm", self.net)
        self.grad *= min(1.0, self.clipping / (norm + 1e-6)) / rows
        self._adam()

        self.running_mean *= 1 - BN_MOMENTUM
        self.running_mean += BN_MOMENTUM * mean
        self.running_var *= 1 - BN_MOMENTUM
        self.running_var += (BN_MOMENTUM * rows / (rows - 1)) * var
        self._batches_tracked += 1
        return probs, loss

    def _adam(self) -> None:
        """torch.optim.Adam's update (no weight decay, no amsgrad) on the flat parameters."""
        self.steps += 1
        exp_avg, exp_avg_sq, grad = self._exp_avg, self._exp_avg_sq, self.grad
        exp_avg += (1 - BETA1) * (grad - exp_avg)
        exp_avg_sq *= BETA2
        exp_avg_sq += (1 - BETA2) * grad * grad
        bias1, bias2 = 1 - BETA1 ** self.steps, 1 - BETA2 ** self.steps
        denom = np.sqrt(exp_avg_sq)
        denom /= math.sqrt(bias2)
        denom += ADAM_EPS
        self._flat -= (self.lr / bias1) * exp_avg / denom

    # -- batch-norm statistics for evaluation ----------------------------------------------------
    def start_moments(self) -> None:
        """From now on, ``evaluate`` sums the hidden pre-activations it sees."""
        self._moments = [0, np.zeros(self.b1.shape, np.float64), np.zeros(self.b1.shape, np.float64)]

    def use_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Set the running statistics to the exact mean and variance summed since
        ``start_moments`` ("precise BN"); return the previous ones to restore later."""
        count, total, squares = self._moments
        self._moments = None
        saved = (self.running_mean.copy(), self.running_var.copy())
        mean = total / count
        self.running_mean[:] = mean
        self.running_var[:] = np.maximum(squares / count - mean ** 2, 0.0) * count / max(count - 1, 1)
        return saved

    def restore_statistics(self, saved: tuple[np.ndarray, np.ndarray]) -> None:
        self.running_mean[:], self.running_var[:] = saved

    def _train_small(self, features, memory, targets):
        probs, loss = self.evaluate(features, memory, targets)
        self._pending.append((features, memory, targets))
        if sum(f.shape[0] for f, _, _ in self._pending) >= self.min_batch:
            batch = [np.concatenate(parts) for parts in zip(*self._pending)]
            self._pending = []
            self.train_step(*batch)
        return probs, loss

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "exp_avg": self.exp_avg.clone(),
                "exp_avg_sq": self.exp_avg_sq.clone(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])  # copies into the shared views
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.steps = int(state["steps"])
        self._pending = []
