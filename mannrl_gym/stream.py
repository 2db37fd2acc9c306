"""Lay a pass over a SequenceSet out as B parallel streams ("constant stream" batching).

Sequence k of the (optionally shuffled) order goes to slot ``k % B``; each slot reads its
sequences back to back, so a slot's next sequence starts the step after its previous one ends.
Slots that run out before the longest one idle (``valid`` False) until the pass ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mannrl_gym.tasks.base import SequenceSet, gather_ranges


@dataclass
class EpochStream:
    """One pass over the data as (T, B) tensors, row t being what every slot sees at step t.

    Attributes:
        inputs, targets: (T, B) int64 symbol ids (0 where not valid).
        start: (T, B) bool, True where a new sequence begins.
        valid: (T, B) bool, False on idle padding at the end of the pass.
        answer, long_range: (T, B) bool step flags (see SequenceSet).
        kind: (T, B) int64 category of the sequence being read.
        sequence: (T, B) int64 index (in the SequenceSet) of the sequence being read; -1 idle.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    start: torch.Tensor
    valid: torch.Tensor
    answer: torch.Tensor
    long_range: torch.Tensor
    kind: torch.Tensor
    sequence: torch.Tensor

    @property
    def num_steps(self) -> int:
        return int(self.inputs.shape[0])


def layout(data: SequenceSet, num_slots: int, generator: torch.Generator | None) -> EpochStream:
    """Lay ``data`` out in ``num_slots`` streams; shuffle the order with ``generator`` if given."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    rows = -(-n // num_slots)
    padded = torch.full((rows * num_slots,), -1, dtype=torch.int64)
    padded[:n] = order
    grid = padded.view(rows, num_slots)  # grid[r, b]: r-th sequence of slot b
    grid_len = torch.where(grid >= 0, data.lengths[grid.clamp(min=0)], 0)
    slot_start = grid_len.cumsum(0) - grid_len  # first step of each sequence in its slot
    num_steps = int(grid_len.sum(0).max())

    present = grid >= 0
    seq = grid[present]
    seq_slot = torch.arange(num_slots).expand(rows, num_slots)[present]
    seq_time = slot_start[present]
    lengths = data.lengths[seq]
    token = gather_ranges(data.offsets[:-1][seq], lengths)
    owner = torch.repeat_interleave(torch.arange(seq.numel()), lengths)
    within = gather_ranges(torch.zeros_like(lengths), lengths)
    time, slot = seq_time[owner] + within, seq_slot[owner]

    def scatter(values: torch.Tensor, fill) -> torch.Tensor:
        out = torch.full((num_steps, num_slots), fill, dtype=values.dtype)
        out[time, slot] = values
        return out

    return EpochStream(
        inputs=scatter(data.inputs[token], 0), targets=scatter(data.targets[token], 0),
        start=scatter(within == 0, False), valid=scatter(torch.ones_like(within, dtype=torch.bool), False),
        answer=scatter(data.answer[token], False), long_range=scatter(data.long_range[token], False),
        kind=scatter(data.kind[seq][owner], 0), sequence=scatter(seq[owner], -1))
