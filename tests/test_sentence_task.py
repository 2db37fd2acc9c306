"""Sentence memorization / translation data (section 4.3) as the paper's code builds it:
layout, character sequences, both directions, cleaning, duplicates, selection, curriculum."""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from mannrl_gym.config import ConfigError, from_mapping
from mannrl_gym.tasks import DataError
from mannrl_gym.tasks.base import Curriculum
from mannrl_gym.tasks.sentence import (
    blank_out,
    CHARACTER,
    INPUT_SPECIALS,
    KIND_NAMES,
    OUTPUT_SPECIALS,
    SENTENCE,
    clean,
    encode_inputs,
    band_counts,
    is_conllu,
    make_task,
    read_aligned,
    read_lines,
    read_sentences,
    replaced_characters,
    sentence_pairs,
    sequence,
)

PUD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pud-en-fr"
EWT = PUD.parent / "ud-english-ewt"


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def decode(task, ids: torch.Tensor, output: bool) -> list[str]:
    symbols = task.output_symbols if output else task.input_symbols
    return [symbols[i] for i in ids.tolist()]


def sequences(task, split: str = "train", kind: int | None = None
              ) -> list[tuple[list[str], list[str]]]:
    """(input symbols, target symbols) of every sequence of a split (of one kind if given)."""
    data = task.split(split)
    return [(decode(task, data.inputs[a:b], False), decode(task, data.targets[a:b], True))
            for (a, b), k in zip(pairwise(data.offsets.tolist()), data.kind.tolist())
            if kind is None or k == kind]


def source_of(inputs: list[str]) -> str:
    return "".join(inputs[1:inputs.index("<sep>")])


def target_of(targets: list[str]) -> str:
    return "".join(targets[targets.index("<sep>") + 1:-1])


def sentences(task, split: str = "train") -> list[tuple[str, str]]:
    return [(source_of(i), target_of(t)) for i, t in sequences(task, split, SENTENCE)]


# --- layout -------------------------------------------------------------------------------

def test_sequence_layout():
    inputs, targets = sequence("Hi.", "Hi.")
    assert inputs == ["<start>", "H", "i", ".", "<sep>"] + ["<empty>"] * 4
    assert targets == ["<start>", "0", "1", "2", "<sep>", "H", "i", ".", "<end>"]


def test_digit_fill_repeats_and_translation_lengths():
    inputs, targets = sequence("abcdefghijkl", "xy")
    assert targets[1:13] == list("012345678901")
    assert len(inputs) == len(targets) == 12 + 2 + 3
    assert targets[-4:] == ["<sep>", "x", "y", "<end>"]
    assert inputs[-3:] == ["<empty>"] * 3


def test_one_character_sequence_per_vocabulary_character_first(tmp_path):
    path = write(tmp_path / "s.txt", ["Hi.", "Hi. Hi. Hi."])
    task = make_task(path, num_sentences=1, val_fraction=0.5, min_char_count=1)
    assert task.name == "sentence" and task.train.kind_names == KIND_NAMES
    characters = (" ", ".", "H", "i")  # of the training and held-out sentences
    assert task.input_symbols == INPUT_SPECIALS + characters
    assert task.output_symbols[:3] == OUTPUT_SPECIALS
    assert set("0123456789 H.i") == set(task.output_symbols[3:])
    assert torch.equal(task.input_table, torch.eye(7))
    assert task.train.kind.tolist() == [CHARACTER] * 4 + [SENTENCE]
    chars = sequences(task, kind=CHARACTER)
    for c, (inputs, targets) in zip(characters, chars):
        assert inputs == ["<start>", c, "<sep>", "<empty>", "<empty>"]
        assert targets == ["<start>", "0", "<sep>", c, "<end>"]
    assert sequences(task, kind=SENTENCE) == [sequence("Hi.", "Hi.")]
    assert len(task.validation) == 1 and task.validation.kind.tolist() == [SENTENCE]
    assert task.details["character_sequences"] == 4
    # a character sequence's writing phase is an answer: the character and <end>
    assert task.train.answer[:5].tolist() == [False, False, False, True, True]


def test_answer_and_long_range_masks(tmp_path):
    short, long = "abc", "abcdefghij"  # 3 and 10 source characters
    path = write(tmp_path / "s.txt", [long, short, long + "j"])
    task = make_task(path, num_sentences=2, val_fraction=0.4, min_char_count=1)
    data = task.train
    first = int(task.details["character_sequences"])
    a, b, c = data.offsets[first:first + 3].tolist()
    assert data.answer[a:b].tolist() == [False] * 5 + [True] * 4  # "abc"
    assert not data.long_range[a:b].any()
    assert data.answer[b:c].tolist() == [False] * 12 + [True] * 11  # "abcdefghij"
    assert torch.equal(data.long_range[b:c], data.answer[b:c])


def test_reading_fill_empty_is_the_papers_text_layout(tmp_path):
    inputs, targets = sequence("Hi.", "Hi.", reading_fill="empty")
    assert targets == ["<start>", "<empty>", "<empty>", "<empty>", "<sep>", "H", "i", ".", "<end>"]
    assert inputs == sequence("Hi.", "Hi.")[0]
    path = write(tmp_path / "s.txt", ["ab", "abc", "abcd"])
    task = make_task(path, num_sentences=2, min_char_count=1, reading_fill="empty")
    assert "<empty>" in task.output_symbols and "0" not in task.output_symbols
    assert sequences(task, kind=CHARACTER)[0][1] == ["<start>", "<empty>", "<sep>", "a", "<end>"]
    assert "<empty>" not in make_task(path, num_sentences=2, min_char_count=1).output_symbols


# --- translation: both directions, one vocabulary, duplicates ------------------------------

def test_translation_trains_both_directions_over_one_vocabulary(tmp_path):
    en = write(tmp_path / "en", ["a", "aa", "b"])
    fr = write(tmp_path / "fr", ["bbbb", "x", "ab"])
    task = make_task(en, fr, num_sentences=2, val_fraction=0.3, min_char_count=1)
    assert task.name == "translate"
    assert sentences(task) == [("aa", "x"), ("x", "aa"), ("b", "ab"), ("ab", "b")]
    assert sentences(task, "validation") == [("a", "bbbb"), ("bbbb", "a")]
    assert task.input_symbols[3:] == ("a", "b", "x") == task.output_symbols[-3:]
    assert task.details["train_sentences"] == 2 and task.details["train_pairs"] == 4
    assert [source_of(i) for i, _ in sequences(task, kind=CHARACTER)] == ["a", "b", "x"]


def test_memorization_has_one_direction_and_drops_duplicate_lines(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "ba", "ab", "ab  ", "abb", "bba"])
    task = make_task(path, num_sentences=2, val_fraction=0.5, min_char_count=1)
    assert sentences(task) == [("ab", "ab"), ("ba", "ba")]
    assert sentences(task, "validation") == [("abb", "abb")]
    assert task.details["pairs_dropped_duplicate"] == 2  # "ab" again, and "ab  " once cleaned


def test_translation_drops_duplicate_pairs_and_identical_directions(tmp_path):
    en = write(tmp_path / "en", ["ok", "hi", "ok", "ok", "yes sir"])
    fr = write(tmp_path / "fr", ["ok", "salut", "ok", "oui", "oui monsieur"])
    task = make_task(en, fr, num_sentences=3, val_fraction=0.3, min_char_count=1)
    # ("ok", "ok") once, in one direction; ("ok", "oui") is another pair and stays
    assert sentences(task) == [("ok", "ok"), ("ok", "oui"), ("oui", "ok"), ("hi", "salut"),
                               ("salut", "hi")]
    assert task.details["pairs_dropped_duplicate"] == 1


# --- cleaning -------------------------------------------------------------------------------

def test_clean_replaces_the_named_entities_and_collapses_whitespace():
    assert clean("&amp;quot;Hi&amp;quot;&#160;&nbsp;x") == '"Hi" x'
    assert clean("a &lt;b&gt;") == "a &lt;b&gt;"  # only the entities the reference names
    assert clean("  a\t\tb\u00a0\u202fc  \n") == "a b c"
    assert clean("e\u0301t\u00e9") == "\u00e9t\u00e9"  # NFC


def test_rare_characters_and_cjk_become_a_space(tmp_path):
    assert replaced_characters(["aaz", "a\u4e2d" * 9], 8) == {"z", "\u4e2d"}
    lines = ["ab zab", "ba\u4e2db", "aab"] + ["abab"] * 3
    path = write(tmp_path / "s.txt", lines)
    task = make_task(path, num_sentences=2, val_fraction=0.9, min_char_count=2)
    assert "z" not in task.input_symbols and "\u4e2d" not in task.input_symbols
    assert task.details["replaced_characters"] == "z\u4e2d"  # a space is never replaced
    kept = {s for s, _ in sentences(task) + sentences(task, "validation")}
    assert kept == {"aab", "ba b", "abab", "ab ab"}  # the space runs collapse
    # the threshold is a key: with 1 nothing but the ideograph is replaced
    assert make_task(path, num_sentences=2, min_char_count=1).details["replaced_characters"] \
        == "\u4e2d"


def test_rare_characters_in_translation_count_both_sides(tmp_path):
    en = write(tmp_path / "en", ["ab", "az", "ba", "ab"])
    fr = write(tmp_path / "fr", ["ab", "az", "ba", "bq"])  # z twice (kept), q once (replaced)
    task = make_task(en, fr, num_sentences=2, val_fraction=0.4, min_char_count=2)
    assert task.details["replaced_characters"] == "q"
    assert "z" in task.input_symbols and "q" not in task.output_symbols


def test_lines_empty_after_cleaning_are_dropped(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "", "zz", "ba", "  ", "aab"])
    task = make_task(path, num_sentences=2, val_fraction=0.4, min_char_count=3)
    assert task.details["pairs_dropped_empty"] == 3 and task.details["pairs_in_files"] == 6
    assert {s for s, _ in sentences(task) + sentences(task, "validation")} == {"ab", "ba", "aab"}


# --- selection and curriculum --------------------------------------------------------------

def test_shortest_first_ties_in_file_order_validation_next(tmp_path):
    lines = ["aaaa", "ba", "ab", "abb", "bb", "aaab", "bbbbb", "aa"]
    path = write(tmp_path / "s.txt", lines)
    task = make_task(path, num_sentences=4, val_fraction=0.5, min_char_count=1)
    assert [s for s, _ in sentences(task)] == ["ba", "ab", "bb", "aa"]
    assert [s for s, _ in sentences(task, "validation")] == ["abb", "aaaa"]
    assert task.details["train_sentences"] == 4 and task.details["validation_pairs"] == 2
    assert task.details["max_train_source_chars"] == 2
    assert task.curriculum is None and task.train_size_at(10**6) == len(task.train)


def test_curriculum_adds_a_chunk_every_n_epochs(tmp_path):
    lines = ["a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg"]
    path = write(tmp_path / "s.txt", lines)
    task = make_task(path, num_sentences=6, val_fraction=0.1, min_char_count=1,
                     curriculum_every=3, curriculum_chunk=4)
    characters = task.details["character_sequences"]  # a b c d e f g
    assert characters == 7 and task.curriculum == Curriculum((7 + 4, 7 + 6), 3)
    assert [task.train_size_at(e) for e in range(8)] == [11, 11, 11, 13, 13, 13, 13, 13]
    first = task.split_at("train", 2)
    assert first.kind.tolist() == [CHARACTER] * 7 + [SENTENCE] * 4
    assert torch.equal(first.inputs, task.train.inputs[:int(task.train.offsets[11])])
    assert task.split_at("train", 3) is task.train and task.split_at("train", None) is task.train
    assert task.split_at("validation", 0) is task.validation
    assert task.details["curriculum_stages"] == [11, 13]


def test_curriculum_chunk_zero_or_every_zero_is_a_config_error():
    base = {"task": "translate", "data_path": "en", "target_path": "fr", "num_sentences": 10,
            "curriculum_every": 5}
    from_mapping({**base, "curriculum_chunk": 21})  # beyond the 20 pairs: one chunk
    with pytest.raises(ConfigError, match=r"key 'curriculum_chunk' must be >= 1, got 0"):
        from_mapping({**base, "curriculum_chunk": 0})
    with pytest.raises(ConfigError, match=r"key 'curriculum_every' must be >= 1"):
        from_mapping({**base, "curriculum_every": 0})
    with pytest.raises(ConfigError, match=r"key 'curriculum_every' is only read"):
        from_mapping({"task": "logic", "curriculum_every": 5})


def test_a_curriculum_chunk_holding_every_pair_is_one_chunk_and_says_so(tmp_path):
    """A tiny run of a shipped config (chunks of 500) needs no curriculum_chunk of its own:
    a chunk larger than the training pairs holds them all, from the first epoch."""
    path = write(tmp_path / "s.txt", ["ab", "ba", "ab", "ab", "abb"])  # 3 distinct
    task = make_task(path, num_sentences=2, min_char_count=1, curriculum_every=1,
                     curriculum_chunk=500)
    assert task.curriculum.sizes == (len(task.train),)
    assert task.split_at("train", 0) is task.train or len(task.split_at("train", 0)) == \
        len(task.train)
    assert task.details["selected"].endswith("; curriculum: one chunk (curriculum_chunk=500, "
                                             "2 training sequences), all from the first epoch")
    two = make_task(path, num_sentences=2, min_char_count=1, curriculum_every=1,
                    curriculum_chunk=1)
    assert len(two.curriculum.sizes) == 2 and "curriculum" not in two.details["selected"]


def test_removed_echo_keys_say_why():
    for key in ("echo_copies", "echo_marker"):
        with pytest.raises(ConfigError, match=rf"key '{key}' was removed: .*"):
            from_mapping({"task": "sentence", "data_path": "x", key: True})


def test_too_few_usable_pairs_and_bad_arguments(tmp_path):
    path = write(tmp_path / "s.txt", ["ab", "ba", "ab"])
    with pytest.raises(DataError, match=r"only 2 usable .*smaller num_sentences"):
        make_task(path, num_sentences=2, min_char_count=1)
    for bad in ({"num_sentences": 0}, {"val_fraction": 1.0}, {"val_fraction": 0},
                {"min_char_count": 0}, {"reading_fill": "dots"}, {"curriculum_chunk": 0},
                {"curriculum_every": 0}):
        with pytest.raises(ValueError):
            make_task(path, **bad)


def test_length_band_then_the_shortest_in_it(tmp_path):
    lines = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg", "hhhhhhhh"]
    path = write(tmp_path / "s.txt", lines)
    task = make_task(path, num_sentences=2, val_fraction=0.5, min_char_count=1, min_chars=3,
                     max_chars=6)
    assert [s for s, _ in sentences(task)] == ["ccc", "dddd"]
    assert [s for s, _ in sentences(task, "validation")] == ["eeeee"]
    assert task.details["train_source_chars"] == {"min": 3, "mean": 3.5, "max": 4}
    assert task.details["validation_source_chars"] == {"min": 5, "mean": 5.0, "max": 5}
    assert "train 2 sentences, source 3/3.5/4 characters" in task.details["selected"]
    # an open lower bound keeps the shortest; validation stays inside the band
    task = make_task(path, num_sentences=3, val_fraction=0.5, min_char_count=1, max_chars=4)
    assert [s for s, _ in sentences(task)] == ["a", "bb", "ccc"]
    assert [s for s, _ in sentences(task, "validation")] == ["dddd"]


def test_band_is_on_the_source_side_and_target_lengths_are_reported(tmp_path):
    en = write(tmp_path / "s.en", ["ab", "abcdef", "abc", "abcd"])
    fr = write(tmp_path / "s.fr", ["abcdefgh", "ab", "abcd", "abc"])
    task = make_task(en, fr, num_sentences=1, val_fraction=0.5, min_char_count=1,
                     min_chars=3)
    # "abcdef" (8 in all) and "abc"/"abcd" (7 in all) are in the band; the 7s rank first
    assert sentences(task)[0] == ("abc", "abcd")
    assert task.details["train_target_chars"] == {"min": 4, "mean": 4.0, "max": 4}
    assert task.details["validation_source_chars"]["max"] == 4
    assert "target 4/4.0/4" in task.details["selected"]


def test_band_that_selects_too_few_is_a_config_error_with_the_counts(tmp_path):
    lines = ["x" * n for n in (3, 10, 20, 40, 70, 80)]
    path = write(tmp_path / "s.txt", lines)
    assert band_counts([3, 10, 16, 17, 33, 64, 65, 200]) == "<=16: 3, 17-32: 1, 33-64: 2, 65+: 2"
    with pytest.raises(ConfigError) as error:
        make_task(path, num_sentences=1, min_char_count=1, min_chars=100)
    message = str(error.value)
    assert "min_chars=100, max_chars=null select none of its 6 usable" in message
    assert message.endswith("<=16: 2, 17-32: 1, 33-64: 1, 65+: 2") and "\n" not in message
    with pytest.raises(ConfigError, match=r"select only 1 of its 6 .*num_sentences=1 needs 2"):
        make_task(path, num_sentences=1, min_char_count=1, min_chars=40, max_chars=69)


def test_length_band_keys_are_checked():
    base = {"task": "sentence", "data_path": "x"}
    assert from_mapping({**base, "min_chars": 2, "max_chars": 2}).max_chars == 2
    with pytest.raises(ConfigError, match=r"key 'max_chars' must be >= min_chars \(5\)"):
        from_mapping({**base, "min_chars": 5, "max_chars": 4})
    with pytest.raises(ConfigError, match=r"key 'min_chars' must be >= 1"):
        from_mapping({**base, "min_chars": 0})
    with pytest.raises(ConfigError, match=r"key 'max_chars' is only read when task"):
        from_mapping({"task": "logic", "max_chars": 30})
    with pytest.raises(ValueError):
        make_task("unused", min_chars=3, max_chars=2)


# --- reading files ------------------------------------------------------------------------

CONLLU = """# newdoc id = d1
# sent_id = 1
# text = Hi there.
1\tHi\thi\tINTJ\tUH\t_\t0\troot\t0:root\t_
2\tthere\tthere\tADV\tRB\t_\t1\tadvmod\t1:advmod\t_
3\t.\t.\tPUNCT\t.\t_\t1\tpunct\t1:punct\tSpaceAfter=No

# sent_id = 2
# text = Ok.
1-2\tOk.\t_\t_\t_\t_\t_\t_\t_\t_
1\tOk\tok\tINTJ\tUH\t_\t0\troot\t0:root\t_
2\t.\t.\tPUNCT\t.\t_\t1\tpunct\t1:punct\t_

"""


def test_conllu_text_lines_are_the_sentences(tmp_path):
    named = tmp_path / "a.conllu"
    named.write_text(CONLLU, encoding="utf-8")
    unnamed = tmp_path / "a.txt"  # no suffix: told by its content
    unnamed.write_text(CONLLU, encoding="utf-8")
    assert read_sentences(named) == read_sentences(unnamed) == ["Hi there.", "Ok."]
    plain = write(tmp_path / "b.txt", ["# text = not a comment here", "1\tx"])
    assert read_sentences(plain) == ["# text = not a comment here", "1\tx"]
    assert not is_conllu(plain, read_lines(plain))


def test_conllu_without_text_lines_is_a_one_line_data_error(tmp_path):
    path = tmp_path / "notext.conllu"
    path.write_text("\n".join(line for line in CONLLU.splitlines()
                              if not line.startswith("# text")) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"notext.conllu: CoNLL-U without '# text = ' lines "
                                        r"\(2 sentences\)"):
        make_task(str(path), num_sentences=1, min_char_count=1)
    partial = tmp_path / "partial.conllu"
    partial.write_text(CONLLU.replace("# text = Ok.\n", ""), encoding="utf-8")
    with pytest.raises(DataError, match=r"1 of 2 CoNLL-U sentences have no '# text = ' line"):
        read_sentences(partial)


def test_files_joined_with_pathsep_are_read_in_order_each_by_its_kind(tmp_path):
    treebank = tmp_path / "a.conllu"
    treebank.write_text(CONLLU, encoding="utf-8")
    plain = write(tmp_path / "b.txt", ["One more.", "Hi there."])
    joined = f"{treebank}{os.pathsep}{plain}"
    assert read_sentences(joined) == ["Hi there.", "Ok.", "One more.", "Hi there."]
    task = make_task(joined, num_sentences=2, val_fraction=0.5, min_char_count=1)
    assert task.details["pairs_in_files"] == 4  # the repeated "Hi there." dropped after
    with pytest.raises(DataError, match=r"absent.txt: file not found"):
        read_sentences(f"{plain}{os.pathsep}{tmp_path / 'absent.txt'}")


@pytest.mark.skipif(not (EWT / "en_ewt-ud-dev.conllu").is_file(),
                    reason="../shared/data/ud-english-ewt not present")
def test_ewt_dev_and_test_joined_average_nine_characters():
    dev, test = EWT / "en_ewt-ud-dev.conllu", EWT / "en_ewt-ud-test.conllu"
    task = make_task(f"{dev}{os.pathsep}{test}")
    assert task.details["pairs_in_files"] == len(read_sentences(dev)) + len(read_sentences(test))
    assert task.details["train_source_chars"] == {"min": 1, "mean": 8.9, "max": 15}


@pytest.mark.skipif(not (EWT / "en_ewt-ud-dev.conllu").is_file(),
                    reason="../shared/data/ud-english-ewt not present")
def test_ewt_dev_gives_its_text_lines_not_its_token_lines():
    texts = read_sentences(EWT / "en_ewt-ud-dev.conllu")
    assert len(texts) == 2001 and texts[0] == "From the AP comes this story :"
    task = make_task(str(EWT / "en_ewt-ud-dev.conllu"))
    assert task.details["pairs_in_files"] == 2001
    assert task.details["train_source_chars"]["mean"] < 20  # the short ones, not token lines

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
    assert "sentence-aligned" in message and "\n" not in message


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
    task = make_task(path, num_sentences=1, val_fraction=0.5, min_char_count=1)
    ids = encode_inputs(task, " a<  ")
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
    path = write(tmp_path / "s.txt", ["ab", "ba", "ab b"])
    task = make_task(path, num_sentences=1, val_fraction=0.5, min_char_count=1)
    with pytest.raises(DataError) as error:
        encode_inputs(task, "0123456789ABCDEFGHIJKLMNOP")
    message = str(error.value)
    assert "'J'" in message and "'K'" not in message


def test_sentence_pairs_skip_character_sequences(tmp_path):
    en = write(tmp_path / "en", ["a b", "ab", "b a"])
    fr = write(tmp_path / "fr", ["x", "yy", "zzzz"])
    task = make_task(en, fr, num_sentences=2, val_fraction=0.5, min_char_count=1)
    assert sentence_pairs(task, "train", 3) == [("a b", "x"), ("x", "a b"), ("ab", "yy")]
    assert sentence_pairs(task, "validation", 5) == [("b a", "zzzz"), ("zzzz", "b a")]


# --- the project's real data --------------------------------------------------------------

@pytest.fixture(scope="module")
def pud_tasks():
    if not (PUD / "pud.en").is_file() or not (PUD / "pud.fr").is_file():
        pytest.skip(f"Parallel UD English-French not found at {PUD} (../shared/data is "
                    "the project's shared data folder, beside the worktree)")
    return make_task(str(PUD / "pud.en")), make_task(str(PUD / "pud.en"), str(PUD / "pud.fr"))


def test_pud_sizes_and_layout(pud_tasks):
    memorize, translate = pud_tasks
    for task, pairs in ((memorize, 500), (translate, 1000)):
        characters = task.details["character_sequences"]
        assert characters == len(task.input_symbols) - len(INPUT_SPECIALS)
        assert len(task.train) == characters + pairs
        assert len(task.validation) == pairs // 20
        for inputs, targets in sequences(task):
            assert len(inputs) == len(targets)
        end = task.output_symbols.index("<end>")
        assert (task.train.targets[task.train.offsets[1:] - 1] == end).all()
        sentence_lengths = task.train.lengths[task.train.kind == SENTENCE]
        assert int(sentence_lengths.max()) <= int(task.validation.lengths.min())


def test_pud_translation_targets_decode_to_the_aligned_lines(pud_tasks):
    _, task = pud_tasks
    english, french = read_lines(PUD / "pud.en"), read_lines(PUD / "pud.fr")
    replaced = set(task.details["replaced_characters"])
    pairs = {(blank_out(clean(e), replaced), blank_out(clean(f), replaced))
             for e, f in zip(english, french)}
    train = sentences(task)
    assert train[0::2] == [(t, s) for s, t in train[1::2]]  # each pair, then its reverse
    for source, target in train[0::2] + sentences(task, "validation")[0::2]:
        assert (source, target) in pairs


def test_sentences_emptied_by_min_char_count_are_named_as_the_cause(tmp_path):
    """A small file whose every character is rarer than min_char_count: the error says the
    lines became spaces and that a lower min_char_count keeps them."""
    path = tmp_path / "three.txt"
    path.write_text("Hi.\nGo on.\nWho?\n", encoding="utf-8")
    with pytest.raises(DataError, match="3 of them held only characters seen fewer than "
                                        "min_char_count=8"):
        make_task(str(path), num_sentences=2, curriculum_chunk=2)
    assert len(make_task(str(path), num_sentences=2, min_char_count=1).train) > 0
