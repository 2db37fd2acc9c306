"""A's K action networks of one replicated run on a torch device, and their batched step
(``device=cuda``; see ``mannrl_gym.replicas.device``)."""

from __future__ import annotations

from typing import Sequence

import torch

from mannrl_gym.networks import BN_EPS, BN_MOMENTUM
from mannrl_gym.numerics import raise_first_bad
from mannrl_gym.supervised import ADAM_EPS, BETA1, BETA2, ActionLearner, LearnerStorage


def _param_slices(net: torch.nn.Module) -> dict[int, tuple[int, torch.Size]]:
    """id(parameter) -> (offset, shape) in the learner's flat parameter row, in bind order."""
    slices, offset = {}, 0
    for p in net.parameters():
        slices[id(p)] = (offset, p.shape)
        offset += p.numel()
    return slices


def _row_view(stack: torch.Tensor, offset: int, shape: torch.Size) -> torch.Tensor:
    """The (K, *shape) view of columns [offset, offset + numel) of a (K, N) stack."""
    return stack[:, offset:offset + shape.numel()].unflatten(1, shape)


class DeviceLearners:
    """K action networks of one shape, their Adam state and batch-norm statistics on a
    device, and their batched training step. Shapes: features (K, B, F), memory (K, B, M),
    targets (K, B) int64."""

    def __init__(self, learners: Sequence[ActionLearner], storage: LearnerStorage,
                 device: torch.device) -> None:
        self.learners, self.storage, self.device = list(learners), storage, device
        first = self.learners[0]
        self.double_softmax = first.double_softmax
        net = first.net
        pairs = ([(net.embed[0], net.embed[1])] if net.embed is not None else []) \
            + list(net.hidden_blocks)
        self.embedded = net.embed is not None  # the first block embeds the input features
        params = _param_slices(net)
        self._blocks = [tuple(params[id(p)] for p in (lin.weight, lin.bias, bn.weight, bn.bias))
                        for lin, bn in pairs]
        out = net.output_layer
        self._out = (params[id(out.weight)], params[id(out.bias)])
        # running statistics: each BN's (running_mean, running_var) in the float buffers' order
        floats = [b for b in net.buffers() if b.dtype != torch.int64]
        offsets, offset = {}, 0
        for b in floats:
            offsets[id(b)] = (offset, b.shape)
            offset += b.numel()
        self._statistics = [(offsets[id(bn.running_mean)], offsets[id(bn.running_var)])
                            for _, bn in pairs]

    def upload(self) -> None:
        to = self.device
        self.flat = self.storage.flat.to(to)
        self.exp_avg = self.storage.exp_avg.to(to)
        self.exp_avg_sq = self.storage.exp_avg_sq.to(to)
        self.statistics = self.storage.statistics.to(to)
        self.counts = self.storage.counts.to(to)
        self.steps = torch.tensor([[lr.steps] for lr in self.learners], dtype=torch.float64,
                                  device=to)
        self.lr = torch.tensor([[lr.lr] for lr in self.learners], device=to)
        self.clipping = torch.tensor([lr.clipping for lr in self.learners], device=to)
        self.bad = torch.zeros(len(self.learners), dtype=torch.bool, device=to)

    def download(self, steps: int) -> None:
        """Copy back into the CPU storage; every learner took ``steps`` training steps."""
        self.storage.flat.copy_(self.flat)
        self.storage.exp_avg.copy_(self.exp_avg)
        self.storage.exp_avg_sq.copy_(self.exp_avg_sq)
        self.storage.statistics.copy_(self.statistics)
        self.storage.counts.copy_(self.counts)
        for learner in self.learners:
            learner.steps += steps

    def check_finite(self) -> None:
        raise_first_bad(self.bad, "action network", "the gradient norm",
                        [learner.net for learner in self.learners])

    def train_step(self, features: torch.Tensor, memory: torch.Tensor,
                   targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of every replica; (probabilities (K, B, V), loss (K, B))."""
        rows = features.shape[1]
        probs, loss, grad, batch_statistics = self.forward_backward(features, memory, targets)
        # clip_grad_norm_ per replica, folding in the 1/B of the mean
        norms = torch.linalg.vector_norm(grad, dim=1) / rows
        self.bad |= ~torch.isfinite(norms)
        scale = torch.clamp(self.clipping / (norms + 1e-6), max=1.0) / rows
        grad *= scale.unsqueeze(1)
        self._adam(grad)
        for mean, var, stats in batch_statistics:  # batch norm's running averages
            (mean_at, shape), (var_at, _) = stats
            running_mean = self.statistics[:, mean_at:mean_at + shape.numel()]
            running_var = self.statistics[:, var_at:var_at + shape.numel()]
            running_mean.mul_(1 - BN_MOMENTUM).add_(mean.squeeze(1), alpha=BN_MOMENTUM)
            running_var.mul_(1 - BN_MOMENTUM).add_(var.squeeze(1),
                                                   alpha=BN_MOMENTUM * rows / (rows - 1))
        self.counts += 1
        return probs, loss

    def forward_backward(self, features: torch.Tensor, memory: torch.Tensor,
                         targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor, list]:
        """A's forward in training mode and the backward of the summed loss (as
        ``supervised.forward_backward``): (probabilities (K, B, V), loss (K, B), gradient
        (K, P) in the flat parameter rows' order, each batch-norm block's (batch mean (K, 1,
        O), biased batch variance (K, 1, O), its statistics' offsets))."""
        flat = self.flat
        caches = []

        def block(x: torch.Tensor, depth: int) -> torch.Tensor:
            """linear, batch norm (each replica's batch statistics), relu; keeps the backward's
            operands."""
            w, b, gamma, beta = (_row_view(flat, *part) for part in self._blocks[depth])
            pre = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            mean = pre.mean(dim=1, keepdim=True)
            centred = pre - mean
            var = (centred * centred).mean(dim=1, keepdim=True)  # biased, as batch norm
            inv_std = torch.rsqrt(var + BN_EPS)
            normed = centred * inv_std
            act = torch.addcmul(beta.unsqueeze(1), normed, gamma.unsqueeze(1))
            caches.append((x, normed, inv_std, act, w, gamma, mean, var, self._statistics[depth]))
            return torch.relu(act)

        if self.embedded:
            features = block(features, 0)
        hidden = torch.cat([features, memory], dim=2)
        for depth in range(int(self.embedded), len(self._blocks)):
            hidden = block(hidden, depth)
        w_out, b_out = (_row_view(flat, *part) for part in self._out)
        logits = torch.baddbmm(b_out.unsqueeze(1), hidden, w_out.transpose(1, 2))
        probs = torch.softmax(logits, dim=2)
        scores = probs if self.double_softmax else logits
        log_q = torch.log_softmax(scores, dim=2)
        index = targets.unsqueeze(2)
        loss = -log_q.gather(2, index).squeeze(2)
        d_scores = log_q.exp()
        d_scores.scatter_add_(2, index, torch.full_like(index, -1, dtype=d_scores.dtype))
        if self.double_softmax:  # through the first softmax
            d_scores = probs * (d_scores - (d_scores * probs).sum(dim=2, keepdim=True))
        grads = {self._out[0][0]: d_scores.transpose(1, 2) @ hidden,
                 self._out[1][0]: d_scores.sum(dim=1)}
        d_hidden = d_scores @ w_out
        for depth in range(len(caches) - 1, -1, -1):
            x, normed, inv_std, act, w, gamma, _, _, _ = caches[depth]
            parts = self._blocks[depth]
            if self.embedded and depth == 0:  # the embedding's share of the first block's input
                d_hidden = d_hidden[:, :, :act.shape[2]]
            d_act = d_hidden * (act > 0)
            grads[parts[2][0]] = (d_act * normed).sum(dim=1)
            grads[parts[3][0]] = d_act.sum(dim=1)
            d_normed = d_act * gamma.unsqueeze(1)
            d_pre = (d_normed - d_normed.mean(dim=1, keepdim=True)
                     - normed * (d_normed * normed).mean(dim=1, keepdim=True)) * inv_std
            grads[parts[0][0]] = d_pre.transpose(1, 2) @ x
            grads[parts[1][0]] = d_pre.sum(dim=1)
            if depth > 0:
                d_hidden = d_pre @ w
        grad = torch.cat([grads[offset].flatten(1) for offset in sorted(grads)], dim=1)
        return probs, loss, grad, [cache[6:] for cache in caches]

    def _adam(self, grad: torch.Tensor) -> None:
        """torch.optim.Adam's step on every row, each with its own step count and lr."""
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - BETA1)
        self.exp_avg_sq.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
        step_size = (self.lr / (1 - BETA1 ** self.steps)).float()
        root = torch.sqrt(1 - BETA2 ** self.steps).float()
        denom = self.exp_avg_sq.sqrt().div_(root).add_(ADAM_EPS)
        self.flat.addcdiv_(self.exp_avg * step_size, denom, value=-1.0)
