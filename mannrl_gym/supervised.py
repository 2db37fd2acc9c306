"""The action network's supervised learner, embedded in every environment.

It owns the action network A and its optimizer. Each training step is one forward pass on
the batch of slots, per-row cross-entropy, one Adam step with gradient-norm clipping.
"""

from __future__ import annotations

import torch
from torch import nn

from mannrl_gym.networks import ActionNet, initialize


class ActionLearner:
    """A(x, m) and its training. Shapes: features (B, F), memory (B, M), targets (B,).

    Args:
        double_softmax: the reference's quirk: A ends in a softmax and cross-entropy is then
            applied to those probabilities (a second softmax). False: cross-entropy on logits.
        min_batch: batch norm needs at least 2 rows; a smaller batch (the single-slot env) is
            answered in eval mode and kept until ``min_batch`` rows are gathered, then trained.
    """

    def __init__(self, input_dim: int, memory_size: int, hidden_size: int, num_outputs: int,
                 lr: float, clipping: float, double_softmax: bool, seed: int,
                 min_batch: int = 16) -> None:
        self.net = ActionNet(input_dim, memory_size, hidden_size, num_outputs,
                             softmax_output=double_softmax)
        self.lr, self.clipping, self.double_softmax = lr, clipping, double_softmax
        self.min_batch = max(2, min_batch)
        self.reinitialize(seed)

    def reinitialize(self, seed: int) -> None:
        """Fresh weights and optimizer state drawn from ``seed``."""
        initialize(self.net, torch.Generator().manual_seed(seed))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr, foreach=True)
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return scores if self.double_softmax else scores.softmax(dim=1)

    def train_step(self, features: torch.Tensor, memory: torch.Tensor,
                   targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict and learn from one batch; return (probabilities (B, V), loss per row (B,))."""
        if features.shape[0] < 2:
            return self._train_small(features, memory, targets)
        self.net.train()
        scores = self.net(features, memory)
        rows = nn.functional.cross_entropy(scores, targets, reduction="none")
        self.optimizer.zero_grad(set_to_none=True)
        rows.mean().backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.clipping, foreach=True)
        self.optimizer.step()
        return self.probabilities(scores.detach()), rows.detach()

    @torch.no_grad()
    def evaluate(self, features: torch.Tensor, memory: torch.Tensor,
                 targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict without learning (eval mode); return (probabilities, loss per row)."""
        self.net.eval()
        scores = self.net(features, memory)
        rows = nn.functional.cross_entropy(scores, targets, reduction="none")
        return self.probabilities(scores), rows

    def _train_small(self, features, memory, targets):
        probs, rows = self.evaluate(features, memory, targets)
        self._pending.append((features, memory, targets))
        if sum(f.shape[0] for f, _, _ in self._pending) >= self.min_batch:
            batch = [torch.cat(parts) for parts in zip(*self._pending)]
            self._pending = []
            self.train_step(*batch)
        return probs, rows

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._pending = []
