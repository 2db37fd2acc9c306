"""Sentence memorization and translation, character by character (section 4.3).

Each sequence has a reading phase, where the agent sees a source sentence one character at a
time, and a writing phase, where it is fed ``<empty>`` and must write the target sentence
(the source itself for the ``sentence`` task, its translation for ``translate``) followed by
``<end>``; only the memory can carry the sentence across. Source "Hi.", target "Hi.":

    inputs   <start> H i . <sep> <empty> <empty> <empty> <empty>
    targets  <start> 0 1 2 <sep> H     i     .     <end>

While reading, the target is the repeating digits 0123456789 (a position count, the
reference implementation's target), or with ``reading_fill="empty"`` an ``<empty>`` output
symbol (the paper's text: "a character that represented an empty output").

Besides the sentences, the training split holds one **character sequence** per non-special
vocabulary character c (the paper's "sequences where the input character was reproduced in
the output for every non-special character"): the layout above for the one-character
sentence c, i.e. ``<start> c <sep> <empty> <empty>`` -> ``<start> 0 <sep> c <end>``. Their
kind is ``character``; the sentences' kind is ``sentence``. No two training sequences read
the same inputs and want different targets, so a perfect memory scores 1.0.

Data, as the reference implementation builds it:

* cleaning: the HTML entities ``&#160; &nbsp;`` (a space), ``&amp;`` and ``&quot;`` are
  replaced (in that order, so WMT's ``&amp;quot;`` becomes ``"``), text is NFC normalized
  (ours: a no-op on composed text); characters seen fewer than ``min_char_count`` (8) times
  over the files (both sides for translation) and CJK ideographs become a space; whitespace
  runs collapse to one space and ends are stripped. Pairs with an empty side and duplicate
  pairs are dropped.
* reading: plain text, one sentence a line, or CoNLL-U (suffix ``.conllu``, or a file whose
  leading lines are all ``#`` comments and 10-column token lines): its ``# text = ``
  comments, one sentence each, in file order. A path may name several files joined with
  ``os.pathsep`` (``dev.conllu:test.conllu``), read in that order as if concatenated.
* selection: an optional length band first, ``min_chars <= len(source) <= max_chars``
  (source: the ``data_path`` line, counted in characters after cleaning); then the
  ``num_sentences`` shortest pairs in the band (source plus target characters, which orders
  the sequences by input length; ties in file order) train, validation holds the
  next-shortest ``round(num_sentences * val_fraction)`` (at least one) of the band, slightly
  longer and unseen. Translation trains both directions: each line pair gives a
  source-to-target and a target-to-source sequence, over one shared vocabulary; memorization
  has one direction.
* curriculum (``curriculum_every=N``): the training pairs, in length order, are cut into
  chunks of ``curriculum_chunk``; epochs 0 to N - 1 train the character sequences and the
  first chunk, and every N epochs the next chunk joins (``Task.split_at``). A chunk as large
  as the training pairs holds them all: one chunk, every pair from the first epoch. Without it every
  training sequence trains every epoch.

Answer steps are the writing phase; they are long-range when the first source character lies
more than 10 steps before the first written one (sources of 10 or more characters). Input ids
are one-hot features. The paper used the 500 shortest sentences of WMT14 news-commentary v9.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from pathlib import Path

import torch

from mannrl_gym.config import path_parts, yaml_text
from mannrl_gym.errors import ConfigError, DataError, not_a_file, read_utf8
from mannrl_gym.tasks.base import Curriculum, SequenceSet, Task

INPUT_SPECIALS = ("<start>", "<sep>", "<empty>")
OUTPUT_SPECIALS = ("<start>", "<sep>", "<end>")
EMPTY_OUTPUT = "<empty>"  # an output symbol only with reading_fill="empty"
KIND_NAMES = ("sentence", "character")
SENTENCE, CHARACTER = 0, 1
DIGITS = "0123456789"
LONG_RANGE = 10  # an answer is long-range when its deciding input is more than this far back
ENTITIES = (("&#160;", " "), ("&nbsp;", " "), ("&amp;", "&"), ("&quot;", '"'))
CJK_IDEOGRAPHS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x323AF))

CONLLU_TEXT = re.compile(r"#\s*text\s*=\s?(.*)")  # a sentence's text in CoNLL-U
CONLLU_TOKEN = re.compile(r"[0-9]+(?:[-.][0-9]+)?\t")  # a token line starts with its ID
CONLLU_SNIFF = 100  # leading non-blank lines that decide whether a file is CoNLL-U
LENGTH_BANDS = ((1, 16), (17, 32), (33, 64), (65, None))  # source characters, for error messages

Pair = tuple[str, str]


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 file, split on "\\n" only, trailing "\\r" removed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {not_a_file(path)}")
    lines = read_utf8(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: file is empty")
    return lines


def is_conllu_token(line: str) -> bool:
    """Whether ``line`` is a CoNLL-U token line: an ID, then 9 more tab-separated columns."""
    return CONLLU_TOKEN.match(line) is not None and line.count("\t") == 9


def is_conllu(path: str | Path, lines: list[str]) -> bool:
    """CoNLL-U by suffix ``.conllu``, or by content: the first ``CONLLU_SNIFF`` non-blank lines
    are all ``#`` comments or token lines, and at least one is a token line."""
    if Path(path).suffix.lower() == ".conllu":
        return True
    head = [line for line in lines if line.strip()][:CONLLU_SNIFF]
    return (any(is_conllu_token(line) for line in head)
            and all(line.startswith("#") or is_conllu_token(line) for line in head))


def conllu_texts(path: str | Path, lines: list[str]) -> list[str]:
    """The ``# text = `` comment of every sentence of a CoNLL-U file, in order; DataError
    when a sentence (a blank-line-separated block holding token lines) has none."""
    texts: list[str] = []
    sentences = without_text = 0
    block_text: str | None = None
    has_tokens = False
    for line in [*lines, ""]:  # once per file; the "" closes the last block
        if not line.strip():
            if has_tokens:
                sentences += 1
                if block_text is None:
                    without_text += 1
                else:
                    texts.append(block_text)
            block_text, has_tokens = None, False
            continue
        match = CONLLU_TEXT.fullmatch(line)
        if match and block_text is None:
            block_text = match.group(1)
        has_tokens = has_tokens or is_conllu_token(line)
    if not texts:
        raise DataError(f"{path}: CoNLL-U without '# text = ' lines ({sentences} sentences): "
                        "the sentence tasks read each sentence's text from them")
    if without_text:
        raise DataError(f"{path}: {without_text} of {sentences} CoNLL-U sentences have no "
                        "'# text = ' line: every sentence needs one")
    return texts


def data_files(paths: str | Path) -> list[Path]:
    """The files a ``data_path`` / ``target_path`` value names: one path, or several joined
    with ``os.pathsep`` (``:`` on POSIX, as in ``PATH``)."""
    return [Path(part) for part in path_parts(str(paths))]


def read_sentences(path: str | Path) -> list[str]:
    """One raw sentence per line of a plain-text file, or per ``# text = `` line of a CoNLL-U
    file (see :func:`is_conllu`); several files (see :func:`data_files`) in order, each read
    by its own kind."""
    sentences: list[str] = []
    for file in data_files(path):
        lines = read_lines(file)
        sentences += conllu_texts(file, lines) if is_conllu(file, lines) else lines
    return sentences


def read_aligned(source_path: str | Path, target_path: str | Path | None) -> list[Pair]:
    """Raw (source, target) sentence pairs; without ``target_path`` the target is the source."""
    sources = read_sentences(source_path)
    if target_path is None:
        return [(line, line) for line in sources]
    targets = read_sentences(target_path)
    if len(sources) != len(targets):
        raise DataError(
            f"{source_path} has {len(sources)} lines but {target_path} has {len(targets)}: "
            "the files must be sentence-aligned (line i of one is the translation of line i "
            "of the other)")
    return list(zip(sources, targets))


def clean(text: str) -> str:
    """Replace the named HTML entities, NFC normalize, collapse whitespace runs, strip."""
    for entity, replacement in ENTITIES:
        text = text.replace(entity, replacement)
    return " ".join(unicodedata.normalize("NFC", text).split())


def is_cjk_ideograph(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_IDEOGRAPHS)


def replaced_characters(texts: list[str], min_char_count: int) -> set[str]:
    """Characters the cleaning turns into a space: those seen fewer than ``min_char_count``
    times over ``texts``, and CJK ideographs."""
    counts = Counter(c for text in texts for c in text)
    return {c for c, n in counts.items()
            if c != " " and (n < min_char_count or is_cjk_ideograph(c))}


def blank_out(text: str, characters: set[str]) -> str:
    """``text`` with every character of ``characters`` replaced by a space, then collapsed."""
    if characters.isdisjoint(text):
        return text
    return " ".join("".join(" " if c in characters else c for c in text).split())


def sequence(source: str, target: str, reading_fill: str = "digits"
             ) -> tuple[list[str], list[str]]:
    """(input symbols, target symbols), both of length len(source) + len(target) + 3.

    ``reading_fill``: the target while reading: "digits" (the repeating 0123456789 of the
    reference implementation) or "empty" (an ``<empty>`` output symbol, the paper's text).
    A character sequence is ``sequence(c, c)``.
    """
    if reading_fill == "empty":
        fill = [EMPTY_OUTPUT] * len(source)
    else:
        fill = [DIGITS[i % 10] for i in range(len(source))]
    inputs = ["<start>", *source, "<sep>"] + ["<empty>"] * (len(target) + 1)
    targets = ["<start>", *fill, "<sep>", *target, "<end>"]
    return inputs, targets


def _encode(pairs: list[Pair], kinds: list[int], input_id: dict[str, int],
            output_id: dict[str, int], reading_fill: str) -> SequenceSet:
    """One sequence per (source, target) pair, of category ``kinds[i]``, in order."""
    inputs: list[int] = []
    targets: list[int] = []
    answer: list[bool] = []
    long_range: list[bool] = []
    offsets = [0]
    for source, target in pairs:  # once per run, over the data
        symbols_in, symbols_out = sequence(source, target, reading_fill)
        inputs += [input_id[s] for s in symbols_in]
        targets += [output_id[s] for s in symbols_out]
        reading, writing = len(source) + 2, len(target) + 1
        answer += [False] * reading + [True] * writing
        far = len(source) + 1 > LONG_RANGE
        long_range += [False] * reading + [far] * writing
        offsets.append(offsets[-1] + reading + writing)
    return SequenceSet(
        inputs=torch.tensor(inputs, dtype=torch.int64),
        targets=torch.tensor(targets, dtype=torch.int64),
        offsets=torch.tensor(offsets, dtype=torch.int64),
        answer=torch.tensor(answer, dtype=torch.bool),
        long_range=torch.tensor(long_range, dtype=torch.bool),
        kind=torch.tensor(kinds, dtype=torch.int64), kind_names=KIND_NAMES)


def _check_arguments(num_sentences: int, val_fraction: float, min_char_count: int,
                     reading_fill: str, curriculum_every: int | None,
                     curriculum_chunk: int, min_chars: int | None = None,
                     max_chars: int | None = None) -> None:
    for name, bound in (("min_chars", min_chars), ("max_chars", max_chars)):
        if bound is not None and bound < 1:
            raise ValueError(f"{name} must be >= 1 or None, got {bound}")
    if min_chars is not None and max_chars is not None and max_chars < min_chars:
        raise ValueError(f"max_chars must be >= min_chars ({min_chars}), got {max_chars}")
    if num_sentences < 1:
        raise ValueError(f"num_sentences must be >= 1, got {num_sentences}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if min_char_count < 1:
        raise ValueError(f"min_char_count must be >= 1, got {min_char_count}")
    if reading_fill not in ("digits", "empty"):
        raise ValueError(f"reading_fill must be 'digits' or 'empty', got {reading_fill!r}")
    if curriculum_every is not None and curriculum_every < 1:
        raise ValueError(f"curriculum_every must be >= 1 or None, got {curriculum_every}")
    if curriculum_chunk < 1:
        raise ValueError(f"curriculum_chunk must be >= 1, got {curriculum_chunk}")


def directions(line_pairs: list[Pair], both: bool) -> list[Pair]:
    """Directed pairs in order: each (s, t), followed by (t, s) when ``both``; duplicates
    dropped (first kept)."""
    directed = [p for s, t in line_pairs for p in (((s, t), (t, s)) if both else ((s, t),))]
    return list(dict.fromkeys(directed))


def band_counts(lengths: list[int]) -> str:
    """How many of ``lengths`` fall in each of ``LENGTH_BANDS``: "<=16: 3, 17-32: 5, ..."."""
    parts = []
    for low, high in LENGTH_BANDS:
        count = sum(1 for n in lengths if n >= low and (high is None or n <= high))
        name = f"<={high}" if low == 1 else (f"{low}+" if high is None else f"{low}-{high}")
        parts.append(f"{name}: {count}")
    return ", ".join(parts)


def select(pairs: list[Pair], num_sentences: int, val_fraction: float, min_chars: int | None,
           max_chars: int | None, source_path: str) -> tuple[list[Pair], list[Pair]]:
    """(training, validation) line pairs: those whose source has ``min_chars`` to
    ``max_chars`` characters (either bound None: open), ranked by source plus target
    characters (ties in file order); the first ``num_sentences`` train, the next
    ``round(num_sentences * val_fraction)`` (at least one) validate.

    ConfigError when the band holds fewer than ``num_sentences + 1`` pairs, with the counts
    of ``LENGTH_BANDS`` over ``pairs``.
    """
    banded = [(s, t) for s, t in pairs
              if (min_chars is None or len(s) >= min_chars)
              and (max_chars is None or len(s) <= max_chars)]
    if len(banded) < num_sentences + 1:
        held = "none" if not banded else f"only {len(banded)}"
        raise ConfigError(
            f"{source_path}: min_chars={yaml_text(min_chars)}, max_chars={yaml_text(max_chars)} select "
            f"{held} of its "
            f"{len(pairs)} usable sentences, but num_sentences={num_sentences} needs "
            f"{num_sentences + 1} (one held out); sentences by source characters: "
            f"{band_counts([len(s) for s, _ in pairs])}")
    ranked = sorted(banded, key=lambda pair: len(pair[0]) + len(pair[1]))
    n_val = max(1, round(num_sentences * val_fraction))
    return ranked[:num_sentences], ranked[num_sentences:num_sentences + n_val]


def length_stats(texts: list[str]) -> dict[str, float]:
    """``{"min", "mean", "max"}`` of the texts' lengths in characters (mean to 0.1)."""
    lengths = [len(text) for text in texts]
    return {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1),
            "max": max(lengths)}


def lengths_line(details: dict) -> str:
    """One line of the selected lengths in ``details``: "train 500 sentences, source
    1/8.9/16 characters (min/mean/max); validation 25, source 16/16.0/16"."""
    def side(split: str, name: str) -> str:
        stats = details[f"{split}_{name}_chars"]
        return f"{name} {stats['min']}/{stats['mean']}/{stats['max']}"

    pairs = "train_target_chars" in details
    sides = ("source", "target") if pairs else ("source",)
    train = ", ".join(side("train", name) for name in sides)
    held = ", ".join(side("validation", name) for name in sides)
    count = details["train_sentences"]
    what = (f"sentence pairs ({2 * count} sequences, both directions)" if pairs
            else "sentences")
    return (f"train {count} {what}, {train} characters "
            f"(min/mean/max); validation {details['validation_sentences']}, {held}")


def curriculum_stages(num_characters: int, num_pairs: int, chunk: int) -> tuple[int, ...]:
    """Training-split prefix sizes per stage: the character sequences plus 1, 2, ... chunks."""
    stages = math.ceil(num_pairs / chunk)
    return tuple(num_characters + min(chunk * (k + 1), num_pairs) for k in range(stages))


def make_task(source_path: str, target_path: str | None = None, num_sentences: int = 500,
              val_fraction: float = 0.05, min_char_count: int = 8,
              reading_fill: str = "digits", curriculum_every: int | None = None,
              curriculum_chunk: int = 500, min_chars: int | None = None,
              max_chars: int | None = None) -> Task:
    """The shortest ``num_sentences`` clean pairs whose source has ``min_chars`` to
    ``max_chars`` characters (and the character sequences) for training, the next-shortest
    held out; see the module docstring."""
    _check_arguments(num_sentences, val_fraction, min_char_count, reading_fill,
                     curriculum_every, curriculum_chunk, min_chars, max_chars)
    translate = target_path is not None
    raw = read_aligned(source_path, target_path)
    cleaned = [(clean(s), clean(t)) for s, t in raw]
    texts = [text for s, t in cleaned for text in ((s, t) if translate else (s,))]
    replaced = replaced_characters(texts, min_char_count)
    blanked = [(blank_out(s, replaced), blank_out(t, replaced)) for s, t in cleaned]
    nonempty = [(s, t) for s, t in blanked if s and t]
    unique = list(dict.fromkeys(nonempty))
    if len(unique) < num_sentences + 1:
        emptied = sum(1 for (s, t), (bs, bt) in zip(cleaned, blanked)
                      if s and t and not (bs and bt))
        why = (f"; {emptied} of them held only characters seen fewer than min_char_count="
               f"{min_char_count} times in the file, which become spaces: a lower "
               f"min_char_count keeps them" if emptied else "")
        raise DataError(
            f"{source_path}: only {len(unique)} usable sentence pairs of {len(raw)} lines "
            f"(after dropping empty and duplicate lines{why}), but num_sentences="
            f"{num_sentences} needs at least {num_sentences + 1} (one held out for "
            f"validation): use a smaller num_sentences")
    train_lines, held_lines = select(unique, num_sentences, val_fraction, min_chars, max_chars,
                                     source_path)
    train = directions(train_lines, translate)
    seen = set(train)
    held_out = [pair for pair in directions(held_lines, translate) if pair not in seen]

    characters = sorted({c for s, t in train + held_out for c in s + t})
    input_symbols = INPUT_SPECIALS + tuple(characters)
    if reading_fill == "empty":
        output_symbols = OUTPUT_SPECIALS + (EMPTY_OUTPUT,) + tuple(characters)
    else:
        output_symbols = OUTPUT_SPECIALS + tuple(sorted(set(characters) | set(DIGITS)))
    input_id = {s: i for i, s in enumerate(input_symbols)}
    output_id = {s: i for i, s in enumerate(output_symbols)}
    train_sequences = [(c, c) for c in characters] + train
    train_kinds = [CHARACTER] * len(characters) + [SENTENCE] * len(train)
    curriculum = None
    if curriculum_every is not None:
        curriculum = Curriculum(curriculum_stages(len(characters), len(train), curriculum_chunk),
                                curriculum_every)
    details = {
        "pairs_in_files": len(raw),
        "pairs_dropped_empty": len(blanked) - len(nonempty),
        "pairs_dropped_duplicate": len(nonempty) - len(unique),
        "replaced_characters": "".join(sorted(replaced)),
        "train_sentences": len(train_lines),
        "train_pairs": len(train),
        "character_sequences": len(characters),
        "validation_pairs": len(held_out),
        "max_train_source_chars": max(len(s) for s, _ in train),
        "validation_sentences": len(held_lines),
        "train_source_chars": length_stats([s for s, _ in train_lines]),
        "validation_source_chars": length_stats([s for s, _ in held_lines]),
        "curriculum_stages": list(curriculum.sizes) if curriculum else None,
    }
    if translate:
        details["train_target_chars"] = length_stats([t for _, t in train_lines])
        details["validation_target_chars"] = length_stats([t for _, t in held_lines])
    details["selected"] = lengths_line(details)
    if curriculum is not None and len(curriculum.sizes) == 1:  # a chunk holds them all
        details["selected"] += (f"; curriculum: one chunk (curriculum_chunk={curriculum_chunk},"
                                f" {len(train)} training sequences), all from the first epoch")
    return Task(
        name="translate" if translate else "sentence",
        input_symbols=input_symbols, output_symbols=output_symbols,
        input_table=torch.eye(len(input_symbols), dtype=torch.float32),
        train=_encode(train_sequences, train_kinds, input_id, output_id, reading_fill),
        validation=_encode(held_out, [SENTENCE] * len(held_out), input_id, output_id,
                           reading_fill),
        details=details, curriculum=curriculum)


def sentence_pairs(task: Task, split: str, count: int) -> list[Pair]:
    """The first ``count`` (source, target) sentence pairs of a split, in split order (for
    the train split: the shortest first); character sequences are skipped."""
    data, pairs = task.split(split), []
    for index in (data.kind == SENTENCE).nonzero().squeeze(1)[:count].tolist():
        start, end = int(data.offsets[index]), int(data.offsets[index + 1])
        answer = data.answer[start:end]
        reading = data.inputs[start:end][~answer].tolist()[1:-1]  # between <start> and <sep>
        written = data.targets[start:end][answer].tolist()[:-1]  # before <end>
        pairs.append(("".join(task.input_symbols[i] for i in reading),
                      "".join(task.output_symbols[i] for i in written)))
    return pairs


def encode_inputs(task: Task, text: str, drop_unknown: bool = False) -> list[int]:
    """Reading-phase input ids ``[<start>, chars..., <sep>]`` of a cleaned ``text``."""
    char_id = {s: i for i, s in enumerate(task.input_symbols) if s not in INPUT_SPECIALS}
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

