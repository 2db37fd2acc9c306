"""The paper's sequential logic task (section 4.1).

Input ``o r 1 0 = |``, target ``. o r 1 0 1``: the target echoes the previous input, except on
the last step (input ``|``) where it is the answer. Three forms, chosen uniformly:

* ``and``: 2 to 20 operands, all 1 except, with probability 1/2, a single 0 at a uniform place;
* ``or``: the mirror image (all 0, with probability 1/2 a single 1);
* ``xor``: exactly 2 uniform operands.

Only 460 distinct sequences exist (228 and, 228 or, 4 xor).
"""

from __future__ import annotations

import torch

from mannrl_gym.tasks.base import SequenceSet, Task, split_indices

SYMBOLS: tuple[str, ...] = ("a", "n", "d", "o", "r", "x", "0", "1", "=", ".", "|")
KINDS: tuple[str, ...] = ("and", "or", "xor")
LONG_RANGE_STEPS = 10
_ID = {s: i for i, s in enumerate(SYMBOLS)}


def _sequence(kind: int, operands: list[int]) -> tuple[list[str], list[str], int]:
    """(input symbols, target symbols, index of the deciding input) for one sequence."""
    operator = list(KINDS[kind])
    inputs = operator + [str(b) for b in operands] + ["=", "|"]
    if kind == 0:
        answer, odd = int(all(operands)), [i for i, b in enumerate(operands) if b == 0]
    elif kind == 1:
        answer, odd = int(any(operands)), [i for i, b in enumerate(operands) if b == 1]
    else:
        answer, odd = operands[0] ^ operands[1], [0]
    deciding = len(operator) + odd[0] if odd else 0  # no odd operand: the operator decides
    targets = ["."] + inputs[:-1]
    targets[-1] = str(answer)
    return inputs, targets, deciding


def generate(num_sequences: int, generator: torch.Generator, min_operands: int = 2,
             max_operands: int = 20) -> tuple[SequenceSet, torch.Tensor]:
    """Draw ``num_sequences`` logic sequences from the paper's distribution.

    Returns the sequences and (N,) int64 keys, equal for identical sequences.
    """
    n = num_sequences
    kind = torch.randint(0, 3, (n,), generator=generator)
    count = torch.randint(min_operands, max_operands + 1, (n,), generator=generator)
    has_odd = torch.rand(n, generator=generator) < 0.5
    odd_at = (torch.rand(n, generator=generator) * count).long()
    xor_bits = torch.randint(0, 2, (n, 2), generator=generator)
    inputs, targets, answer, long_range, keys, lengths = [], [], [], [], [], []
    key_of: dict[tuple[str, ...], int] = {}
    for i in range(n):  # once per data set, not per step
        k = int(kind[i])
        if k == 2:
            operands = xor_bits[i].tolist()
        else:
            base = 1 if k == 0 else 0
            operands = [base] * int(count[i])
            if has_odd[i]:
                operands[int(odd_at[i])] = 1 - base
        seq_in, seq_target, deciding = _sequence(k, operands)
        length = len(seq_in)
        inputs += [_ID[s] for s in seq_in]
        targets += [_ID[s] for s in seq_target]
        answer += [False] * (length - 1) + [True]
        long_range += [False] * (length - 1) + [(length - 1 - deciding) > LONG_RANGE_STEPS]
        keys.append(key_of.setdefault(tuple(seq_in), len(key_of)))
        lengths.append(length)
    sequences = SequenceSet(
        inputs=torch.tensor(inputs), targets=torch.tensor(targets),
        offsets=torch.cat([torch.zeros(1, dtype=torch.int64), torch.tensor(lengths).cumsum(0)]),
        answer=torch.tensor(answer), long_range=torch.tensor(long_range),
        kind=kind, kind_names=KINDS)
    return sequences, torch.tensor(keys)


def make_task(num_sequences: int = 10_000, seed: int = 0, val_fraction: float = 0.05,
              holdout: str = "distinct", min_operands: int = 2, max_operands: int = 20,
              holdout_distinct: int | None = None) -> Task:
    """The Logic task: generated sequences, split into train and validation from ``seed``.

    ``holdout="distinct"`` holds out whole distinct sequences (never xor, which has only 4), so
    validation measures generalisation; ``holdout="random"`` is the paper's plain 95/5 split, in
    which nearly every validation sequence also occurs in training. With ``distinct``,
    ``holdout_distinct`` > 0 holds out that many distinct sequences, one copy each in
    validation; None (the default) 100 of them, or a quarter of the distinct sequences drawn
    when that is fewer (``base.auto_holdout``); 0 draws whole groups until ``val_fraction`` of
    the draws, which is a few frequent sequences (at seed 0: 534 draws of 17 distinct ones).
    """
    generator = torch.Generator().manual_seed(seed)
    sequences, keys = generate(num_sequences, generator, min_operands, max_operands)
    train_idx, val_idx = split_indices(keys, val_fraction, holdout == "distinct", generator,
                                       never_hold_out=sequences.kind == 2,
                                       distinct_count=holdout_distinct)
    return Task(name="logic", input_symbols=SYMBOLS, output_symbols=SYMBOLS,
                input_table=torch.eye(len(SYMBOLS)),
                train=sequences.subset(train_idx), validation=sequences.subset(val_idx))
