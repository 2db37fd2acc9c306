"""The paper's POS baseline: each word gets the tag it carries most often in training
(unseen words: the most frequent tag overall). Nothing to learn per epoch; the same metrics.

On any task it is the best predictor without memory on the training set: each input symbol
gets its most frequent target (for sentences: the no-memory ceiling)."""

from __future__ import annotations

from typing import Any

import torch

from mannrl_gym.config import Config
from mannrl_gym.metrics import summarize_set
from mannrl_gym.tasks.base import SequenceSet, Task


class MostFrequentTagExperiment:
    """The most-frequent-tag baseline as an ``Experiment`` (mannrl_gym.protocols): a lookup
    table built once from the training split; epochs learn nothing."""

    def __init__(self, config: Config, task: Task) -> None:
        self.task = task
        words, tags = task.train.inputs, task.train.targets
        counts = torch.zeros(len(task.input_symbols), task.num_outputs, dtype=torch.int64)
        counts.index_put_((words, tags), torch.ones_like(words), accumulate=True)
        overall = int(counts.sum(0).argmax())
        self.table = torch.where(counts.sum(1) > 0, counts.argmax(1), overall)  # word id -> tag

    def run_epoch(self, epoch: int, description: str) -> dict[str, Any]:
        return {"train_steps_per_s": None, "train_loss_running": None, "memory_loss": None}

    def check_finite(self, when: str) -> None:
        pass

    def _evaluate(self, data: SequenceSet) -> dict[str, float]:
        return summarize_set(self.table[data.inputs], torch.zeros(data.num_tokens), data,
                             self.task.num_outputs)

    def evaluate(self) -> dict[str, float]:
        return {f"{split}/{key}": value for split in ("train", "validation")
                for key, value in self._evaluate(self.task.split(split)).items()}

    def state_dict(self) -> dict[str, Any]:
        return {"table": self.table}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.table = state["table"]


def _history_keys(data: SequenceSet) -> list[int]:
    """(T,) one key per step for the whole input history of its sequence up to that step:
    equal keys, equal histories (Python's tuple hash chained along each sequence)."""
    keys, lengths = [], data.lengths.tolist()
    inputs, position = data.inputs.tolist(), 0
    for length in lengths:  # once per run, over the data: an analysis baseline, not a step
        key = 0
        for symbol in inputs[position:position + length]:
            key = hash((key, symbol))
            keys.append(key)
        position += length
    return keys


class PerfectMemoryExperiment(MostFrequentTagExperiment):
    """The ceiling of any model with perfect memory: each full input history gets the target
    it carries most often in training (ties: the lowest id; a history never seen in training:
    the most frequent target of its current input). Its training-set accuracy is the highest
    any model can reach; where identical inputs want different targets it is below 1.
    Checkpoints keep the inherited table only: ``best`` is rebuilt from the data."""

    def __init__(self, config: Config, task: Task) -> None:
        super().__init__(config, task)
        counts: dict[int, dict[int, int]] = {}
        for key, target in zip(_history_keys(task.train), task.train.targets.tolist()):
            seen = counts.setdefault(key, {})
            seen[target] = seen.get(target, 0) + 1
        self.best = {key: min(seen, key=lambda t: (-seen[t], t)) for key, seen in counts.items()}

    def _evaluate(self, data: SequenceSet) -> dict[str, float]:
        fallback = self.table[data.inputs].tolist()
        prediction = torch.tensor([self.best.get(key, default) for key, default
                                   in zip(_history_keys(data), fallback)], dtype=torch.int64)
        return summarize_set(prediction, torch.zeros(data.num_tokens), data,
                             self.task.num_outputs)
