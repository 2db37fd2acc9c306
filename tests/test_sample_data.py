"""The sample shipped in the package (data=sample, env ids without data_path), the one-line
errors for missing data files, and Logic's default held-out split (issue 23)."""

from __future__ import annotations

import importlib.util

import gymnasium
import pytest
import torch

import mannrl_gym  # noqa: F401  (registers the env ids)
from mannrl_gym import cli
from mannrl_gym.config import ConfigError, from_mapping, load
from mannrl_gym.presets import ENV_PRESETS
from mannrl_gym.samples import sample_folder
from mannrl_gym.tasks import build_task, logic

from conftest import ROOT

CONFIGS = ["logic.yaml", "pos.yaml", "sentence.yaml", "translate.yaml"]
FAST = {"logic.yaml": ["num_sequences=300"],  # the real files, made small enough for a test
        "pos.yaml": ["memory_size=32"],
        "sentence.yaml": ["num_sentences=40", "curriculum_every=null", "memory_size=64",
                          "hidden_size=32"],
        "translate.yaml": ["num_sentences=20", "curriculum_every=null", "memory_size=64",
                           "hidden_size=32"]}


def test_build_writes_exactly_the_shipped_files(tmp_path):
    spec = importlib.util.spec_from_file_location("build", sample_folder() / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    written = build.build(tmp_path)
    assert len(written) == 6
    for name in written:
        assert (tmp_path / name).read_bytes() == (sample_folder() / name).read_bytes(), name
    assert "MIT" in (sample_folder() / "README.md").read_text()


def test_the_pos_sample_has_ambiguous_words_and_vectors_for_every_word():
    task = build_task(load(ROOT / "configs/pos.yaml", {"data": "sample"}))
    assert not task.unknown_words  # every word has a row in vectors-16d.txt
    assert {"NN", "NNS", "VBZ", "VBP", "VBD", "DT", "JJ", "PRP", "IN", "."} == set(
        task.output_symbols)
    assert len(task.train) == 400 and len(task.validation) == 100
    assert 0 < task.train.answer.float().mean() < 0.5  # words seen with two tags


def test_data_sample_sets_the_path_keys_to_the_package(tmp_path):
    config = load(ROOT / "configs/translate.yaml", {"data": "sample"})
    assert config.data_path.startswith(str(sample_folder()))
    assert config.target_path.endswith("sentences.fr") and config.vectors_path is None


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_trains_an_epoch_on_the_sample(tmp_path, name, capsys):
    code = cli.main(["train", str(ROOT / "configs" / name), "data=sample", "epochs=1",
                     "eval_batch_size=64", "wandb_mode=disabled", "progress=false",
                     f"out_dir={tmp_path}", "run_name=r", *FAST[name]])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "r" / "checkpoint.pt").exists()


@pytest.mark.parametrize("key, says", [
    ("data_path", "universaldependencies.org"), ("val_path", "universaldependencies.org"),
    ("vectors_path", "`mannrl vectors configs/pos.yaml`")])
def test_a_missing_data_file_says_where_the_data_comes_from_in_one_line(
        tmp_path, capsys, monkeypatch, key, says):
    monkeypatch.chdir(ROOT)
    paths = {"data_path": sample_folder() / "pos-train.conllu",
             "val_path": sample_folder() / "pos-val.conllu",
             "vectors_path": sample_folder() / "vectors-16d.txt", key: f"missing/{key}"}
    code = cli.main(["train", "configs/pos.yaml", *[f"{k}={v}" for k, v in paths.items()],
                     f"out_dir={tmp_path}", "wandb_mode=disabled"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"key '{key}': missing/{key}: file not found (looked for {ROOT / 'missing' / key}" in err and says in err
    assert "data=sample" in err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("env_id", list(ENV_PRESETS))
def test_every_env_id_steps_without_data(env_id):
    needs_files = env_id != "MannRL-Logic-v0"
    kwargs = {"num_sequences": 300} if not needs_files else {}
    if needs_files:
        with pytest.warns(UserWarning, match="sample shipped with mannrl-gym"):
            env = gymnasium.make(env_id, **kwargs)
    else:
        env = gymnasium.make(env_id, **kwargs)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert -10 <= reward <= 0 and "loss" in info


def test_an_env_given_a_data_path_reads_it_and_not_the_sample(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text('{"input": ["x", "?"], "target": ["-", "x"]}\n'
                    '{"input": ["y", "?"], "target": ["-", "y"]}\n' * 5)
    env = gymnasium.make("MannRL-Symbolic-v0", data_path=str(data), holdout="random")
    assert set(env.unwrapped.task.input_symbols) == {"x", "y", "?"}


# --- Logic's held-out split ------------------------------------------------------------------
def _distinct(data) -> set[tuple[int, ...]]:
    offsets = data.offsets.tolist()
    return {tuple(data.inputs[a:b].tolist()) for a, b in zip(offsets[:-1], offsets[1:])}


def test_the_default_logic_split_holds_out_100_distinct_unseen_sequences():
    config = load(ROOT / "configs/logic.yaml")
    assert config.holdout == "distinct" and config.holdout_distinct is None
    task = build_task(config)
    held = _distinct(task.validation)
    assert len(task.validation) == len(held) == 100  # one copy each
    assert not held & _distinct(task.train)
    explicit = logic.make_task(10000, seed=0, holdout_distinct=100)  # the README's Logic table
    assert torch.equal(explicit.validation.inputs, task.validation.inputs)


def test_the_earlier_and_the_reference_splits_stay_switches():
    earlier = build_task(from_mapping({"holdout_distinct": 0}))
    assert (len(earlier.validation), len(_distinct(earlier.validation))) == (534, 17)
    reference = build_task(from_mapping({"holdout": "random"}))
    assert len(reference.validation) == 500  # the paper's plain 5%
    assert len(_distinct(reference.validation) - _distinct(reference.train)) < 10


@pytest.mark.parametrize("draws, held", [(20, 3), (100, 11), (300, 28), (1000, 65)])
def test_fewer_draws_hold_out_a_quarter_of_their_distinct_sequences(draws, held):
    task = logic.make_task(draws, seed=0)
    assert len(task.validation) == len(_distinct(task.validation)) == held
    assert len(task.train) > 0


def test_holdout_distinct_where_it_does_not_apply_is_still_refused():
    with pytest.raises(ConfigError, match="key 'holdout_distinct'.*holdout: distinct"):
        from_mapping({"holdout": "random", "holdout_distinct": 100})
    from_mapping({"holdout": "random"})  # the default (null) applies nowhere else: accepted
    from_mapping({"task": "jsonl", "data": "sample"})


def test_a_run_saved_before_the_key_existed_keeps_its_split(tmp_path):
    from mannrl_gym.rundir import load_run_config

    (tmp_path / "config.yaml").write_text("task: logic\nnum_sequences: 300\n")  # no such key yet
    assert load_run_config(tmp_path).holdout_distinct == 0  # what it ran with: by val_fraction
    (tmp_path / "config.yaml").write_text("task: logic\nholdout_distinct: null\n")
    assert load_run_config(tmp_path).holdout_distinct is None
