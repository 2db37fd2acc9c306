"""Sequence data shared by every task: flat token tensors plus offsets, and their splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mannrl_gym.errors import ConfigError, DataError  # noqa: F401  (DataError: where it used to live)


@dataclass
class SequenceSet:
    """N variable-length sequences stored flat.

    Attributes:
        inputs: (T,) int64 input symbol ids, all sequences concatenated.
        targets: (T,) int64 target symbol ids, aligned with ``inputs``.
        offsets: (N + 1,) int64; sequence i is ``inputs[offsets[i]:offsets[i + 1]]``.
        answer: (T,) bool, True on steps whose target depends on the past (the memory's job).
        long_range: (T,) bool, answer steps whose deciding input lies more than 10 steps back.
        kind: (N,) int64 category of each sequence (e.g. and / or / xor), indexes ``kind_names``.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    offsets: torch.Tensor
    answer: torch.Tensor
    long_range: torch.Tensor
    kind: torch.Tensor
    kind_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.offsets.numel() - 1)

    @property
    def lengths(self) -> torch.Tensor:
        """(N,) int64 sequence lengths."""
        return self.offsets[1:] - self.offsets[:-1]

    @property
    def num_tokens(self) -> int:
        return int(self.inputs.numel())

    def padded(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs (N, L), targets (N, L), mask (N, L) bool), padded with 0 to the longest."""
        lengths = self.lengths
        n, longest = len(self), int(lengths.max())
        mask = torch.arange(longest).expand(n, longest) < lengths[:, None]
        inputs = torch.zeros(n, longest, dtype=torch.int64)
        targets = torch.zeros(n, longest, dtype=torch.int64)
        inputs[mask], targets[mask] = self.inputs, self.targets
        return inputs, targets, mask

    def subset(self, index: torch.Tensor) -> "SequenceSet":
        """The sequences ``index`` (int64, any order) as a new SequenceSet."""
        starts, lengths = self.offsets[:-1][index], self.lengths[index]
        token_index = gather_ranges(starts, lengths)
        return SequenceSet(
            inputs=self.inputs[token_index], targets=self.targets[token_index],
            offsets=torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]),
            answer=self.answer[token_index], long_range=self.long_range[token_index],
            kind=self.kind[index], kind_names=self.kind_names)


def gather_ranges(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Flat indices ``[s0, s0+1, ..., s0+l0-1, s1, ...]`` for ranges (starts, lengths), vectorized."""
    total = int(lengths.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64)
    range_of_token = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    first_token = lengths.cumsum(0) - lengths
    within = torch.arange(total) - first_token[range_of_token]
    return starts[range_of_token] + within


@dataclass(frozen=True)
class Curriculum:
    """Training data that grows with the epoch: in stage k the train split's first
    ``sizes[k]`` sequences train; stage k starts at (0-based) epoch ``k * every``."""

    sizes: tuple[int, ...]  # increasing; the last is the whole train split
    every: int  # epochs per stage

    def size_at(self, epoch: int) -> int:
        """How many leading training sequences train in ``epoch`` (0-based)."""
        return self.sizes[min(len(self.sizes) - 1, max(0, epoch) // self.every)]


@dataclass
class Task:
    """What an environment needs to know about a task.

    Attributes:
        name: short task name.
        input_symbols: names of the V_in input ids.
        output_symbols: names of the V_out output (target) ids.
        input_table: (V_in, F) float32 features of each input id (one-hot, word vectors, ...).
        train, validation: the two splits.
    """

    name: str
    input_symbols: tuple[str, ...]
    output_symbols: tuple[str, ...]
    input_table: torch.Tensor
    train: SequenceSet
    validation: SequenceSet
    unknown_words: tuple[str, ...] = ()  # input words given a stand-in vector (word-vector tasks)
    details: dict[str, Any] = field(default_factory=dict)  # how the data was built (for summary.json)
    curriculum: Curriculum | None = None  # None: the whole train split every epoch

    @property
    def num_outputs(self) -> int:
        return len(self.output_symbols)

    @property
    def input_dim(self) -> int:
        return int(self.input_table.shape[1])

    def split(self, name: str) -> SequenceSet:
        if name not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {name!r}")
        return self.train if name == "train" else self.validation

    def train_size_at(self, epoch: int) -> int:
        """Number of leading training sequences that train in (0-based) ``epoch``."""
        return len(self.train) if self.curriculum is None else self.curriculum.size_at(epoch)

    def split_at(self, name: str, epoch: int | None) -> SequenceSet:
        """The split as it stands in ``epoch``: the curriculum's prefix of the train split
        (the whole split when ``epoch`` is None or there is no curriculum)."""
        data = self.split(name)
        if name != "train" or epoch is None or self.curriculum is None:
            return data
        size = self.curriculum.size_at(epoch)
        return data if size == len(data) else data.subset(torch.arange(size))


AUTO_HOLDOUT = 100  # distinct_count=None: hold out this many distinct sequences ...
AUTO_HOLDOUT_SHARE = 4  # ... or 1 in this many of the eligible ones, whichever is fewer


def auto_holdout(eligible: int) -> int:
    """The distinct sequences ``distinct_count=None`` holds out among ``eligible``: 100, or a
    quarter of them when that is fewer (at least 1), so training keeps most of them."""
    return min(AUTO_HOLDOUT, max(1, eligible // AUTO_HOLDOUT_SHARE))


def split_indices(keys: torch.Tensor, val_fraction: float, distinct: bool,
                  generator: torch.Generator, never_hold_out: torch.Tensor | None = None,
                  distinct_count: int | None = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split N sequences into (train, validation) index tensors.

    Args:
        keys: (N,) int64, equal for identical sequences.
        val_fraction: share of the N sequences to hold out.
        distinct: if True, whole groups of identical sequences are held out, so no validation
            sequence occurs in training; else a plain random split of the N draws.
        never_hold_out: (N,) bool, sequences that stay in training under ``distinct``.
        distinct_count: under ``distinct``, if > 0: hold out this many distinct sequences,
            drawn uniformly among the eligible ones (not by how often each was drawn), and
            validate on one copy of each; the other copies leave training too. None: as many
            as ``auto_holdout`` says. 0: hold out whole groups until ``val_fraction`` of the N
            draws is reached.
    """
    n = keys.numel()
    if not distinct:
        order = torch.randperm(n, generator=generator)
        n_val = max(1, round(n * val_fraction))
        return order[n_val:].sort().values, order[:n_val].sort().values
    unique, group = torch.unique(keys, return_inverse=True)
    counts = torch.bincount(group, minlength=unique.numel())
    eligible = torch.ones(unique.numel(), dtype=torch.bool)
    if never_hold_out is not None:
        eligible[group[never_hold_out]] = False
    order = torch.randperm(unique.numel(), generator=generator)
    order = order[eligible[order]]
    if distinct_count is None:
        if order.numel() < 2:
            raise ConfigError(f"only {order.numel()} distinct sequence(s) can be held out, too few "
                              f"to hold any out and train on the rest; draw more sequences or "
                              f"use holdout: random")
        distinct_count = auto_holdout(order.numel())
    if distinct_count > 0:
        if distinct_count >= order.numel():
            raise ConfigError(f"key 'holdout_distinct' is {distinct_count}, but only "
                              f"{order.numel()} distinct sequences can be held out, and "
                              f"training needs at least one (holdout_distinct=0 holds out by "
                              f"val_fraction)")
        held = torch.zeros(unique.numel(), dtype=torch.bool)
        held[order[:distinct_count]] = True
        is_val = held[group]
        first = torch.full((unique.numel(),), n, dtype=torch.int64).scatter_reduce(
            0, group, torch.arange(n), reduce="amin")  # first draw of each distinct sequence
        return torch.nonzero(~is_val).squeeze(1), first[held].sort().values
    held = torch.zeros(unique.numel(), dtype=torch.bool)
    taken, target = 0, n * val_fraction
    for g in order.tolist():  # over distinct groups (hundreds), once per run
        if taken >= target:
            break
        held[g] = True
        taken += int(counts[g])
    is_val = held[group]
    return torch.nonzero(~is_val).squeeze(1), torch.nonzero(is_val).squeeze(1)
