"""Part-of-speech tagging on CoNLL-U treebanks (section 4.2, Table 2).

Sentences are read with the ``conllu`` library (multi-word token lines and empty nodes are
skipped); the tag column is XPOS (the Penn Treebank tags the paper used) or UPOS. The paper's
rule: a sentence not ending in . ! ? gets a final "." token tagged "." (XPOS) or "PUNCT" (UPOS).
Inputs are word ids whose features are pretrained word vectors (``mannrl_gym.vectors``).
Answer steps are the words seen with more than one tag in the training split: there the
context, hence the memory, decides the tag.
"""

from __future__ import annotations

from pathlib import Path

import conllu
import numpy as np
import torch

from mannrl_gym.tasks.base import SequenceSet, Task
from mannrl_gym.errors import DataError, not_a_file, read_utf8
from mannrl_gym.vectors import load_vectors

END_PUNCTUATION = {".", "!", "?"}


def _check_lines(path: Path, text: str) -> None:
    """Reject malformed token lines before parsing: the message names the file and line."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        columns = line.split("\t")
        if len(columns) != 10:
            raise DataError(f"{path}:{line_no}: expected 10 tab-separated CoNLL-U columns, "
                            f"found {len(columns)}")
        if not columns[0].replace("-", "").replace(".", "").isdigit():
            raise DataError(f"{path}:{line_no}: token id {columns[0]!r} is not a number")


def read_conllu(path: str | Path, tag_column: str = "xpos") -> list[tuple[list[str], list[str]]]:
    """(words, tags) per sentence, with the paper's final-"." rule applied."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {not_a_file(path, 'treebank file')}")
    text = read_utf8(path)
    _check_lines(path, text)
    end_tag = "." if tag_column == "xpos" else "PUNCT"
    sentences = []
    for sentence in conllu.parse(text):
        tokens = [t for t in sentence if isinstance(t["id"], int)]
        words = [t["form"] for t in tokens]
        tags = [t[tag_column] or "_" for t in tokens]
        if not words:
            continue
        if words[-1] not in END_PUNCTUATION:
            words.append(".")
            tags.append(end_tag)
        sentences.append((words, tags))
    if not sentences:
        raise DataError(f"{path}: no sentences in file")
    return sentences


def _encode(sentences, word_id, tag_id, ambiguous: set[str]) -> SequenceSet:
    words = [w for s, _ in sentences for w in s]
    tags = [t for _, s in sentences for t in s]
    lengths = torch.tensor([len(s) for s, _ in sentences])
    return SequenceSet(
        inputs=torch.tensor([word_id[w] for w in words]),
        targets=torch.tensor([tag_id[t] for t in tags]),
        offsets=torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]),
        answer=torch.tensor([w in ambiguous for w in words]),
        long_range=torch.zeros(len(words), dtype=torch.bool),
        kind=torch.zeros(len(sentences), dtype=torch.int64), kind_names=("all",))


def make_task(data_path: str, val_path: str, vectors_path: str | None, tag_column: str = "xpos",
              cache_dir: str | None = None) -> Task:
    """Train on ``data_path``, hold out ``val_path``; inputs embedded with ``vectors_path``
    (None: no vectors, every input feature 0, for agents that never read them)."""
    train = read_conllu(data_path, tag_column)
    held_out = read_conllu(val_path, tag_column)
    vocabulary = sorted({w for s, _ in train + held_out for w in s})
    tagset = sorted({t for _, s in train + held_out for t in s})
    if vectors_path is None:
        table, missing = np.zeros((len(vocabulary), 1), np.float32), []
    else:
        table, missing = load_vectors(vectors_path, vocabulary, cache_dir)
    word_id = {w: i for i, w in enumerate(vocabulary)}
    tag_id = {t: i for i, t in enumerate(tagset)}
    seen: dict[str, set] = {}
    for words, tags in train:
        for w, t in zip(words, tags):
            seen.setdefault(w, set()).add(t)
    ambiguous = {w for w, t in seen.items() if len(t) > 1}
    return Task(name="pos", input_symbols=tuple(vocabulary), output_symbols=tuple(tagset),
                input_table=torch.from_numpy(table),
                train=_encode(train, word_id, tag_id, ambiguous),
                validation=_encode(held_out, word_id, tag_id, ambiguous),
                unknown_words=tuple(missing),
                details={"word_vectors": str(vectors_path) if vectors_path else
                         "none (the agent does not read input features)"})
