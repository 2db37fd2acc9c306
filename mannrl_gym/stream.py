"""Lay a pass over a SequenceSet out as B parallel streams ("constant stream" batching).

Each slot reads its sequences back to back: a slot's next sequence starts the step after its
previous one ends, and (with ``carry_memory``) its memory is not reset. Which sequence a slot
reads next is the batching:

``refill`` (default, the reference implementation's): the next sequence of the (shuffled) order
goes to whichever slot frees first (ties: the lower slot), so every slot stays busy until the
order runs out and the pass ends in a tail no longer than one sequence.

``static``: sequence k goes to slot ``k % B``. Slots that drew short sequences run out early and
idle until the longest slot ends: on Logic (Table 1) a tail of about 490 of 7,550 steps with
ever fewer live slots, against 20 with refill. Kept to reproduce earlier figures; measured worse (``benchmarks/fidelity.py``).

``stagger`` delays slot b's first sequence by a seeded 0 to mean-length - 1 idle steps, so
that sequences of equal length never stand at the same position in every slot (batch norm in
training mode subtracts the batch mean: an input symbol shared by every row is erased).

Idle steps (before a staggered first sequence, after a slot's last one) have ``valid`` False.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from mannrl_gym.tasks.base import SequenceSet, gather_ranges

Batching = Literal["refill", "static"]


@dataclass
class EpochStream:
    """One pass over the data as (T, B) tensors, row t being what every slot sees at step t.

    Attributes:
        inputs, targets: (T, B) int64 symbol ids (0 where not valid).
        start: (T, B) bool, True where a new sequence begins.
        valid: (T, B) bool, False on idle steps.
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


def refill_schedule(lengths: np.ndarray, first_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slot (N,), start step (N,)) when each next sequence goes to the slot that frees first.

    lengths: (N,) sequence lengths in reading order; first_free: (B,) the step each slot starts.
    One heap operation per sequence, once per pass (10,000 Logic sequences: a few milliseconds).
    """
    slots = np.empty(lengths.shape[0], dtype=np.int64)
    starts = np.empty(lengths.shape[0], dtype=np.int64)
    heap = [(int(t), b) for b, t in enumerate(first_free)]
    heapq.heapify(heap)
    for i, length in enumerate(lengths.tolist()):
        free, slot = heap[0]
        slots[i], starts[i] = slot, free
        heapq.heapreplace(heap, (free + length, slot))
    return slots, starts


def static_schedule(lengths: np.ndarray, first_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slot (N,), start step (N,)) when sequence k goes to slot k % B."""
    num_slots = first_free.shape[0]
    slots = np.arange(lengths.shape[0]) % num_slots
    starts = np.empty_like(slots)
    for slot in range(num_slots):  # B vectorized cumulative sums
        mine = slots == slot
        ends = np.cumsum(lengths[mine]) + first_free[slot]
        starts[mine] = ends - lengths[mine]
    return slots, starts


SCHEDULES = {"refill": refill_schedule, "static": static_schedule}


def refill_schedules(lengths: list[np.ndarray], first_free: np.ndarray
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``refill_schedule`` of K passes at once: one loop over the sequences, each step
    choosing every pass's first free slot by ``argmin`` over (K, B) free times (ties: the
    lower slot, as the heap). Rather than K Python heap loops (which hold the GIL): for the
    K replicas of ``mannrl_gym.replicas``. lengths: K arrays (N_k,); first_free (K, B)."""
    count, replicas = max(len(part) for part in lengths), len(lengths)
    padded = np.zeros((count, replicas), dtype=np.int64)  # zero-length: moves nothing
    for k, part in enumerate(lengths):
        padded[:len(part), k] = part
    free = np.array(first_free, dtype=np.int64)  # (K, B)
    flat_free, row_start = free.reshape(-1), np.arange(replicas) * free.shape[1]
    slots = np.empty((count, replicas), dtype=np.int64)
    starts = np.empty((count, replicas), dtype=np.int64)
    for i in range(count):
        slot = free.argmin(axis=1)
        where = row_start + slot
        start = flat_free[where]
        slots[i], starts[i] = slot, start
        flat_free[where] = start + padded[i]
    return [(slots[:len(part), k].copy(), starts[:len(part), k].copy())
            for k, part in enumerate(lengths)]


@dataclass
class PassPlan:
    """A pass's random draws: the reading ``order`` (N,) of the sequences, their ``lengths``
    (N,) in that order, and the step each slot starts (``first_free`` (B,))."""

    order: torch.Tensor
    lengths: torch.Tensor
    first_free: torch.Tensor


def plan(data: SequenceSet, num_slots: int, generator: torch.Generator | None,
         stagger: bool = False) -> PassPlan:
    """Draw a pass's order (and stagger) from ``generator``; None keeps data order, no stagger."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    first_free = torch.zeros(num_slots, dtype=torch.int64)
    if stagger and generator is not None:
        mean_length = max(1, int(data.lengths.float().mean().round()))
        first_free = torch.randint(0, mean_length, (num_slots,), generator=generator)
    return PassPlan(order, data.lengths[order], first_free)


def schedule(pass_plan: PassPlan, batching: Batching = "refill") -> tuple[np.ndarray, np.ndarray]:
    """(slot (N,), start step (N,)) of each sequence of the plan under ``batching``."""
    return SCHEDULES[batching](pass_plan.lengths.numpy(), pass_plan.first_free.numpy())


def build(data: SequenceSet, num_slots: int, pass_plan: PassPlan,
          slots: np.ndarray, starts: np.ndarray) -> EpochStream:
    """The (T, B) stream of a planned pass whose sequences go to ``slots`` at ``starts``."""
    n, order, lengths = len(data), pass_plan.order, pass_plan.lengths
    seq_slot, seq_time = torch.from_numpy(slots), torch.from_numpy(starts)
    num_steps = int((seq_time + lengths).max())

    token = gather_ranges(data.offsets[:-1][order], lengths)
    owner = torch.repeat_interleave(torch.arange(n), lengths)
    within = gather_ranges(torch.zeros_like(lengths), lengths)
    cell = (seq_time[owner] + within) * num_slots + seq_slot[owner]  # flat (step, slot)

    def scatter(values: torch.Tensor, fill) -> torch.Tensor:
        out = torch.full((num_steps * num_slots,), fill, dtype=values.dtype)
        out[cell] = values
        return out.view(num_steps, num_slots)

    return EpochStream(
        inputs=scatter(data.inputs[token], 0), targets=scatter(data.targets[token], 0),
        start=scatter(within == 0, False), valid=scatter(torch.ones_like(within, dtype=torch.bool), False),
        answer=scatter(data.answer[token], False), long_range=scatter(data.long_range[token], False),
        kind=scatter(data.kind[order][owner], 0), sequence=scatter(order[owner], -1))


def layout(data: SequenceSet, num_slots: int, generator: torch.Generator | None,
           batching: Batching = "refill", stagger: bool = False) -> EpochStream:
    """Lay ``data`` out in ``num_slots`` streams: ``plan``, ``schedule``, ``build``.

    generator: shuffles the order (and draws the stagger); None keeps data order, no stagger.
    """
    pass_plan = plan(data, num_slots, generator, stagger)
    return build(data, num_slots, pass_plan, *schedule(pass_plan, batching))
