"""A user's own symbolic task: a JSON-lines file of input/target symbol lists.

Each line: ``{"input": ["a", "b", ...], "target": ["x", "y", ...]}`` with equal lengths, and
optionally ``"answer": [i, ...]``, the step indices whose target needs memory (reported as
answer accuracy; without it, every step counts as an answer step). Symbols are JSON strings (a
number, null, list or NaN is refused with its line); the file is UTF-8. Inputs
are one-hot encoded over the sorted input vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mannrl_gym.errors import DataError, not_a_file
from mannrl_gym.tasks.base import SequenceSet, Task, split_indices
from mannrl_gym.tasks.sentence import read_lines


_ALL_STRINGS = object()


def _no_constant(name: str):
    """``json.loads`` hook: NaN and Infinity are not JSON; refuse them as a decode error."""
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def read_jsonl(path: str | Path) -> list[tuple[list[str], list[str], list[int] | None]]:
    """Parse and check every line of ``path`` before anything is trained."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {not_a_file(path, 'data file')}")
    rows = []
    for line_no, line in enumerate(read_lines(path), start=1):  # DataError where not UTF-8
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "input" not in row or "target" not in row:
            raise DataError(f"{path}:{line_no}: expected an object with 'input' and 'target'")
        seq_in, seq_target = row["input"], row["target"]
        if not (isinstance(seq_in, list) and isinstance(seq_target, list)) or not seq_in:
            raise DataError(f"{path}:{line_no}: 'input' and 'target' must be non-empty lists")
        if len(seq_in) != len(seq_target):
            raise DataError(f"{path}:{line_no}: input has {len(seq_in)} symbols but target "
                            f"has {len(seq_target)}")
        for name, symbols in (("input", seq_in), ("target", seq_target)):
            wrong = next((s for s in symbols if not isinstance(s, str)), _ALL_STRINGS)
            if wrong is not _ALL_STRINGS:
                raise DataError(f"{path}:{line_no}: '{name}' symbols must be strings, got "
                                f"{json.dumps(wrong)}")
        answer = row.get("answer")
        if answer is not None and not (isinstance(answer, list) and all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(seq_in)
                for i in answer)):
            raise DataError(f"{path}:{line_no}: 'answer' must list step indices in "
                            f"[0, {len(seq_in)}), got {json.dumps(answer)}")
        rows.append((seq_in, seq_target, answer))
    if not rows:
        raise DataError(f"{path}: no sequences in file")
    return rows


def _encode(rows, in_id: dict[str, int], out_id: dict[str, int], path: str) -> SequenceSet:
    inputs, targets, answer, lengths = [], [], [], []
    for line, (seq_in, seq_target, steps) in enumerate(rows, start=1):
        for symbol in seq_in:
            if symbol not in in_id:
                raise DataError(f"{path}: sequence {line}: input symbol {symbol!r} is not in the "
                                f"training vocabulary")
        for symbol in seq_target:
            if symbol not in out_id:
                raise DataError(f"{path}: sequence {line}: target symbol {symbol!r} is not in the "
                                f"training vocabulary")
        inputs += [in_id[s] for s in seq_in]
        targets += [out_id[s] for s in seq_target]
        flags = [steps is None] * len(seq_in)
        for i in steps or []:
            flags[i] = True
        answer += flags
        lengths.append(len(seq_in))
    n_tokens = len(inputs)
    return SequenceSet(
        inputs=torch.tensor(inputs), targets=torch.tensor(targets),
        offsets=torch.cat([torch.zeros(1, dtype=torch.int64), torch.tensor(lengths).cumsum(0)]),
        answer=torch.tensor(answer), long_range=torch.zeros(n_tokens, dtype=torch.bool),
        kind=torch.zeros(len(rows), dtype=torch.int64), kind_names=("all",))


def make_task(data_path: str, val_path: str | None = None, seed: int = 0,
              val_fraction: float = 0.05, holdout: str = "distinct") -> Task:
    """A Task from JSON-lines files; without ``val_path`` the data is split by ``holdout``."""
    train_rows = read_jsonl(data_path)
    val_rows = read_jsonl(val_path) if val_path else None
    in_symbols = tuple(sorted({s for r in train_rows for s in r[0]}))
    out_symbols = tuple(sorted({s for r in train_rows for s in r[1]}))
    in_id = {s: i for i, s in enumerate(in_symbols)}
    out_id = {s: i for i, s in enumerate(out_symbols)}
    train = _encode(train_rows, in_id, out_id, data_path)
    if val_rows is not None:
        validation = _encode(val_rows, in_id, out_id, val_path)
    else:
        if len(train_rows) < 2:
            raise DataError(f"{data_path}: need at least 2 sequences to split off validation")
        key_of: dict[tuple, int] = {}
        keys = torch.tensor([key_of.setdefault((tuple(r[0]), tuple(r[1])), len(key_of))
                             for r in train_rows])
        generator = torch.Generator().manual_seed(seed)
        train_idx, val_idx = split_indices(keys, val_fraction, holdout == "distinct", generator)
        if val_idx.numel() == 0 or train_idx.numel() == 0:
            train_idx, val_idx = split_indices(keys, val_fraction, False, generator)
        train, validation = train.subset(train_idx), train.subset(val_idx)
    return Task(name=Path(data_path).stem, input_symbols=in_symbols, output_symbols=out_symbols,
                input_table=torch.eye(len(in_symbols)), train=train, validation=validation)
