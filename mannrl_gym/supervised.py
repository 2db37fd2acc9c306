"""The action network's supervised learner, embedded in every environment.

It owns the action network A (a torch ``ActionNet``: an optional input embedding, L
linear-BN-relu blocks, an output layer) and trains it one batch per env step:
forward, per-row cross-entropy, gradient-norm clipping, one Adam step, batch-norm running
statistics; the same arithmetic as ``loss.mean().backward()``, ``clip_grad_norm_`` and
``torch.optim.Adam``. Per-step work on 16 rows is tiny, so framework overhead would dominate;
the step is written out by hand in NumPy, on arrays that share memory with the module's
parameters and buffers (``tests/test_supervised.py`` checks it against autograd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mannrl_gym.networks import BN_EPS, BN_MOMENTUM, ActionNet, initialize
from mannrl_gym.numerics import raise_non_finite
from mannrl_gym.threads import one_thread

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Over the last axis (rows (B, V), or a stack of them (K, B, V))."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def fused_adam(params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor],
               exp_avg_sqs: list[torch.Tensor], steps: list[torch.Tensor], lr: float) -> None:
    """torch.optim.Adam's step (fused=True: one pass, no weight decay, no amsgrad) on each
    parameter tensor of ``params`` with its gradient, moments and its own step count (0-d
    float tensors, already counting this step). Each tensor's arithmetic does not depend on
    the others in the list: K replicas' rows stepped in one call equal K single calls."""
    torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=BETA1,
                       beta2=BETA2, weight_decay=0.0, eps=ADAM_EPS, amsgrad=False,
                       maximize=False)


def softmax_cross_entropy(logits: np.ndarray, double_softmax: bool):
    """A's output softmax and cross-entropy's pieces over the last axis (rows (B, V) or a
    stack (K, B, V)): (probs, q, scores, log_total) where cross-entropy's input is
    ``scores`` (the probabilities with ``double_softmax``, else the shifted logits), q is
    its softmax (a new array: d loss / d scores is q less 1 at the target) and the loss at
    target t is log_total[..., 0] - scores[..., t]."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    probs = exp
    probs /= total
    if not double_softmax:
        return probs, probs.copy(), shifted, np.log(total)
    # the probabilities lie in [0, 1]: their softmax needs no shift
    q = np.exp(probs)
    total = q.sum(axis=-1, keepdims=True)
    q /= total
    return probs, q, probs, np.log(total)


def cross_entropy_backward(logits: np.ndarray, at: tuple[np.ndarray, ...],
                           double_softmax: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A's cross-entropy and its gradient in the logits, over the last axis (rows (B, V) or a
    stack (K, B, V)); ``at`` indexes each row's target. Returns (probabilities, loss per row,
    d loss / d logits), through A's own softmax first with ``double_softmax``."""
    probs, d_scores, scores, log_total = softmax_cross_entropy(logits, double_softmax)
    loss = log_total[..., 0] - scores[at]
    d_scores[at] -= 1.0
    if double_softmax:  # through the first softmax
        d_scores = probs * (d_scores - (d_scores * probs).sum(axis=-1, keepdims=True))
    return probs, loss, d_scores


def forward_backward(model, features: np.ndarray, memory: np.ndarray, targets: np.ndarray,
                     index: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A's forward in training mode and the backward of its summed loss (the 1/B of the mean
    is folded in by ``clip_scale``), written into ``model``'s gradient views.

    One learner (``ActionLearner``: features (B, F), memory (B, M), targets (B,)) or a stack
    of K (``stacked_learners.StackedLearners``: (K, B, ...)), the rows on axis -2. ``model``
    has ``embed`` (a BatchNormBlock or None), ``hidden`` (BatchNormBlocks), ``w_out``,
    ``b_out``, ``g_w_out``, ``g_b_out`` and ``double_softmax``; ``index``: the leading
    indices that, with the targets, pick each row's target ((arange(B),) or (arange(K)[:,
    None], arange(B)[None])). Returns (probabilities (..., B, V), loss per row (..., B)).
    """
    embed = model.embed
    if embed is not None:
        features = embed.forward_train(features)
    hidden = np.concatenate([features, memory], axis=-1)  # (..., B, F' + M)
    for block in model.hidden:
        hidden = block.forward_train(hidden)
    logits = np.matmul(hidden, model.w_out.swapaxes(-1, -2))
    logits += model.b_out[..., None, :]
    # and the backward of the summed loss
    probs, loss, d_scores = cross_entropy_backward(logits, index + (targets,),
                                                   model.double_softmax)
    np.matmul(d_scores.swapaxes(-1, -2), hidden, out=model.g_w_out)
    d_scores.sum(axis=-2, out=model.g_b_out)
    d_hidden = np.matmul(d_scores, model.w_out)
    for depth in range(len(model.hidden) - 1, -1, -1):
        # the first block's input is [embedded features | memory]: the embedding's part alone
        wanted = None if depth > 0 else (embed.b.shape[-1] if embed is not None else 0)
        d_hidden = model.hidden[depth].backward(d_hidden, wanted)
    if embed is not None:
        embed.backward(d_hidden, 0)
    return probs, loss


TORCH_PRODUCT_MACS = 1 << 19  # one product's multiply-adds from which torch's BLAS pays


def matmul_transposed(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w^T over the last two axes: (..., B, I), (..., O, I) -> (..., B, O). A large
    product goes through torch's BLAS, which runs this transposed product at the plain one's
    rate (NumPy's OpenBLAS takes about 1.7 times as long at B = 16, I = 1,120, O = 256:
    benchmarks/sentence_speed.py); a small one (Logic: 16 x 59 x 128) stays in NumPy, where
    torch's per-call cost would double the block's forward (benchmarks/logic_speed.py)."""
    if x.shape[-2] * x.shape[-1] * w.shape[-2] < TORCH_PRODUCT_MACS:
        return np.matmul(x, w.swapaxes(-1, -2))
    return torch.matmul(torch.from_numpy(x), torch.from_numpy(w).transpose(-1, -2)).numpy()


def clip_scale(grad: np.ndarray, clipping: float, rows: int) -> tuple[float, float]:
    """``clip_grad_norm_(max_norm=clipping)`` of one learner's gradient (P,) of the summed
    loss over ``rows`` = B, folding in the 1/B of the mean: (the mean loss's gradient norm,
    in double (NaN or inf: a non-finite step), the factor to multiply ``grad`` by)."""
    norm = math.sqrt(float(np.dot(grad, grad))) / rows
    return norm, min(1.0, clipping / (norm + 1e-6)) / rows


def adam_rows(rows: tuple[list[torch.Tensor], ...], lrs: list[float]) -> None:
    """torch.optim.Adam on each learner's row (``rows``: lists of parameters, gradients,
    moments and step counts, one entry per learner, as ``fused_adam`` takes them), each with
    its own learning rate: one fused call per distinct rate."""
    if len(set(lrs)) == 1:
        fused_adam(*rows, lrs[0])
        return
    for lr in dict.fromkeys(lrs):
        chosen = [k for k, other in enumerate(lrs) if other == lr]
        fused_adam(*([part[k] for k in chosen] for part in rows), lr)


class BatchNormBlock:
    """linear -> batch norm -> relu on NumPy views of a module's memory, with its own backward.

    Shapes: x (B, I) -> hidden (B, O); or, on stacked views of K replicas' blocks (weights
    (K, O, I), ``mannrl_gym.stacked_learners``), x (K, B, I) -> (K, B, O), each replica's
    rows normalised by their own statistics. ``forward_train`` keeps what ``backward`` needs.
    """

    def __init__(self, linear: torch.nn.Linear, norm: torch.nn.BatchNorm1d, views: dict) -> None:
        (w, g_w), (b, g_b) = views[id(linear.weight)], views[id(linear.bias)]
        (gamma, g_gamma), (beta, g_beta) = views[id(norm.weight)], views[id(norm.bias)]
        self.bind(w, g_w, b, g_b, gamma, g_gamma, beta, g_beta, norm.running_mean.numpy(),
                  norm.running_var.numpy(), norm.num_batches_tracked.view(1).numpy())

    def bind(self, w, g_w, b, g_b, gamma, g_gamma, beta, g_beta, running_mean, running_var,
             batches_tracked) -> None:
        """Point the block at these arrays (parameters, their gradients, running statistics)."""
        self.w, self.g_w, self.b, self.g_b = w, g_w, b, g_b
        self.gamma, self.g_gamma, self.beta, self.g_beta = gamma, g_gamma, beta, g_beta
        self.running_mean, self.running_var = running_mean, running_var
        self.batches_tracked = batches_tracked
        self.moments: list | None = None
        self._cache: tuple | None = None

    def forward_eval(self, x: np.ndarray, batch_statistics: bool) -> np.ndarray:
        pre = x @ self.w.T
        pre += self.b
        if self.moments is not None:
            self.moments[0] += pre.shape[0]
            self.moments[1] += pre.sum(axis=0, dtype=np.float64)
            self.moments[2] += (pre.astype(np.float64) ** 2).sum(axis=0)
        if batch_statistics and pre.shape[0] > 1:
            mean, var = pre.mean(axis=0), pre.var(axis=0)
        else:
            mean, var = self.running_mean, self.running_var
        hidden = (pre - mean) * (self.gamma / np.sqrt(var + BN_EPS)) + self.beta
        return np.maximum(hidden, 0, out=hidden)

    def backward_eval(self, d_hidden: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        """d loss / d x (B, I) through this block in eval mode (running statistics), from
        d loss / d hidden and the block's output ``hidden`` (both (B, O)); no gradient of
        the block's own parameters is written."""
        scale = self.gamma / np.sqrt(self.running_var + BN_EPS)  # d hidden / d pre, relu open
        return ((d_hidden * (hidden > 0)) * scale) @ self.w

    def forward_train(self, x: np.ndarray) -> np.ndarray:
        rows = x.shape[-2]
        pre = matmul_transposed(x, self.w)
        pre += self.b[..., None, :]
        mean = pre.sum(axis=-2, keepdims=True) * (1.0 / rows)
        centred = pre - mean
        # biased, as batch norm normalises
        var = (centred * centred).sum(axis=-2, keepdims=True) * (1.0 / rows)
        inv_std = 1.0 / np.sqrt(var + BN_EPS)
        normed = centred * inv_std
        act = normed * self.gamma[..., None, :]
        act += self.beta[..., None, :]
        self._cache = (x, normed, inv_std, act, mean, var)
        return np.maximum(act, 0)

    def backward(self, d_hidden: np.ndarray, input_columns: int | None) -> np.ndarray | None:
        """Write this block's gradients; return d loss / d x (all of x's columns when
        ``input_columns`` is None, else its first ``input_columns``; 0: None)."""
        x, normed, inv_std, act, _, _ = self._cache
        inv_rows = 1.0 / x.shape[-2]
        d_act = d_hidden * (act > 0)
        (d_act * normed).sum(axis=-2, out=self.g_gamma)
        d_act.sum(axis=-2, out=self.g_beta)
        d_normed = d_act * self.gamma[..., None, :]
        d_pre = d_normed - d_normed.sum(axis=-2, keepdims=True) * inv_rows
        d_pre -= normed * ((d_normed * normed).sum(axis=-2, keepdims=True) * inv_rows)
        d_pre *= inv_std
        np.matmul(d_pre.swapaxes(-1, -2), x, out=self.g_w)
        d_pre.sum(axis=-2, out=self.g_b)
        if input_columns == 0:
            return None
        return np.matmul(d_pre, self.w if input_columns is None else self.w[..., :input_columns])

    def update_statistics(self) -> None:
        """Batch norm's running averages, from the last ``forward_train``."""
        x, _, _, _, mean, var = self._cache
        rows = x.shape[-2]
        self.running_mean *= 1 - BN_MOMENTUM
        self.running_mean += BN_MOMENTUM * mean[..., 0, :]
        self.running_var *= 1 - BN_MOMENTUM
        self.running_var += (BN_MOMENTUM * rows / (rows - 1)) * var[..., 0, :]
        self.batches_tracked += 1
        self._cache = None


@dataclass
class LearnerStorage:
    """The memory of one ActionLearner: flat parameters (P,), gradient (P,) (NumPy), Adam's
    two moments (P,), batch-norm running statistics (S,) float32 and counts (C,) int64.

    Every field may be a row of a stacked (K, ...) array; ``allocate`` gives a fresh one.
    """

    flat: torch.Tensor
    grad: np.ndarray
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    statistics: torch.Tensor
    counts: torch.Tensor

    @staticmethod
    def sizes(net: torch.nn.Module) -> tuple[int, int, int]:
        """(P, S, C) of ``net``: parameters, float buffers, integer buffers."""
        buffers = list(net.buffers())
        return (sum(p.numel() for p in net.parameters()),
                sum(b.numel() for b in buffers if b.dtype != torch.int64),
                sum(b.numel() for b in buffers if b.dtype == torch.int64))

    @classmethod
    def allocate(cls, net: torch.nn.Module, replicas: int | None = None) -> "LearnerStorage":
        """Zeros for ``net`` (shapes (P,) ...), or stacked for K ``replicas`` ((K, P) ...)."""
        lead = () if replicas is None else (replicas,)
        params, floats, ints = cls.sizes(net)
        return cls(torch.zeros(lead + (params,)), np.zeros(lead + (params,), dtype=np.float32),
                   torch.zeros(lead + (params,)), torch.zeros(lead + (params,)),
                   torch.zeros(lead + (floats,)), torch.zeros(lead + (ints,), dtype=torch.int64))

    def row(self, k: int) -> "LearnerStorage":
        """Replica k's storage: views of row k of every stacked array."""
        return LearnerStorage(self.flat[k], self.grad[k], self.exp_avg[k], self.exp_avg_sq[k],
                              self.statistics[k], self.counts[k])


class ActionLearner:
    """A(x, m) and its training. Shapes: features (B, F), memory (B, M), targets (B,) int64.

    Args:
        double_softmax: the reference's quirk: A ends in a softmax and cross-entropy is then
            applied to those probabilities (a second softmax). False: cross-entropy on logits.
        hidden_layers, embed_size: A's shape (see ``ActionNet``).
        min_batch: batch norm needs at least 2 rows. With ``gather_small`` (the single-slot
            env) a smaller batch is answered in eval mode and kept until ``min_batch`` rows are
            gathered, then trained on; without it (the vector env, whose last steps of a pass
            may hold one live slot) such a batch is only evaluated.
    """

    def __init__(self, input_dim: int, memory_size: int, hidden_size: int, num_outputs: int,
                 lr: float, clipping: float, double_softmax: bool, seed: int,
                 min_batch: int = 16, gather_small: bool = False, hidden_layers: int = 1,
                 embed_size: int | None = None) -> None:
        self.net = ActionNet(input_dim, memory_size, hidden_size, num_outputs,
                             softmax_output=double_softmax, hidden_layers=hidden_layers,
                             embed_size=embed_size)
        self.lr, self.clipping, self.double_softmax = lr, clipping, double_softmax
        self.min_batch, self.gather_small = max(2, min_batch), gather_small
        self.eval_batch_statistics = False  # evaluate with each batch's own statistics
        self.bind(LearnerStorage.allocate(self.net))
        self.reinitialize(seed)

    def bind(self, storage: "LearnerStorage") -> None:
        """Make every parameter, gradient, Adam state and batch-norm buffer a view of
        ``storage`` (its current values are copied in first). A learner alone owns its storage;
        K learners of one shape can share the rows of stacked (K, ...) arrays
        (``mannrl_gym.replicas``), which a batched step then updates all at once."""
        params, buffers = list(self.net.parameters()), list(self.net.buffers())
        if getattr(self, "flat", None) is not None:  # carry the current values over
            storage.flat.copy_(self.flat)
            storage.exp_avg.copy_(self.exp_avg)
            storage.exp_avg_sq.copy_(self.exp_avg_sq)
        self.flat, self.grad = storage.flat, storage.grad
        self.exp_avg, self.exp_avg_sq = storage.exp_avg, storage.exp_avg_sq
        views, offset = {}, 0
        for p in params:  # every parameter becomes a view of one flat buffer, so does its gradient
            p.data = self.flat[offset:offset + p.numel()].view_as(p)
            views[id(p)] = (p.data.numpy(),
                            self.grad[offset:offset + p.numel()].reshape(tuple(p.shape)))
            offset += p.numel()
        statistics, counts = storage.statistics, storage.counts
        floats = [b for b in buffers if b.dtype != torch.int64]
        ints = [b for b in buffers if b.dtype == torch.int64]
        offset = 0  # batch-norm running statistics and counts, in rows of their own
        for b in floats:
            row = statistics[offset:offset + b.numel()].view_as(b)
            row.copy_(b)
            b.data = row
            offset += b.numel()
        for i, b in enumerate(ints):
            row = counts[i:i + 1].view_as(b)
            row.copy_(b)
            b.data = row
        self.embed = (BatchNormBlock(self.net.embed[0], self.net.embed[1], views)
                      if self.net.embed is not None else None)
        self.hidden = [BatchNormBlock(linear, norm, views) for linear, norm in self.net.hidden_blocks]
        output = self.net.output_layer
        (self.w_out, self.g_w_out), (self.b_out, self.g_b_out) = (views[id(output.weight)],
                                                                  views[id(output.bias)])
        self.blocks = ([self.embed] if self.embed else []) + self.hidden
        # NumPy views of the same memory, updated in place
        self._flat, self._exp_avg, self._exp_avg_sq = (
            self.flat.numpy(), self.exp_avg.numpy(), self.exp_avg_sq.numpy())
        self._adam_step = torch.zeros((), dtype=torch.float32)  # the fused kernel's step count
        self._adam_rows = ([self.flat], [torch.from_numpy(self.grad)], [self.exp_avg],
                           [self.exp_avg_sq], [self._adam_step])  # as ``adam_rows`` takes them
        self._rows_index = np.arange(0)

    def reinitialize(self, seed: int) -> None:
        """Fresh weights and optimizer state drawn from ``seed``."""
        initialize(self.net, torch.Generator().manual_seed(seed))
        self.exp_avg.zero_()
        self.exp_avg_sq.zero_()
        self.steps = 0
        for block in self.blocks:
            block.moments = None
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # -- forward ------------------------------------------------------------------------------
    def _scores(self, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores fed to cross-entropy, output probabilities) from the last hidden layer (B, H)."""
        logits = hidden @ self.w_out.T
        logits += self.b_out
        probs = np.exp(log_softmax(logits))
        return (probs, probs) if self.double_softmax else (logits, probs)

    def evaluate(self, features: np.ndarray, memory: np.ndarray,
                 targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict without learning (batch norm in eval mode); (probabilities (B, V), loss (B,))."""
        batch_statistics = self.eval_batch_statistics
        if self.embed is not None:
            features = self.embed.forward_eval(features, batch_statistics)
        hidden = np.concatenate([features, memory], axis=1)
        for block in self.hidden:
            hidden = block.forward_eval(hidden, batch_statistics)
        scores, probs = self._scores(hidden)
        loss = -np.take_along_axis(log_softmax(scores), targets[:, None], axis=1)[:, 0]
        return probs, loss

    def memory_gradient(self, features: np.ndarray, memory: np.ndarray,
                        targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A's cross-entropy per row (R,), its gradient in the memory (R, M)) for features
        (R, F), memories (R, M) and targets (R,) int, A in eval mode with its running
        statistics; A learns nothing. (The ``reward_grad`` agent's signal; not to be called
        while ``start_moments`` gathers statistics.)"""
        if self.embed is not None:
            features = self.embed.forward_eval(features, batch_statistics=False)
        hidden = np.concatenate([features, memory], axis=1)
        outputs = []
        for block in self.hidden:
            hidden = block.forward_eval(hidden, batch_statistics=False)
            outputs.append(hidden)
        logits = hidden @ self.w_out.T
        logits += self.b_out
        at = (np.arange(targets.shape[0]), targets)
        _, loss, d_scores = cross_entropy_backward(logits, at, self.double_softmax)
        d_hidden = d_scores @ self.w_out
        for block, output in zip(reversed(self.hidden), reversed(outputs)):
            d_hidden = block.backward_eval(d_hidden, output)
        return loss, d_hidden[:, -memory.shape[1]:]

    # -- one training step ----------------------------------------------------------------------
    def train_step(self, features: np.ndarray, memory: np.ndarray,
                   targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predict and learn from one batch; return (probabilities (B, V), loss per row (B,)).

        Its torch work (the larger products, Adam) runs on one thread whatever the process's
        count: 16-row products gain nothing from a second (``mannrl_gym.threads``)."""
        rows = features.shape[0]
        if rows < 2:
            if not self.gather_small:
                return self.evaluate(features, memory, targets)
            return self._train_small(features, memory, targets)
        with one_thread():
            probs, loss = forward_backward(self, features, memory, targets, self._index(rows))
            norm, scale = clip_scale(self.grad, self.clipping, rows)
            if not math.isfinite(norm):  # NaN in inputs, weights or loss all end up here
                raise_non_finite("action network", f"at training step {self.steps + 1}",
                                 "the gradient norm", self.net)
            self.grad *= scale
            self.steps += 1
            self._adam_step.fill_(self.steps)
            adam_rows(self._adam_rows, [self.lr])
        for block in self.blocks:
            block.update_statistics()
        return probs, loss

    def _index(self, rows: int) -> tuple[np.ndarray]:
        """(arange(rows),): with the targets, each row's target (``forward_backward``)."""
        if self._rows_index.shape[0] != rows:
            self._rows_index = np.arange(rows)
        return (self._rows_index,)

    def start_moments(self) -> None:
        """From now on, ``evaluate`` sums the pre-activations of every batch-norm layer."""
        for block in self.blocks:
            shape = block.b.shape
            block.moments = [0, np.zeros(shape, np.float64), np.zeros(shape, np.float64)]

    def use_moments(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Set the running statistics to the exact mean and variance summed since
        ``start_moments`` ("precise BN"); return the previous ones to restore later.

        Every layer's moments are summed in one pass; for them to be right, the layers before
        a layer must normalise as they will afterwards (see ``evaluation.recalibrate``).
        """
        saved = []
        for block in self.blocks:
            count, total, squares = block.moments
            block.moments = None
            saved.append((block.running_mean.copy(), block.running_var.copy()))
            mean = total / count
            block.running_mean[:] = mean
            block.running_var[:] = (np.maximum(squares / count - mean ** 2, 0.0) * count
                                    / max(count - 1, 1))
        return saved

    def restore_statistics(self, saved: list[tuple[np.ndarray, np.ndarray]]) -> None:
        for block, (mean, var) in zip(self.blocks, saved):
            block.running_mean[:], block.running_var[:] = mean, var

    def statistics(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Copies of every batch-norm layer's (running mean, running variance)."""
        return [(b.running_mean.copy(), b.running_var.copy()) for b in self.blocks]

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
