"""`mannrl sweep`: a wandb-format sweep run locally by Optuna, with SQLite storage."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from mannrl_gym import cli
from mannrl_gym.sweep import SweepError, load_sweep

from conftest import ROOT


def write_sweep(tmp_path, method="random", **parameters):
    config = tmp_path / "tiny.yaml"
    config.write_text("num_sequences: 200\neval_batch_size: 64\nwandb_mode: offline\n")
    sweep = {"program": "mannrl", "method": method,
             "metric": {"name": "train/f1", "goal": "maximize"},
             "parameters": parameters or {"lr": {"distribution": "log_uniform_values",
                                                 "min": 1e-4, "max": 1e-2},
                                          "carry_memory": {"values": [True, False]},
                                          "epochs": {"value": 1}},
             "command": ["${env}", "mannrl", "train", str(config), "${args}"]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_repository_sweeps_are_valid():
    for path in (ROOT / "configs/sweeps").glob("*.yaml"):
        sweep = load_sweep(path)
        assert sweep["config_file"] == "configs/logic.yaml"


def test_local_sweep_runs_trials_into_sqlite(tmp_path, capsys):
    path = write_sweep(tmp_path)
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(path), "--trials", "2", "--out-dir", str(out)]) == 0
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for trial in study.trials:
        assert 0.0 <= trial.value <= 1.0 and 1e-4 <= trial.params["lr"] <= 1e-2
        assert list(Path(trial.user_attrs["run_dir"]).glob("wandb/offline-run-*"))
    assert "best: trial" in capsys.readouterr().out


def test_grid_sweep_covers_the_grid(tmp_path):
    path = write_sweep(tmp_path, method="grid", carry_memory={"values": [True, False]},
                       epochs={"value": 1})
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(path), "--trials", "5", "--out-dir", str(out)]) == 0
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    assert sorted(t.params["carry_memory"] for t in study.trials) == [False, True]


def test_bad_sweep_files_are_named(tmp_path):
    path = write_sweep(tmp_path, lrr={"values": [1]})
    with pytest.raises(SweepError, match="unknown config key 'lrr'"):
        load_sweep(path)
    path.write_text("method: annealing\n")
    with pytest.raises(SweepError, match="method"):
        load_sweep(path)


def test_a_killed_sweep_leaves_its_running_trial_failed_not_lost(tmp_path):
    path = write_sweep(tmp_path, epochs={"value": 200})  # long enough to be killed mid-trial
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "mannrl_gym.cli", "sweep", str(path), "--trials", "1",
               "--out-dir", str(out), "--heartbeat", "1", "--grace-period", "2"]
    sweep = subprocess.Popen(command, start_new_session=True, env={**os.environ},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "sweep" / "trial-0000" / "config.yaml").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and its trial, as a crash would
    sweep.wait()
    time.sleep(3)  # past the grace period: the heartbeat has stopped
    path.write_text(path.read_text().replace("value: 200", "value: 1"))
    assert cli.main(["sweep", str(path), "--trials", "1", "--out-dir", str(out),
                     "--heartbeat", "1", "--grace-period", "2"]) == 0
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
