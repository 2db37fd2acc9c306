"""The peer a sequence-model researcher would pick instead: an LSTM tagger trained by
backpropagation through time, on the same tasks, data, batching size and metrics.

Model: input features (the task's table: one-hot for Logic) -> LSTM (hidden_size) -> linear
-> scores over V_out; cross-entropy on every step, Adam (lr), gradient-norm clipping
(clipping). One epoch = every training sequence once, in shuffled batches of batch_size
sequences padded to the longest; the state starts at zero for each sequence.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from mannrl_gym.config import Config
from mannrl_gym.metrics import summarize_set
from mannrl_gym.networks import initialize
from mannrl_gym.numerics import non_finite_tensors, raise_non_finite
from mannrl_gym.tasks.base import SequenceSet, Task


class LSTMTagger(nn.Module):
    """(B, L) symbol ids -> (B, L, V_out) scores."""

    def __init__(self, input_table: torch.Tensor, hidden_size: int, num_outputs: int) -> None:
        super().__init__()
        self.register_buffer("table", input_table.to(torch.float32))
        self.lstm = nn.LSTM(input_table.shape[1], hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.table[ids])
        return self.head(hidden)


@torch.no_grad()
def _initialize(model: LSTMTagger, generator: torch.Generator) -> None:
    initialize(model, generator)  # the linear head
    bound = 1.0 / model.lstm.hidden_size ** 0.5
    for weight in model.lstm.parameters():  # PyTorch's LSTM default, from the generator
        weight.uniform_(-bound, bound, generator=generator)


class LSTMExperiment:
    """The LSTM peer as an ``Experiment`` (mannrl_gym.protocols): one epoch is every training
    sequence once, in shuffled batches."""

    def __init__(self, config: Config, task: Task) -> None:
        self.config, self.task = config, task
        self.model = LSTMTagger(task.input_table, config.hidden_size, task.num_outputs)
        _initialize(self.model, torch.Generator().manual_seed(config.seed))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed + 3)
        self.train_data = task.train.padded()
        self.epoch = 0  # the curriculum's epoch (sentence tasks)

    def run_epoch(self, epoch: int, description: str) -> dict[str, Any]:
        inputs, targets, mask = self.train_data
        self.epoch = epoch
        order = torch.randperm(self.task.train_size_at(epoch), generator=self.generator)
        tic, loss_sum, tokens = time.perf_counter(), 0.0, 0
        self.model.train()
        for start in range(0, order.numel(), self.config.batch_size):
            batch = order[start:start + self.config.batch_size]
            longest = int(mask[batch].sum(1).max())
            ids, tgt, valid = (t[batch, :longest] for t in (inputs, targets, mask))
            scores = self.model(ids)
            rows = nn.functional.cross_entropy(scores[valid], tgt[valid], reduction="none")
            loss = rows.mean()
            if not bool(torch.isfinite(loss)):
                raise_non_finite("LSTM", f"at batch {start // self.config.batch_size + 1}",
                                 "the loss", self.model)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clipping)
            self.optimizer.step()
            loss_sum += float(rows.detach().sum())
            tokens += int(valid.sum())
        seconds = time.perf_counter() - tic
        batches = -(-order.numel() // self.config.batch_size)
        return {"train_steps_per_s": batches / seconds, "train_loss_running": loss_sum / tokens,
                "memory_loss": None}

    def check_finite(self, when: str) -> None:
        if non_finite_tensors(self.model):
            raise_non_finite("LSTM", when, "a weight", self.model)

    @torch.no_grad()
    def _evaluate(self, data: SequenceSet) -> dict[str, float]:
        self.model.eval()
        inputs, targets, mask = data.padded()
        size = self.config.eval_batch_size
        scores = torch.cat([self.model(inputs[s:s + size]) for s in range(0, inputs.shape[0], size)])
        prediction = scores.argmax(-1)[mask]
        loss = nn.functional.cross_entropy(scores[mask], targets[mask], reduction="none")
        return summarize_set(prediction, loss, data, self.task.num_outputs)

    def evaluate(self) -> dict[str, float]:
        return {f"{split}/{key}": value
                for split in ("train", "validation")
                for key, value in self._evaluate(self.task.split_at(split, self.epoch)).items()}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
