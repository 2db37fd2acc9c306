"""Sentence memorization and translation, character by character (section 4.3).

Each sequence has a reading phase, where the agent sees a source sentence one character at a
time, and a writing phase, where it is fed ``<empty>`` and must write the target sentence
(the source itself for the ``sentence`` task, its translation for ``translate``) followed by
``<end>``; only the memory can carry the sentence across. Source "Hi.", target "Hi.":

    memorize  inputs   <start> H i . <sep> <empty> <empty> <empty> <empty>
              targets  <start> 0 1 2 <sep> H     i     .     <end>
    echo      inputs   <start> H i . <sep> <empty> <empty> <empty> <empty>
              targets  <start> H i . <sep> H     i     .     <end>

While reading, the ``memorize`` kind writes the repeating digits 0123456789 (a position
count, the same output symbols as digits in sentences: the reference implementation's
target), or with ``reading_fill="empty"`` an ``<empty>`` output symbol (the paper's text:
"a character that represented an empty output"); the ``echo`` kind reproduces each input
character. The two kinds read the same inputs but want different targets while reading, so
no model, however good its memory, can be right on both: on the 500 shortest PUD sentences
the best possible training-set F1 is about 0.77 (``agent=perfect_memory`` measures it).
``echo_marker=True`` starts echo copies with an ``<echo>`` input instead of ``<start>``,
which lifts that ceiling to 1. Answer steps are the writing phase;
they are long-range when the first source character lies more than 10 steps before the first
written one (sources of 10 or more characters). Input ids are one-hot features; output
symbols are the target characters, the digits and, with echo copies, the source characters.

Cleaning: HTML entities are unescaped (repeatedly, for WMT's ``&amp;quot;``), text is NFC
normalized, every whitespace run becomes one space, ends are stripped. Pairs with an empty
side, or holding a character seen fewer than ``min_char_count`` times in the files (over
both sides for translation), are dropped. The shortest ``num_sentences`` pairs (by source
plus target characters, ties in file order) are the training sentences; validation holds
the next-shortest ``round(num_sentences * val_fraction)`` (at least one), so it is slightly
longer and unseen. The paper used the 500 shortest sentences of WMT14 news-commentary v9 fr-en.
"""

from __future__ import annotations

import html
import unicodedata
from collections import Counter
from pathlib import Path

import torch

from mannrl_gym.tasks.base import DataError, SequenceSet, Task

INPUT_SPECIALS = ("<start>", "<sep>", "<empty>")
OUTPUT_SPECIALS = ("<start>", "<sep>", "<end>")
EMPTY_OUTPUT = "<empty>"  # an output symbol only with reading_fill="empty"
ECHO_START = "<echo>"  # an input symbol only with echo_marker=True
KIND_NAMES = ("memorize", "echo")
DIGITS = "0123456789"
LONG_RANGE = 10  # an answer is long-range when its deciding input is more than this far back

Pair = tuple[str, str]


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 file, split on "\\n" only, trailing "\\r" removed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_no = data[:error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line_no}: not valid UTF-8 ({error.reason} at byte "
                        f"{error.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: file is empty")
    return lines


def read_aligned(source_path: str | Path, target_path: str | Path | None) -> list[Pair]:
    """Raw (source, target) line pairs; without ``target_path`` the target is the source."""
    sources = read_lines(source_path)
    if target_path is None:
        return [(line, line) for line in sources]
    targets = read_lines(target_path)
    if len(sources) != len(targets):
        raise DataError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}: "
            "the files must be sentence-aligned (line i of one is the translation of line i "
            "of the other)")
    return list(zip(sources, targets))


def clean(text: str) -> str:
    """Unescape HTML entities (up to 3 rounds), NFC, collapse whitespace runs, strip."""
    for _ in range(3):
        unescaped = html.unescape(text)
        if unescaped == text:
            break
        text = unescaped
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def sequence(source: str, target: str, echo: bool, reading_fill: str = "digits",
             echo_marker: bool = False) -> tuple[list[str], list[str]]:
    """(input symbols, target symbols), both of length len(source) + len(target) + 3.

    ``reading_fill``: what the memorize kind writes while reading: "digits" (the repeating
    0123456789 of the reference implementation) or "empty" (an ``<empty>`` output symbol, as
    the paper's text describes it). ``echo_marker``: an echo copy reads ``<echo>`` instead of
    ``<start>`` first, so that the two kinds, otherwise the same inputs, can be told apart.
    """
    if echo:
        fill = list(source)
    elif reading_fill == "empty":
        fill = [EMPTY_OUTPUT] * len(source)
    else:
        fill = [DIGITS[i % 10] for i in range(len(source))]
    first = ECHO_START if echo and echo_marker else "<start>"
    inputs = [first, *source, "<sep>"] + ["<empty>"] * (len(target) + 1)
    targets = ["<start>", *fill, "<sep>", *target, "<end>"]
    return inputs, targets


def _rare_characters(pairs: list[Pair], min_char_count: int, both_sides: bool) -> set[str]:
    """Characters seen fewer than ``min_char_count`` times over all pairs.

    ``both_sides`` counts sources and targets; without it only sources (when the target is
    the source itself, counting it again would double every count).
    """
    counts = Counter(c for source, target in pairs for c in (source + target if both_sides
                                                              else source))
    return {c for c, n in counts.items() if n < min_char_count}


def _encode(pairs: list[Pair], echo_copies: bool, input_id: dict[str, int],
            output_id: dict[str, int], reading_fill: str = "digits",
            echo_marker: bool = False) -> SequenceSet:
    """Memorize sequences of all pairs (kind 0), then their echo sequences (kind 1)."""
    echoes = (False, True) if echo_copies else (False,)
    inputs: list[int] = []
    targets: list[int] = []
    answer: list[bool] = []
    long_range: list[bool] = []
    offsets, kind = [0], []
    for echo in echoes:
        for source, target in pairs:
            symbols_in, symbols_out = sequence(source, target, echo, reading_fill, echo_marker)
            inputs += [input_id[s] for s in symbols_in]
            targets += [output_id[s] for s in symbols_out]
            reading, writing = len(source) + 2, len(target) + 1
            answer += [False] * reading + [True] * writing
            far = len(source) + 1 > LONG_RANGE
            long_range += [False] * reading + [far] * writing
            offsets.append(offsets[-1] + reading + writing)
            kind.append(int(echo))
    return SequenceSet(
        inputs=torch.tensor(inputs, dtype=torch.int64),
        targets=torch.tensor(targets, dtype=torch.int64),
        offsets=torch.tensor(offsets, dtype=torch.int64),
        answer=torch.tensor(answer, dtype=torch.bool),
        long_range=torch.tensor(long_range, dtype=torch.bool),
        kind=torch.tensor(kind, dtype=torch.int64), kind_names=KIND_NAMES)


def _check_arguments(num_sentences: int, val_fraction: float, min_char_count: int) -> None:
    if num_sentences < 1:
        raise ValueError(f"num_sentences must be >= 1, got {num_sentences}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if min_char_count < 1:
        raise ValueError(f"min_char_count must be >= 1, got {min_char_count}")


def make_task(source_path: str, target_path: str | None = None, num_sentences: int = 500,
              echo_copies: bool = True, val_fraction: float = 0.05,
              min_char_count: int = 2, reading_fill: str = "digits",
              echo_marker: bool = False) -> Task:
    """The shortest ``num_sentences`` clean pairs for training, the next-shortest held out."""
    _check_arguments(num_sentences, val_fraction, min_char_count)
    if reading_fill not in ("digits", "empty"):
        raise ValueError(f"reading_fill must be 'digits' or 'empty', got {reading_fill!r}")
    raw = read_aligned(source_path, target_path)
    cleaned = [(clean(s), clean(t)) for s, t in raw]
    nonempty = [(s, t) for s, t in cleaned if s and t]
    rare = _rare_characters(nonempty, min_char_count, target_path is not None)
    usable = [(s, t) for s, t in nonempty if not rare.intersection(s + t)]
    if len(usable) < num_sentences + 1:
        raise DataError(
            f"{source_path}: only {len(usable)} usable sentence pairs of {len(raw)} lines "
            f"(after dropping empty lines and rare characters), but num_sentences="
            f"{num_sentences} needs at least {num_sentences + 1} (one held out for "
            f"validation): use a smaller num_sentences")
    ranked = sorted(usable, key=lambda pair: len(pair[0]) + len(pair[1]))
    n_val = max(1, round(num_sentences * val_fraction))
    train, held_out = ranked[:num_sentences], ranked[num_sentences:num_sentences + n_val]
    selected = train + held_out
    source_chars = {c for s, _ in selected for c in s}
    target_chars = {c for _, t in selected for c in t} | set(DIGITS)
    if echo_copies:  # echo sequences write the source characters while reading
        target_chars |= source_chars
    marker = (ECHO_START,) if echo_marker and echo_copies else ()
    input_symbols = INPUT_SPECIALS + marker + tuple(sorted(source_chars))
    specials = OUTPUT_SPECIALS + ((EMPTY_OUTPUT,) if reading_fill == "empty" else ())
    output_symbols = specials + tuple(sorted(target_chars))
    input_id = {s: i for i, s in enumerate(input_symbols)}
    output_id = {s: i for i, s in enumerate(output_symbols)}
    details = {
        "pairs_in_files": len(raw),
        "pairs_dropped_empty": len(cleaned) - len(nonempty),
        "pairs_dropped_rare_chars": len(nonempty) - len(usable),
        "rare_characters": "".join(sorted(rare)),
        "train_sentences": len(train),
        "validation_sentences": len(held_out),
        "max_train_source_chars": max(len(s) for s, _ in train),
    }
    return Task(
        name="sentence" if target_path is None else "translate",
        input_symbols=input_symbols, output_symbols=output_symbols,
        input_table=torch.eye(len(input_symbols), dtype=torch.float32),
        train=_encode(train, echo_copies, input_id, output_id, reading_fill, echo_marker),
        validation=_encode(held_out, echo_copies, input_id, output_id, reading_fill,
                           echo_marker),
        details=details)


def encode_inputs(task: Task, text: str, drop_unknown: bool = False) -> list[int]:
    """Reading-phase input ids ``[<start>, chars..., <sep>]`` of a cleaned ``text``."""
    specials = set(INPUT_SPECIALS) | {ECHO_START}
    char_id = {s: i for i, s in enumerate(task.input_symbols) if s not in specials}
    text = clean(text)
    unknown = list(dict.fromkeys(c for c in text if c not in char_id))
    if unknown and not drop_unknown:
        shown = ", ".join(repr(c) for c in unknown[:20])
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise DataError(f"characters not in the task's input vocabulary: {shown}{more}; "
                        "drop_unknown=True removes them")
    ids = [char_id[c] for c in text if c in char_id]
    if not ids:
        raise DataError("text is empty after cleaning and removing unknown characters")
    start, sep = task.input_symbols.index("<start>"), task.input_symbols.index("<sep>")
    return [start, *ids, sep]
