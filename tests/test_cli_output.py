"""What the command line prints: help, progress, the per-epoch line, the closing line."""

import pytest
import yaml

from mannrl_gym import cli
from mannrl_gym.config import KEYS
from mannrl_gym.trainer import _progress_line

from conftest import ROOT

QUICK = ["num_sequences=300", "epochs=1", "eval_batch_size=64"]


def test_train_help_lists_every_config_key(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "Config keys" in out and "mannrl_gym/config.py" in out
    assert "docs/config.md" in out and "README's 'Config keys'" not in out  # no such section
    for key in KEYS:
        assert f"{key}=" in out, key


def test_a_config_file_after_the_overrides_is_named(tmp_path, capsys):
    assert cli.main(["train", "epochs=1", "configs/logic.yaml", f"out_dir={tmp_path}"]) == 2
    assert "a config file goes first: mannrl train CONFIG key=value" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_train_takes_the_config_file_as_compare_does(tmp_path, capsys):
    """`mannrl train --config FILE` trains as `mannrl train FILE`; the file given both ways
    stops before a run directory is made."""
    assert cli.main(["train", "configs/logic.yaml", "--config", "configs/logic.yaml",
                     f"out_dir={tmp_path}"]) == 2
    assert "give the config file once" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert cli.main(["train", "--config", "configs/logic.yaml", "epochs=1", "num_sequences=64",
                     "progress=false", "wandb_mode=disabled", f"out_dir={tmp_path}"]) == 0
    (run_dir,) = tmp_path.iterdir()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["num_sequences"] == 64


def test_the_epoch_line_puts_each_exact_score_in_its_own_half():
    row = {"epoch": 3, "minutes": 0.5, "train/f1": 0.9, "train/answer_acc": 0.8,
           "train/long_range_acc": 0.7, "train/answer_exact": 0.25, "validation/f1": 0.6,
           "validation/answer_acc": 0.5, "validation/answer_exact": 0.75}
    train_half, validation_half = _progress_line(row).split("|")
    assert "exact 0.250" in train_half and "0.750" not in train_half
    assert "exact 0.750" in validation_half and "0.250" not in validation_half


def test_progress_bars_stay_out_of_a_pipe(tmp_path, capsys):
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, "wandb_mode=disabled",
                     "progress=true", f"out_dir={tmp_path}", "run_name=p"]) == 0
    captured = capsys.readouterr()  # not a TTY, as in a pipe or a CI log
    assert "\r" not in captured.err and "\r" not in captured.out
    assert "epoch    1" in captured.out  # the per-epoch line still reports progress


def test_a_run_silent_between_evaluations_says_where_it_stands(tmp_path, capsys, monkeypatch):
    """An epoch without evaluation prints a line once the run has been silent for
    QUIET_LINE_S (a log would hold nothing until the next evaluation); evaluated epochs
    print their usual line."""
    from mannrl_gym import trainer

    monkeypatch.setattr(trainer, "QUIET_LINE_S", 0.0)
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, "wandb_mode=disabled",
                     "epochs=3", "eval_every=2", f"out_dir={tmp_path}", "run_name=q"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert lines[0].startswith("epoch    1") and "trained; next evaluation after epoch 2" \
        in lines[0] and "train f1" not in lines[0]
    assert [line[:10] for line in lines[1:]] == ["epoch    2", "epoch    3"]
    assert all("train f1" in line for line in lines[1:])


@pytest.mark.parametrize("mode, names_wandb", [("disabled", False), ("offline", True)])
@pytest.mark.parametrize("replicated", [False, True])
def test_the_closing_line_names_only_files_that_exist(tmp_path, capsys, mode, names_wandb,
                                                      replicated):
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, f"wandb_mode={mode}",
                     "progress=false", f"out_dir={tmp_path}", "run_name=r",
                     *(["seeds=0-1"] if replicated else [])]) == 0
    closing = capsys.readouterr().out.strip().splitlines()[-1]
    assert closing.startswith(f"results: {tmp_path / 'r'}") and "checkpoint.pt" in closing
    assert ("wandb/" in closing) == names_wandb
    assert ("<replica>/ (seed0, seed1)" in closing) == replicated


def test_replicas_silent_between_evaluations_say_where_they_stand(tmp_path, capsys,
                                                                  monkeypatch):
    """Replicas with progress=false (as compare runs them) print an unevaluated epoch's line
    once silent for QUIET_LINE_S, as a single run does."""
    from mannrl_gym import trainer

    monkeypatch.setattr(trainer, "QUIET_LINE_S", 0.0)
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, "wandb_mode=disabled",
                     "epochs=3", "eval_every=2", "seeds=0-1", "progress=false",
                     f"out_dir={tmp_path}", "run_name=r"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line[:10] for line in lines] == ["epoch    1", "epoch    2", "epoch    3"]
    assert "train f1   n/a" in lines[0] and "train f1   n/a" not in lines[1]


@pytest.mark.parametrize("replicated", [False, True])
def test_more_threads_than_cores_says_so_at_the_start(tmp_path, capsys, monkeypatch,
                                                      replicated):
    """num_threads beyond the cores the process may use trains, with a line saying it is
    slower (and nothing said where it fits)."""
    from mannrl_gym import threads

    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    seeds = ["seeds=0-1"] if replicated else []
    for count, said in ((1, False), (2, True)):
        assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, *seeds,
                         "wandb_mode=disabled", f"num_threads={count}", f"out_dir={tmp_path}",
                         f"run_name=t{count}"]) == 0
        out = capsys.readouterr().out
        assert ("threads: num_threads=2, but this process may run on 1 core:" in out) is said


@pytest.mark.parametrize("argv", [["train", "--resume", "a", "--resume", "b"],
                                  ["compare", "--task", "logic", "--agents", "mannrl",
                                   "--agents", "lstm"],
                                  ["plot", "--out", "a", "--out", "b", "run"]])
def test_an_option_given_twice_is_refused_not_its_first_value_dropped(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    option = argv[argv.index(next(a for a in argv if argv.count(a) == 2 and a.startswith("--")))]
    assert f"argument {option}: given twice" in capsys.readouterr().err


def test_training_the_lstm_away_from_its_recipe_says_what_compare_uses(tmp_path, capsys):
    base = ["train", str(ROOT / "configs/logic.yaml"), *QUICK, "agent=lstm",
            "wandb_mode=disabled", f"out_dir={tmp_path}"]
    assert cli.main([*base, "run_name=a"]) == 0
    assert "note: agent=lstm trains at lr=0.0001 clipping=0.01 (the config's); mannrl compare " \
           "trains it at its own recipe, lr=0.001 clipping=1.0" in capsys.readouterr().out
    assert cli.main([*base, "run_name=b", "lr=1e-3", "clipping=1"]) == 0
    assert "note:" not in capsys.readouterr().out
