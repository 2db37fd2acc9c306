"""A run directory belongs to one run at a time, and a resume records what really happened."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from mannrl_gym import checkpoint, cli
from mannrl_gym.trainer import train

from conftest import ROOT, small_config

QUICK = ["num_sequences=300", "wandb_mode=disabled", "progress=false", "eval_batch_size=64"]


def listing(folder):
    """Every file under ``folder`` with its content."""
    return {p: p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def epochs(run_dir):
    return [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_runs_started_together_never_share_a_directory(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mannrl_gym.cli", "train", str(ROOT / "configs/logic.yaml"),
               *QUICK, "epochs=3", f"out_dir={tmp_path}", "run_name=x"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 2]
    loser = next(err for code, err in results if code == 2)
    assert "Traceback" not in loser
    assert "another `mannrl train` is running" in loser or "already holds a run" in loser
    assert epochs(tmp_path / "x") == [1, 2, 3]  # one run's epochs, not interleaved


def test_a_running_run_refuses_a_second_run_and_a_resume_writing_nothing(tmp_path, capsys):
    from mannrl_gym import rundir

    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=1))
    before = listing(run_dir)
    with rundir.claim(run_dir, new_run=False, source="test"):  # as a run in progress holds it
        for argv in (["train", str(ROOT / "configs/logic.yaml"), *QUICK, f"out_dir={tmp_path}",
                      "run_name=x"],
                     ["train", "--resume", str(run_dir), "epochs=2"]):
            assert cli.main(argv) == 2
            err = capsys.readouterr().err
            assert "another `mannrl train` is running in this directory" in err
            assert listing(run_dir) == before
    assert cli.main(["train", "--resume", str(run_dir), "epochs=2"]) == 0  # released: resumes
    assert epochs(run_dir) == [1, 2]


def test_a_new_run_that_fails_leaves_no_directory(tmp_path, monkeypatch):
    from mannrl_gym import trainer

    def broken(config, task):
        raise RuntimeError("the experiment could not start")
    monkeypatch.setattr(trainer, "make_experiment", broken)
    with pytest.raises(RuntimeError):
        train(small_config(out_dir=str(tmp_path), run_name="x"))
    assert not (tmp_path / "x").exists()


def test_resume_overrides_are_recorded_and_the_next_resume_sees_them(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=2))
    assert cli.main(["train", "--resume", str(run_dir), "epochs=3", "lr=1e-3"]) == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["epochs"] == 3 and saved["lr"] == 1e-3
    state = checkpoint.load(run_dir / "checkpoint.pt")
    assert state["config"]["epochs"] == 3 and state["config"]["lr"] == 1e-3
    record = [json.loads(line) for line in (run_dir / "resumes.jsonl").read_text().splitlines()]
    assert record[0]["at_epoch"] == 2
    assert record[0]["changed"] == {"epochs": {"from": 2, "to": 3}, "lr": {"from": 1e-4, "to": 1e-3}}
    assert state["resumes"] == record
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_dir)]) == 0
    assert "all 3 epochs are done" in capsys.readouterr().out  # not "all 2"
    assert epochs(run_dir) == [1, 2, 3]
    assert cli.main(["train", "--resume", str(run_dir), "lr=5e-4"]) == 0  # nothing to train
    assert ("all 3 epochs are done; pass epochs=N to train further (nothing trained, so lr "
            "changed nothing: pass them with epochs=N)") in capsys.readouterr().out
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["lr"] == 1e-3


def test_a_failed_resume_changes_no_record(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=1))
    before = listing(run_dir)
    assert cli.main(["train", "--resume", str(run_dir), "epochs=3", "lr=1e30"]) == 3  # diverges
    assert listing(run_dir) == before  # config.yaml still says what the checkpoint ran with
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["lr"] == 1e-4


def test_a_config_file_beside_resume_is_refused(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=1))
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "not both" in err and "logic.yaml" in err


@pytest.mark.parametrize("key, value", [("memory_size", 32), ("hidden_size", 8), ("seed", 4),
                                        ("agent", "lstm"), ("run_name", "y")])
def test_resume_refuses_keys_that_change_shapes_or_data(tmp_path, capsys, key, value):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=1))
    before = listing(run_dir)
    assert cli.main(["train", "--resume", str(run_dir), f"{key}={value}"]) == 2
    err = capsys.readouterr().err
    assert f"key '{key}' cannot change on --resume" in err and "Traceback" not in err
    assert listing(run_dir) == before


def test_resume_without_a_checkpoint_is_an_error_not_a_restart(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=2))
    (run_dir / "checkpoint.pt").unlink()
    before = listing(run_dir)
    assert cli.main(["train", "--resume", str(run_dir), "epochs=3"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume (its metrics.jsonl logs 2 epoch(s), but their checkpoint is gone)" \
        in err
    assert listing(run_dir) == before and epochs(run_dir) == [1, 2]
    anew = err.split("`")[1].split()  # the command it names works as it is
    assert anew[:2] == ["mannrl", "train"] and cli.main(anew[1:] + ["epochs=1"]) == 0
    assert (tmp_path / "x-anew" / "summary.json").is_file()


def test_an_empty_checkpoint_is_named(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="x", epochs=1))
    (run_dir / "checkpoint.pt").write_bytes(b"")
    assert cli.main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt: empty file" in err and "Traceback" not in err


def test_a_replicated_runs_parent_given_as_a_run_names_its_replicas(tmp_path, capsys):
    """`mannrl predict` (or anything reading one run) on a replicated run's folder: which
    folders inside are runs, not "config.yaml missing"."""
    parent = tmp_path / "sentence-s0-1"
    for name in ("seed0", "seed1"):
        (parent / name).mkdir(parents=True)
        (parent / name / "config.yaml").write_text(yaml.safe_dump({"task": "sentence"}))
    (parent / "replicas.yaml").write_text(yaml.safe_dump({"replicas": ["seed0", "seed1"]}))
    assert cli.main(["predict", str(parent), "hi"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a replicated run" in err
    assert "seed0, seed1" in err and str(parent / "seed0") in err
