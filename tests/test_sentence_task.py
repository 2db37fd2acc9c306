"""Sentence memorization / translation data (section 4.3): reading, cleaning, layout, selection."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch

from mannrl_gym.tasks import DataError
from mannrl_gym.tasks.sentence import (
    INPUT_SPECIALS,
    KIND_NAMES,
    OUTPUT_SPECIALS,
    clean,
    encode_inputs,
    make_task,
    read_aligned,
    read_lines,
    sequence,
)

PUD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pud-en-fr"
needs_pud = pytest.mark.skipif(not (PUD / "pud.en").is_file() or not (PUD / "pud.fr").is_file(),
                               reason=f"Parallel UD English-French not found at {PUD}")


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def decode(task, ids: torch.Tensor, output: bool) -> list[str]:
    symbols = task.output_symbols if output else task.input_symbols
    return [symbols[i] for i in ids.tolist()]


def sequences(task, split: str = "train") -> list[tuple[list[str], list[str]]]:
    """(input symbols, target symbols) of every sequence of a split."""
    data = task.split(split)
    bounds = data.offsets.tolist()
    return [(decode(task, data.inputs[a:b], False), decode(task, data.targets[a:b], True))
            for a, b in pairwise(bounds)]


def source_of(inputs: list[str]) -> str:
    return "".join(inputs[1:inputs.index("<sep>")])


def target_of(targets: list[str]) -> str:
    return "".join(targets[targets.index("<sep>") + 1:-1])


# --- layout -------------------------------------------------------------------------------

def test_sequence_layout_of_both_kinds():
    inputs, memorize = sequence("Hi.", "Hi.", echo=False)
    assert inputs == ["<start>", "H", "i", ".", "<sep>"] + ["<empty>"] * 4
    assert memorize == ["<start>", "0", "1", "2", "<sep>", "H", "i", ".", "<end>"]
    inputs_echo, echo = sequence("Hi.", "Hi.", echo=True)
    assert inputs_echo == inputs
    assert echo == ["<start>", "H", "i", ".", "<sep>", "H", "i", ".", "<end>"]


def test_digit_fill_repeats_and_translation_lengths():
    inputs, targets = sequence("abcdefghijkl", "xy", echo=False)
    assert targets[1:13] == list("012345678901")
    assert len(inputs) == len(targets) == 12 + 2 + 3
    assert targets[-4:] == ["<sep>", "x", "y", "<end>"]
    assert inputs[-3:] == ["<empty>"] * 3


def test_task_layout_vocabularies_and_kinds(tmp_path):
    path = write(tmp_path / "s.txt", ["Hi.", "Hi. Hi. Hi."])
    task = make_task(path, num_sentences=1, val_fraction=0.5)
    assert task.name == "sentence"
    assert task.input_symbols == INPUT_SPECIALS + (" ", ".", "H", "i")
    assert task.output_symbols[:3] == OUTPUT_SPECIALS
    assert set("0123456789H.i") <= set(task.output_symbols)
    assert torch.equal(task.input_table, torch.eye(7))
    assert task.train.kind.tolist() == [0, 1] and task.train.kind_names == KIND_NAMES
    (in0, out0), (in1, out1) = sequences(task)
    assert (in0, out0) == sequence("Hi.", "Hi.", echo=False)
    assert (in1, out1) == sequence("Hi.", "Hi.", echo=True)
    assert task.train.inputs.dtype == torch.int64 and task.train.offsets.tolist() == [0, 9, 18]


def test_without_echo_copies_only_memorize_sequences(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "ab", "ba", "ba"])
    task = make_task(path, num_sentences=2, echo_copies=False, val_fraction=0.5)
    assert task.train.kind.tolist() == [0, 0] and task.train.kind_names == KIND_NAMES
    assert len(task.validation) == 1


def test_answer_and_long_range_masks(tmp_path):
    short, long = "abc", "abcdefghij"  # 3 and 10 source characters
    path = write(tmp_path / "s.txt", [long, short, long])
    task = make_task(path, num_sentences=2, echo_copies=False, val_fraction=0.4)
    data = task.train
    first = slice(0, 9)  # "abc": 5 reading steps, 4 writing steps
    assert data.answer[first].tolist() == [False] * 5 + [True] * 4
    assert not data.long_range[first].any()
    second = slice(int(data.offsets[1]), int(data.offsets[2]))  # "abcdefghij": 12 + 11
    assert data.answer[second].tolist() == [False] * 12 + [True] * 11
    assert torch.equal(data.long_range[second], data.answer[second])


# --- selection ----------------------------------------------------------------------------

def test_shortest_first_ties_in_file_order_validation_next(tmp_path):
    lines = ["aaaa", "ba", "ab", "abb", "bb", "aaab", "bbbbb", "ab"]
    path = write(tmp_path / "s.txt", lines)
    task = make_task(path, num_sentences=4, val_fraction=0.5)
    memorize = [source_of(i) for (i, _), k in zip(sequences(task), task.train.kind) if k == 0]
    assert memorize == ["ba", "ab", "bb", "ab"]
    held = [source_of(i) for (i, _), k in zip(sequences(task, "validation"),
                                                task.validation.kind) if k == 0]
    assert held == ["abb", "aaaa"]
    assert task.details["train_sentences"] == 4 and task.details["validation_sentences"] == 2
    assert task.details["max_train_source_chars"] == 2


def test_translation_sorts_by_both_sides(tmp_path):
    en = write(tmp_path / "en", ["a", "aa", "b"])
    fr = write(tmp_path / "fr", ["bbbb", "b", "ab"])
    task = make_task(en, fr, num_sentences=2, val_fraction=0.3)
    assert task.name == "translate"
    pairs = [(source_of(i), target_of(t)) for i, t in sequences(task)[:2]]
    assert pairs == [("aa", "b"), ("b", "ab")]
    assert [source_of(i) for i, _ in sequences(task, "validation")] == ["a", "a"]


def test_pairs_with_rare_characters_or_an_empty_side_are_dropped(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "", "abz", "ba", "  ", "aab"])
    task = make_task(path, num_sentences=2, val_fraction=0.4)
    assert "z" not in task.input_symbols
    kept = [source_of(i) for i, _ in sequences(task) + sequences(task, "validation")]
    assert "abz" not in kept and set(kept) == {"ab", "ba", "aab"}
    assert task.details["rare_characters"] == "z"
    assert task.details["pairs_dropped_rare_chars"] == 1
    assert task.details["pairs_dropped_empty"] == 2 and task.details["pairs_in_files"] == 6


def test_rare_characters_in_translation_count_both_sides(tmp_path):
    en = write(tmp_path / "en", ["ab", "az", "ba", "ab"])
    fr = write(tmp_path / "fr", ["ab", "az", "ba", "bq"])  # z twice (kept), q once (dropped)
    task = make_task(en, fr, num_sentences=2, val_fraction=0.4)
    assert task.details["rare_characters"] == "q"
    assert "z" in task.input_symbols and "q" not in task.output_symbols


def test_too_few_usable_pairs_and_bad_arguments(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "ba", "abz"])
    with pytest.raises(DataError, match=r"only 2 usable .*smaller num_sentences"):
        make_task(path, num_sentences=2)
    for bad in ({"num_sentences": 0}, {"val_fraction": 1.0}, {"val_fraction": 0},
                {"min_char_count": 0}):
        with pytest.raises(ValueError):
            make_task(path, **bad)


# --- cleaning and reading -----------------------------------------------------------------

def test_clean_unescapes_normalizes_and_collapses_whitespace():
    assert clean("&amp;quot;Hi&amp;quot; &lt;b&gt;") == '"Hi" <b>'
    assert clean("  a\t\tb\u00a0\u202fc  \n") == "a b c"
    assert clean("e\u0301t\u00e9") == "\u00e9t\u00e9"  # NFC
    assert clean("&amp;amp;amp;amp;") == "&amp;"  # at most 3 rounds


def test_make_task_cleans_lines(tmp_path):
    path = write(tmp_path / "s.txt", ["a&amp;b  a", "b &amp; a\tb", "ab\r"])
    task = make_task(path, num_sentences=2, val_fraction=0.4)
    sources = {source_of(i) for i, _ in sequences(task) + sequences(task, "validation")}
    assert sources == {"a&b a", "b & a b", "ab"}


def test_read_lines_splits_on_newline_only(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes("a\u2028b\x1cc\r\nd\n\ne\n".encode("utf-8"))
    assert read_lines(path) == ["a\u2028b\x1cc", "d", "", "e"]


def test_read_aligned_without_target_duplicates_source(tmp_path):
    path = write(tmp_path / "s.txt", ["x", "y"])
    assert read_aligned(path, None) == [("x", "x"), ("y", "y")]


def test_unequal_line_counts_error(tmp_path):
    en = write(tmp_path / "pud.en", ["a", "b", "c"])
    fr = write(tmp_path / "pud.fr", ["a", "b"])
    with pytest.raises(DataError) as error:
        read_aligned(en, fr)
    message = str(error.value)
    assert f"{en} has 3 lines but {fr} has 2" in message
    assert "sentence-aligned" in message


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\t\n")
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        read_lines(empty)
    with pytest.raises(DataError, match="absent.txt: file not found"):
        make_task(str(tmp_path / "absent.txt"))
    source = write(tmp_path / "en", ["a", "b"])
    with pytest.raises(DataError, match="nope.fr: file not found"):
        read_aligned(source, str(tmp_path / "nope.fr"))


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\nfine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt:3: not valid UTF-8"):
        read_lines(path)


# --- prediction inputs --------------------------------------------------------------------

def test_encode_inputs_unknown_characters(tmp_path):
    path = write(tmp_path / "s.txt", ["ab<", "ba<", "ab"])
    task = make_task(path, num_sentences=1, val_fraction=0.5)
    ids = encode_inputs(task, " a&lt;  ")
    assert [task.input_symbols[i] for i in ids] == ["<start>", "a", "<", "<sep>"]
    with pytest.raises(DataError, match=r"'x', 'y'.*drop_unknown=True") as error:
        encode_inputs(task, "axyxb")
    assert str(error.value).count("'x'") == 1
    assert encode_inputs(task, "axyb", drop_unknown=True) == encode_inputs(task, "ab")
    with pytest.raises(DataError, match="empty"):
        encode_inputs(task, "xy", drop_unknown=True)
    with pytest.raises(DataError, match="empty"):
        encode_inputs(task, " \t")


def test_encode_inputs_lists_at_most_20_unknown(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "ba", "ab"])
    task = make_task(path, num_sentences=1, val_fraction=0.5)
    with pytest.raises(DataError) as error:
        encode_inputs(task, "0123456789ABCDEFGHIJKLMNOP")
    message = str(error.value)
    assert "'J'" in message and "'K'" not in message


# --- the project's real data --------------------------------------------------------------

@pytest.fixture(scope="module")
def pud_tasks():
    if not (PUD / "pud.en").is_file() or not (PUD / "pud.fr").is_file():
        pytest.skip(f"Parallel UD English-French not found at {PUD}")
    return make_task(str(PUD / "pud.en")), make_task(str(PUD / "pud.en"), str(PUD / "pud.fr"))


@needs_pud
def test_pud_sizes_and_layout(pud_tasks):
    for task in pud_tasks:
        assert task.details["train_sentences"] == 500
        assert task.details["validation_sentences"] == 25
        assert len(task.train) == 1000 and len(task.validation) == 50
        assert task.train.kind.tolist() == [0] * 500 + [1] * 500
        for inputs, targets in sequences(task):
            assert len(inputs) == len(targets)
        end = task.output_symbols.index("<end>")
        last = task.train.targets[task.train.offsets[1:] - 1]
        assert (last == end).all()
        assert int(task.train.lengths.max()) <= int(task.validation.lengths.min())


@needs_pud
def test_pud_translation_targets_decode_to_the_french_lines(pud_tasks):
    _, task = pud_tasks
    english = read_lines(PUD / "pud.en")
    french = read_lines(PUD / "pud.fr")
    pairs = {(clean(e), clean(f)) for e, f in zip(english, french)}
    for inputs, targets in sequences(task)[:500] + sequences(task, "validation")[:25]:
        assert (source_of(inputs), target_of(targets)) in pairs


def test_reading_fill_empty_is_the_papers_text_layout(tmp_path):
    inputs, targets = sequence("Hi.", "Hi.", echo=False, reading_fill="empty")
    assert targets == ["<start>", "<empty>", "<empty>", "<empty>", "<sep>", "H", "i", ".", "<end>"]
    assert inputs == sequence("Hi.", "Hi.", echo=False)[0]
    assert sequence("Hi.", "Hi.", echo=True, reading_fill="empty") == sequence("Hi.", "Hi.", echo=True)
    path = tmp_path / "s.txt"
    path.write_text("ab\nabc\nabcd\n", encoding="utf-8")
    task = make_task(str(path), num_sentences=2, min_char_count=1, reading_fill="empty")
    assert "<empty>" in task.output_symbols
    assert "<empty>" not in make_task(str(path), num_sentences=2, min_char_count=1).output_symbols


def test_echo_marker_starts_echo_copies_with_their_own_input(tmp_path):
    inputs, targets = sequence("Hi.", "Hi.", echo=True, echo_marker=True)
    assert inputs[0] == "<echo>" and targets == sequence("Hi.", "Hi.", echo=True)[1]
    assert sequence("Hi.", "Hi.", echo=False, echo_marker=True) == sequence("Hi.", "Hi.", echo=False)
    path = tmp_path / "s.txt"
    path.write_text("ab\nabc\nabcd\n", encoding="utf-8")
    task = make_task(str(path), num_sentences=2, min_char_count=1, echo_marker=True)
    echo_id = task.input_symbols.index("<echo>")
    first = task.train.inputs[task.train.offsets[:-1]]
    assert first.tolist() == [0, 0, echo_id, echo_id]  # memorize twice, then echo twice
    assert echo_id not in encode_inputs(task, "ab")
