"""The sentence tasks on the shared env / agent / trainer path: registration, the embedded
networks, the curriculum, exact-sentence metrics, the ceilings, training, decoding and bad
input."""

import json
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
import yaml
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mannrl_gym  # noqa: F401  (registers the ids)
from mannrl_gym.cli import main
from mannrl_gym.config import ConfigError
from mannrl_gym.metrics import summarize
from mannrl_gym.predict import Predictor, writing_limits
from mannrl_gym.tasks.sentence import sentence_pairs
from mannrl_gym.tasks.base import DataError
from mannrl_gym.trainer import train

from conftest import ROOT, SHARED_DATA, small_config

ENGLISH = ["Hi.", "Go on.", "Who?", "I see.", "Be kind.", "It is.", "No way.", "Yes, sir.",
           "Run fast.", "So be it.", "He went.", "Oh no!"]
FRENCH = ["Salut.", "Vas-y.", "Qui ?", "Je vois.", "Sois gentil.", "C'est.", "Pas question.",
          "Oui, monsieur.", "Cours vite.", "Soit.", "Il est parti.", "Oh non !"]
TINY = {"num_sentences": 8, "memory_size": 16, "embed_size": 8, "hidden_layers": 2,
        "hidden_size": 16, "history": 6, "settle": 2, "memory_samples": 4,
        "eval_batch_size": 8, "min_char_count": 1}


@pytest.fixture
def files(tmp_path):
    english, french = tmp_path / "tiny.en", tmp_path / "tiny.fr"
    english.write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    french.write_text("\n".join(FRENCH) + "\n", encoding="utf-8")
    return str(english), str(french)


def sentence_config(files, tmp_path, **changes):
    return small_config(**{"task": "sentence", "data_path": files[0],
                           "out_dir": str(tmp_path / "runs"), **TINY, **changes})


def test_registered_ids_carry_table_3_and_pass_the_checkers(files):
    env = gymnasium.make("MannRL-Sentence-v0", data_path=files[0], **TINY).unwrapped
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)
    spec = gymnasium.spec("MannRL-Translate-v0")
    assert spec.kwargs["memory_size"] == 1024 and spec.kwargs["embed_size"] == 96
    assert spec.kwargs["memory_lr"] == 1e-7 and spec.kwargs["hidden_layers"] == 2
    vec = gymnasium.make_vec("MannRL-Translate-v0", num_envs=4, data_path=files[0],
                             target_path=files[1], **TINY)
    observation, _ = vec.reset(seed=0)
    layout = vec.layout
    assert observation.shape == (4, 16 + layout.input_dim + layout.num_outputs)
    # one-hot characters in, and the net embeds them itself (96 wide in Table 3, 8 here)
    assert np.allclose(observation[:, layout.input].sum(1), 1.0)
    assert vec.learner.net.embed[0].weight.shape == (8, layout.input_dim)
    # both directions over one vocabulary: French is read too, English written too
    assert "Q" in vec.task.input_symbols and "W" in vec.task.output_symbols


def test_translate_needs_an_aligned_target_file(files, tmp_path):
    with pytest.raises(ConfigError, match="target_path"):
        small_config(task="translate", data_path=files[0])
    with pytest.raises(ConfigError, match="only read when task is 'translate'"):
        small_config(task="sentence", data_path=files[0], target_path=files[1])
    short = tmp_path / "short.fr"
    short.write_text("\n".join(FRENCH[:-1]) + "\n", encoding="utf-8")
    config = small_config(task="translate", data_path=files[0], target_path=str(short),
                          out_dir=str(tmp_path / "runs"), **TINY)
    with pytest.raises(DataError, match="has 12 lines but .* has 11"):
        train(config)
    assert not (tmp_path / "runs").exists()  # bad data fails before a run directory is made


def test_wrong_inputs_stop_in_one_line_before_a_run_directory(files, tmp_path, capsys):
    notext = tmp_path / "notext.conllu"
    notext.write_text("# sent_id = 1\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n",
                      encoding="utf-8")
    short = tmp_path / "short.fr"
    short.write_text("\n".join(FRENCH[:-2]) + "\n", encoding="utf-8")
    out = tmp_path / "runs"
    small = ["num_sentences=8", "curriculum_chunk=8", "min_char_count=1"]
    sentence = [str(ROOT / "configs/sentence.yaml"), "wandb_mode=disabled", f"out_dir={out}",
                *small]
    cases = {
        "CoNLL-U without '# text = ' lines": [*sentence, f"data_path={notext}"],
        "min_chars=50, max_chars=null select none of its 12 usable sentences": [
            *sentence, f"data_path={files[0]}", "min_chars=50"],
        f"has 12 lines but {short} has 10": [
            str(ROOT / "configs/translate.yaml"), "wandb_mode=disabled", f"out_dir={out}",
            f"data_path={files[0]}", f"target_path={short}", "num_sentences=8",
            "curriculum_chunk=8"],
    }
    for expected, argv in cases.items():
        code = main(["train", *argv])
        err = capsys.readouterr().err
        assert code == 2 and expected in err and err.count("\n") == 1, err
    assert not out.exists()


def test_cli_names_an_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.en"
    empty.write_text("\n\n", encoding="utf-8")
    code = main(["train", str(ROOT / "configs/sentence.yaml"), f"data_path={empty}", "wandb_mode=disabled"])
    assert code == 2 and "empty.en: file is empty" in capsys.readouterr().err


def test_exact_sentence_share_counts_whole_sequences():
    # two sequences of 3 answer steps each: the first all right, the second one wrong
    target = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    prediction = torch.tensor([9, 1, 2, 3, 0, 1, 9, 3])
    answer = torch.tensor([False, True, True, True, False, True, True, True])
    sequence = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    kind = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    metrics = summarize(prediction, target, answer, answer, kind, torch.zeros(8), 10,
                        ("sentence", "character"), sequence)
    assert metrics["answer_exact"] == 0.5
    assert metrics["answer_exact_sentence"] == 1.0 and metrics["answer_exact_character"] == 0.0
    assert metrics["answer_acc"] == 5 / 6


def test_training_reports_writing_phase_metrics_and_evaluates_every_n_epochs(files, tmp_path,
                                                                             capsys):
    run_dir = train(sentence_config(files, tmp_path, epochs=3, eval_every=2, run_name="a"))
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("data: train 8 sentences, source 3/") and "validation 1" in first
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert ["train/f1" in row for row in rows] == [False, True, True]  # epoch 2 and the last
    for key in ("train/answer_acc", "train/answer_exact", "train/answer_exact_sentence",
                "train/answer_acc_character", "validation/answer_acc_sentence"):
        assert 0.0 <= rows[-1][key] <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["data"]["train_sentences"] == 8 and summary["data"]["validation_pairs"] == 1
    shortest = sorted(len(line) for line in ENGLISH)[:8]
    assert summary["data"]["train_source_chars"] == {
        "min": shortest[0], "mean": round(sum(shortest) / 8, 1), "max": shortest[-1]}
    assert summary["data"]["validation_source_chars"]["min"] >= shortest[-1]
    assert summary["data"]["train_sequences"] == 8 + summary["data"]["character_sequences"]


def test_predict_reads_and_writes_back_batched_and_rejects_unknown_characters(
        files, tmp_path, capsys):
    run_dir = train(sentence_config(files, tmp_path, epochs=1, run_name="p"))
    predictor = Predictor(run_dir)
    pairs = sentence_pairs(predictor.task, "train", 3)
    assert [source for source, _ in pairs] == [target for _, target in pairs]
    assert all(source in ENGLISH for source, _ in pairs)
    written = predictor.write(["Hi.", "Go on."], max_chars=5)
    assert [w.source for w in written] == ["Hi.", "Go on."]
    assert all(len(w.text) <= 5 and set(w.text) <= set(predictor.task.output_symbols)
               for w in written)
    # rows of a batch are independent: the same sentence alone gives the same writing
    alone = predictor.write(["Go on."], max_chars=5)
    assert alone[0].text == written[1].text
    # by default each text stops at twice its own length + 20, whatever the batch's longest
    assert writing_limits([3, 41]) == [26, 102] and writing_limits([3, 41], 5) == [5, 5]
    assert predictor.write(["Hi.", " ".join(["Go on."] * 6)])[0] == predictor.write(["Hi."])[0]
    with pytest.raises(DataError, match="'Z'"):
        predictor.write(["Zoo."])
    assert predictor.write(["Zoo."], drop_unknown=True)[0].source == "oo."
    assert main(["predict", str(run_dir), "Hi."]) == 0  # and 3 training, 3 held-out
    out = capsys.readouterr().out
    assert out.count("read:") == 1 + 3 + 1  # the tiny data holds one held-out sentence
    assert "/3 training sentences written back exactly" in out
    assert "/1 held-out sentences written back exactly" in out
    held_out = out[out.index("--- held-out sentences ---"):]
    assert "read:   He went.\n" in held_out and "target: He went." in held_out
    assert main(["predict", str(run_dir), "Zoo."]) == 2
    assert "'Z'" in capsys.readouterr().err


def test_predict_takes_texts_after_options_and_after_a_double_dash(files, tmp_path, capsys):
    run_dir = train(sentence_config(files, tmp_path, epochs=1, run_name="o"))
    assert main(["predict", str(run_dir), "--train", "0", "--held-out", "0", "--max-chars",
                 "5", "Hi.", "--", "Go on."]) == 0
    out = capsys.readouterr().out
    assert out.count("read:") == 2 and "read:   Hi.\n" in out and "read:   Go on.\n" in out
    with pytest.raises(SystemExit):
        main(["predict", str(run_dir), "--train", "0", "--bogus", "Hi."])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_predict_refuses_runs_of_other_tasks(tmp_path):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="logic", epochs=1))
    with pytest.raises(ConfigError, match="predict writes sentences"):
        Predictor(run_dir)


@pytest.mark.skipif(not (SHARED_DATA / "pud-en-fr").is_dir(),
                    reason=f"real sentence pairs not found at {SHARED_DATA / 'pud-en-fr'}")
def test_translate_config_builds_table_3_on_the_real_pairs():
    from mannrl_gym.config import load
    from mannrl_gym.experiments import MannRLExperiment
    from mannrl_gym.tasks import build_task

    config = load(ROOT / "configs/translate.yaml", {"data_path": str(SHARED_DATA / "pud-en-fr/pud.en"),
                                             "target_path": str(SHARED_DATA / "pud-en-fr/pud.fr"),
                                             "wandb_mode": "disabled"})
    task = build_task(config)
    experiment = MannRLExperiment(config, task)
    characters = task.details["character_sequences"]
    assert len(task.train) == characters + 1000 and experiment.env.layout.memory_size == 1024
    # the reference's curriculum: the characters and the 500 shortest pairs first
    assert task.curriculum.sizes == (characters + 500, characters + 1000)
    assert task.curriculum.every == 1000
    assert experiment.agent.net.embed_output[0].weight.shape == (96, task.num_outputs)
    stats = experiment.env.step(experiment.agent.act(experiment.env.reset()[0]))
    assert stats[1].shape == (16,)


def test_sentence_run_resumes_to_the_same_metrics_with_fused_adam(files, tmp_path):
    whole = train(sentence_config(files, tmp_path, epochs=2, run_name="whole"))
    config = sentence_config(files, tmp_path, epochs=1, run_name="split")
    split = train(config)
    train(sentence_config(files, tmp_path, epochs=2, run_name="split"), run_dir=split,
          resume=True)

    def metrics(run_dir):
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if "/" in k} for row in rows]
    assert metrics(whole) == metrics(split) and len(metrics(whole)) == 2


def test_memoryless_ceiling_baseline_runs_on_sentences(files, tmp_path):
    run_dir = train(sentence_config(files, tmp_path, agent="most_frequent_tag", epochs=1,
                                    run_name="mft"))
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    from mannrl_gym.tasks import build_task
    data = build_task(sentence_config(files, tmp_path)).train
    # the best any input-only predictor can do: per input symbol, its most frequent target
    counts = torch.zeros(int(data.inputs.max()) + 1, int(data.targets.max()) + 1)
    counts.index_put_((data.inputs, data.targets), torch.ones(data.num_tokens), accumulate=True)
    assert row["train/accuracy"] == pytest.approx(float(counts.max(1).values.sum()) / data.num_tokens)
    assert row["train/answer_exact"] == 0.0  # no sentence can be written back without memory


def test_perfect_memory_ceiling_is_one_on_the_training_set(files, tmp_path):
    for task, extra in (("sentence", {}), ("translate", {"target_path": files[1]})):
        run_dir = train(sentence_config(files, tmp_path, agent="perfect_memory", epochs=1,
                                        run_name=f"pm-{task}", task=task, **extra))
        row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
        assert row["train/accuracy"] == 1.0 and row["train/f1"] == 1.0
        assert row["train/answer_exact_sentence"] == row["train/answer_exact_character"] == 1.0


@pytest.mark.parametrize("config_name", ["sentence", "translate"])
def test_perfect_memory_ceiling_is_one_on_the_real_pairs(config_name, tmp_path):
    if not (SHARED_DATA / "pud-en-fr" / "pud.fr").is_file():
        pytest.skip(f"real sentence pairs not found at {SHARED_DATA / 'pud-en-fr'} (the "
                    "project's ../shared/data beside the worktree)")
    from mannrl_gym.config import load

    config = load(ROOT / f"configs/{config_name}.yaml", {
        "data_path": str(SHARED_DATA / "pud-en-fr/pud.en"), "agent": "perfect_memory",
        "epochs": 1, "wandb_mode": "disabled", "progress": False, "out_dir": str(tmp_path),
        **({"target_path": str(SHARED_DATA / "pud-en-fr/pud.fr")}
           if config_name == "translate" else {})})
    row = json.loads((train(config) / "metrics.jsonl").read_text().splitlines()[-1])
    # no two training sequences read the same inputs and want different targets
    assert row["train/f1"] == 1.0 and row["train/answer_exact"] == 1.0


def test_vector_env_reads_the_curriculum_of_its_epoch(files):
    env = gymnasium.make_vec("MannRL-Sentence-v0", num_envs=4, data_path=files[0],
                             curriculum_every=2, curriculum_chunk=3, **TINY).unwrapped
    characters = env.task.details["character_sequences"]
    sizes = env.task.curriculum.sizes
    assert sizes == (characters + 3, characters + 6, characters + 8)
    seen = []
    env.reset(seed=0)
    for _ in range(6):  # a pass per episode; Gymnasium's autoreset starts the next
        seen.append((env.epoch, len(env.data)))
        truncated = np.zeros(4, dtype=bool)
        while not truncated[0]:
            _, _, _, truncated, _ = env.step(env.action_space.sample())
        env.step(env.action_space.sample())  # the autoreset step
    assert seen == [(0, sizes[0]), (1, sizes[0]), (2, sizes[1]), (3, sizes[1]),
                    (4, sizes[2]), (5, sizes[2])]
    env.reset(options={"epoch": 3})  # what a resumed trainer passes
    assert env.epoch == 3 and len(env.data) == sizes[1]
    assert env.reset(seed=1) and env.epoch == 0 and len(env.data) == sizes[0]
    # the pass reads only the sequences of its stage
    assert int(env.stream.sequence.max()) == sizes[0] - 1


@pytest.mark.parametrize("agent", ["mannrl", "lstm"])
def test_curriculum_run_resumes_to_the_same_metrics(agent, files, tmp_path):
    curriculum = {"curriculum_every": 1, "curriculum_chunk": 3, "agent": agent}
    whole = train(sentence_config(files, tmp_path, epochs=3, run_name="whole", **curriculum))
    split = train(sentence_config(files, tmp_path, epochs=1, run_name="split", **curriculum))
    train(sentence_config(files, tmp_path, epochs=3, run_name="split", **curriculum),
          run_dir=split, resume=True)

    def rows(run_dir):
        return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in row.items() if "/" in k} for row in rows(whole)] == \
        [{k: v for k, v in row.items() if "/" in k} for row in rows(split)]
    # the training-set metrics cover the sequences that trained: the stage grows each epoch
    exact = [row["train/answer_exact"] for row in rows(whole)]
    assert len(exact) == 3 and all(0.0 <= value <= 1.0 for value in exact)


def test_training_set_evaluation_covers_the_stage_that_trained(files, tmp_path):
    from mannrl_gym.experiments import MannRLExperiment
    from mannrl_gym.tasks import build_task

    config = sentence_config(files, tmp_path, curriculum_every=1, curriculum_chunk=3)
    task = build_task(config)
    experiment = MannRLExperiment(config, task)
    experiment.run_epoch(0, "epoch 1")
    assert len(experiment.evaluators["train"].data) == len(task.train)  # not reset yet
    experiment.evaluate()
    assert len(experiment.evaluators["train"].data) == task.curriculum.sizes[0]
    assert len(experiment.evaluators["validation"].data) == len(task.validation)


def test_translate_trains_and_predict_compares_with_the_translation(files, tmp_path, capsys):
    run_dir = train(small_config(task="translate", data_path=files[0], target_path=files[1],
                                 out_dir=str(tmp_path), run_name="t", epochs=1, **TINY))
    predictor = Predictor(run_dir)
    pairs = sentence_pairs(predictor.task, "train", 16)
    assert len(pairs) == 16
    for (source, target), (back_source, back_target) in zip(pairs[0::2], pairs[1::2]):
        assert FRENCH[ENGLISH.index(source)] == target  # the pair, as aligned in the files
        assert (back_source, back_target) == (target, source)  # and French to English
    assert main(["predict", str(run_dir), "--train", "1", "--held-out", "0"]) == 0
    out = capsys.readouterr().out
    assert "translate, 1 epoch trained" in out and "target: Salut." in out
    assert "/1 training sentences translated exactly" in out and "written back" not in out


def test_predict_reads_the_batch_norm_statistics_saved_with_the_run(files, tmp_path, monkeypatch,
                                                                     capsys):
    import numpy as np

    from mannrl_gym import checkpoint, predict
    from mannrl_gym.evaluation import evaluation_envs, recalibrate

    run_dir = train(sentence_config(files, tmp_path, epochs=1, run_name="bn"))
    saved = checkpoint.load(run_dir / "checkpoint.pt")["experiment"]["evaluation_bn"]
    fresh = Predictor(run_dir, recalibrate=False)  # re-estimate here: the trainer's values?
    recalibrate(evaluation_envs(fresh.task, fresh.config, fresh.writer.learner)["train"], fresh.writer.agent)
    for (mean, var), (saved_mean, saved_var) in zip(fresh.writer.learner.statistics(), saved):
        assert np.allclose(mean, saved_mean.numpy()) and np.allclose(var, saved_var.numpy())

    def no_pass(*args):
        raise AssertionError("predict re-estimated the statistics instead of reading them")
    monkeypatch.setattr(predict, "recalibrate_statistics", no_pass)
    predictor = Predictor(run_dir)
    assert not predictor.recalibrated_now
    for (mean, var), (saved_mean, saved_var) in zip(predictor.writer.learner.statistics(), saved):
        assert np.array_equal(mean, saved_mean.numpy()) and np.array_equal(var, saved_var.numpy())
    capsys.readouterr()
    assert main(["predict", str(run_dir), "Hi."]) == 0
    assert "1 epoch trained\n" in capsys.readouterr().out  # nothing re-estimated


def test_predict_train_count_must_not_be_negative(files, tmp_path, capsys):
    run_dir = train(sentence_config(files, tmp_path, epochs=1, run_name="n"))
    with pytest.raises(SystemExit) as stopped:
        main(["predict", str(run_dir), "--train", "-3"])
    assert stopped.value.code == 2
    assert "--train: must be >= 0, got -3" in capsys.readouterr().err


def test_a_run_given_a_relative_data_path_is_read_back_from_any_directory(files, tmp_path,
                                                                          monkeypatch, capsys):
    """data_path relative to where the run started: config.yaml saves it absolute, so the run
    resumes and predicts from elsewhere; the relative spelling from its own directory still
    names the same file (no "cannot change on --resume")."""
    import os

    from mannrl_gym import cli

    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(files[0], tmp_path)
    run_dir = train(sentence_config([relative], tmp_path, epochs=1, run_name="rel",
                                     out_dir=str(tmp_path / "runs")))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["data_path"] == files[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["predict", str(run_dir), "Hi.", "--train", "1", "--held-out", "0"]) == 0
    assert cli.main(["train", "--resume", str(run_dir), "epochs=2"]) == 0
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--resume", str(run_dir), "epochs=3", f"data_path={relative}"]) == 0
    assert "cannot change" not in capsys.readouterr().err


def test_predict_writes_with_the_lstm_peer_as_its_evaluation_scores_it(files, tmp_path,
                                                                       capsys):
    """The LSTM's run decoded by predict: the training sentences it writes back exactly are
    as many as its last evaluation counted (its own metric, computed apart); an agent that
    writes nothing (no memory-net, no sequence model) is named."""
    run_dir = train(sentence_config(files, tmp_path, agent="lstm", epochs=36, lr=3e-2,
                                    clipping=1.0, hidden_size=32, run_name="lstm"))
    predictor = Predictor(run_dir)
    pairs = sentence_pairs(predictor.task, "train", 8)
    written = predictor.write([source for source, _ in pairs])
    exact = sum(w.finished and w.text == target for w, (_, target) in zip(written, pairs))
    final = json.loads((run_dir / "summary.json").read_text())["final"]
    assert exact == round(final["train/answer_exact_sentence"] * 8)
    assert main(["predict", str(run_dir), "--train", "8", "--held-out", "0"]) == 0
    assert f"{exact}/8 training sentences written back exactly" in capsys.readouterr().out
    most = train(sentence_config(files, tmp_path, agent="most_frequent_tag", epochs=1,
                                 run_name="most"))
    with pytest.raises(ConfigError, match=r"predict writes with a memory agent .* or lstm; "
                                          r"this run's agent is 'most_frequent_tag'"):
        Predictor(most)


def test_predict_finds_moved_data_where_it_is_told_and_checks_its_bytes(files, tmp_path,
                                                                        capsys):
    run_dir = train(sentence_config(files, tmp_path, epochs=1, run_name="moved"))
    moved = tmp_path / "elsewhere.en"
    Path(files[0]).rename(moved)
    assert main(["predict", str(run_dir), "Hi."]) == 2
    said = capsys.readouterr().err
    assert f"its data_path {files[0]} is not there (moved?)" in said
    assert f"mannrl predict {run_dir} --data-path PATH" in said
    assert main(["predict", str(run_dir), "Hi.", "--data-path", str(moved)]) == 0
    assert "read:   Hi." in capsys.readouterr().out
    moved.write_text("\n".join(ENGLISH[::-1]) + "\n", encoding="utf-8")  # other bytes
    assert main(["predict", str(run_dir), "--data-path", str(moved), "Hi."]) == 2
    assert "changed since the run read it" in capsys.readouterr().err
