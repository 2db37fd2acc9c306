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
from mannrl_gym.sweeps.spec import SweepError, load_sweep

from conftest import ROOT


def write_sweep(tmp_path, method="random", metric="train/f1", epochs=1, wandb="disabled",
                **parameters):
    config = tmp_path / "tiny.yaml"
    config.write_text(f"num_sequences: 200\neval_batch_size: 64\nwandb_mode: {wandb}\n"
                      f"epochs: {epochs}\n")
    sweep = {"program": "mannrl", "method": method,
             "metric": {"name": metric, "goal": "maximize"},
             "parameters": parameters or {"lr": {"distribution": "log_uniform_values",
                                                 "min": 1e-4, "max": 1e-2},
                                          "carry_memory": {"values": [True, False]}},
             "command": ["${env}", "mannrl", "train", str(config), "${args}"]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_repository_sweeps_are_valid():
    from mannrl_gym.sweeps.spec import check_config_and_metric

    for path in (ROOT / "configs/sweeps").glob("*.yaml"):
        sweep = load_sweep(path)
        assert sweep["config_file"] == "configs/logic.yaml"
        sweep["config_file"] = str(ROOT / sweep["config_file"])
        check_config_and_metric(sweep, str(path))


def test_local_sweep_runs_trials_into_sqlite_and_summarizes(tmp_path, capsys):
    path = write_sweep(tmp_path, wandb="offline")
    out = tmp_path / "runs"
    assert "no study 'sweep'" in sweep_error([str(path), "--summary", "--out-dir", str(out)],
                                              capsys)
    assert not out.exists()
    assert cli.main(["sweep", str(path), "--trials", "2", "--out-dir", str(out)]) == 0
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for trial in study.trials:
        assert 0.0 <= trial.value <= 1.0 and 1e-4 <= trial.params["lr"] <= 1e-2
        assert list(Path(trial.user_attrs["run_dir"]).glob("wandb/offline-run-*"))
    assert "best: trial" in capsys.readouterr().out
    assert cli.main(["sweep", str(path), "--summary", "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "study sweep: 2 trials (2 complete)" in printed
    assert f"best: trial {study.best_trial.number}, {study.best_value:.4f}" in printed
    assert len(optuna.load_study(study_name="sweep",
                                 storage=f"sqlite:///{out}/sweep/study.db").trials) == 2
    assert "its config.yaml holds every key it trained with" in printed
    # another storage on the same out-dir: its trial 0 would land in trial-0000, a run
    other = sweep_error([str(path), "--trials", "1", "--out-dir", str(out), "--storage",
                         f"sqlite:///{tmp_path}/other.db"], capsys)
    assert "holds trial folders that the study in sqlite:///" in other
    assert "(trial-0000, trial-0001: another study's" in other


def test_grid_covers_the_grid_and_failed_trials_set_the_exit_code(tmp_path, capsys):
    # a valid config whose data cannot be split so: the trial's trainer fails, not the sweep
    path = write_sweep(tmp_path, method="grid", holdout_distinct={"values": [100000, 0]})
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(path), "--trials", "5", "--out-dir", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 of 2 trials failed (0)" in captured.err
    assert "key 'holdout_distinct' is 100000" in captured.err  # the trial's own error
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]  # 2 points, not 5
    assert [t.params["holdout_distinct"] for t in study.trials] == [100000, 0]
    assert "holdout_distinct" in study.trials[0].user_attrs["error"]


def test_bad_sweep_files_are_named(tmp_path):
    path = write_sweep(tmp_path, lrr={"values": [1]})
    with pytest.raises(SweepError, match="unknown config key 'lrr'"):
        load_sweep(path)
    path.write_text("method: annealing\n")
    with pytest.raises(SweepError, match="method"):
        load_sweep(path)
    text = write_sweep(tmp_path, lr={"values": [1e-4]}).read_text()
    path.write_text(text.replace("goal: maximize", "goal: upward"))
    with pytest.raises(SweepError, match="got goal 'upward'"):
        load_sweep(path)
    path.write_text(text + "early_terminate: {type: hyperband, min_iter: 3}\n")
    with pytest.raises(SweepError, match="'early_terminate' .* does not run"):
        load_sweep(path)


def test_a_killed_sweep_leaves_its_running_trial_failed_not_lost(tmp_path):
    path = write_sweep(tmp_path, epochs=200)  # long enough to be killed mid-trial
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
    config = tmp_path / "tiny.yaml"  # the same search space, shorter trials
    config.write_text(config.read_text().replace("epochs: 200", "epochs: 1"))
    assert cli.main(["sweep", str(path), "--trials", "1", "--out-dir", str(out),
                     "--heartbeat", "1", "--grace-period", "2"]) == 0
    study = optuna.load_study(study_name="sweep", storage=f"sqlite:///{out}/sweep/study.db")
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]


def sweep_error(argv, capsys) -> str:
    """Run ``mannrl sweep``; assert it stopped on bad input (exit 2, one line); the line."""
    assert cli.main(["sweep", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("spec, message", [
    ({"min": 0.01, "max": 0.001}, "'min' (0.01) is greater than 'max' (0.001)"),
    ({"min": "a", "max": 1}, "'min' and 'max' must be numbers"),
    ({"min": 0.0, "max": 1.0, "distribution": "log_uniform_values"}, "needs 'min' > 0"),
    ({"min": 0.1, "max": 1.0, "distribution": "normal"}, "distribution 'normal'"),
    ({"mu": 0.1, "sigma": 1.0, "distribution": "normal"}, "distribution 'normal' is not "
                                                          "supported here"),
    ({"values": []}, "'values' must be a non-empty list"),
])
def test_bad_parameter_ranges_are_named(tmp_path, capsys, spec, message):
    path = write_sweep(tmp_path, lr=spec)
    err = sweep_error([str(path), "--out-dir", str(tmp_path / "runs")], capsys)
    assert f"{path}: parameters.lr" in err and message in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("option, message", [(["--trials", "0"], "--trials must be 1 or more"),
                                             (["--trials", "-1"], "--trials must be 1 or more"),
                                             (["--workers", "0"], "--workers must be 1 or more"),
                                             (["--workers", str(8 * (os.cpu_count() or 1) + 1)],
                                              "per core of this machine")])
def test_bad_counts_are_named(tmp_path, capsys, option, message):
    path = write_sweep(tmp_path)
    assert message in sweep_error([str(path), *option, "--out-dir", str(tmp_path / "runs")], capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("method, parameters, where, key", [
    ("grid", {"lr": {"values": [0.0001, -1]}}, "grid point {'lr': -1}", "lr"),
    ("grid", {"lr": {"values": [0.0001]}, "memory_size": {"values": [8, 0]}},
     "grid point {'lr': 0.0001, 'memory_size': 0}", "memory_size"),
    ("random", {"memory_size": {"values": [8, 0]}}, "parameters.memory_size value 0",
     "memory_size"),
    ("bayes", {"lr": {"min": -0.01, "max": 0.01}}, "parameters.lr min -0.01", "lr"),
    ("random", {"memory_size": {"min": 0, "max": 8}}, "parameters.memory_size min 0",
     "memory_size"),
    ("random", {"gamma": {"min": 0.5, "max": 2.0}}, "parameters.gamma max 2.0", "gamma"),
])
def test_values_a_trial_would_refuse_fail_before_any_trial(tmp_path, capsys, method,
                                                           parameters, where, key):
    """docs/training.md: bad input is exit 2, nothing run; not one failed trial per point."""
    path = write_sweep(tmp_path, method=method, **parameters)
    err = sweep_error([str(path), "--out-dir", str(tmp_path / "runs")], capsys)
    assert err.startswith(f"mannrl: error: {path}: {where}: ") and f"key '{key}'" in err, err
    assert not (tmp_path / "runs").exists()


def test_a_sweep_must_name_its_config_file(tmp_path, capsys, monkeypatch):
    path = write_sweep(tmp_path)
    sweep = yaml.safe_load(path.read_text())
    del sweep["command"]
    path.write_text(yaml.safe_dump(sweep))
    err = sweep_error([str(path), "--out-dir", str(tmp_path / "runs")], capsys)
    assert "'command' must name the config file every trial trains" in err
    example = err[err.index("command: ["):err.index("]") + 1]  # the line it suggests parses
    assert yaml.safe_load(example)["command"][0] == "${env}"
    sweep["command"] = ["mannrl", "train", "configs/logic.yaml", "${args}"]  # relative
    path.write_text(yaml.safe_dump(sweep))
    monkeypatch.chdir(tmp_path)
    err = sweep_error([str(path), "--out-dir", str(tmp_path / "runs")], capsys)
    assert f"configs/logic.yaml, does not exist (a relative path is read from the current " \
           f"directory, {tmp_path})" in err
    assert not (tmp_path / "runs").exists()


def test_a_metric_the_trainer_does_not_log_fails_before_any_trial(tmp_path, capsys):
    path = write_sweep(tmp_path, metric="validation/answer_accuracy")
    err = sweep_error([str(path), "--out-dir", str(tmp_path / "runs")], capsys)
    assert "metric.name 'validation/answer_accuracy' is not logged" in err
    assert "validation/answer_acc" in err  # names what is logged
    assert "validation/answer_acc_or" in err and "validation/answer_acc_xor" not in err  # and
    assert not (tmp_path / "runs").exists()  # not what is logged but never measured (null)


@pytest.mark.parametrize("args", [["device=cuda"], []])
def test_a_device_fails_before_any_trial(tmp_path, capsys, args):
    """Trials are single runs on the CPU: `device=cuda` (an override or a swept value) would
    fail every trial; it is bad input instead, named before the study exists."""
    path = write_sweep(tmp_path, **({} if args else {"device": {"values": ["cpu", "cuda"]}}))
    err = sweep_error([str(path), *args, "--trials", "1", "--out-dir", str(tmp_path / "runs")],
                      capsys)
    assert "key 'device' is 'cuda'" in err and "replicas" in err
    assert not (tmp_path / "runs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml", "tiny.yaml"]


@pytest.mark.parametrize("metric", ["validation/answer_acc_or", "train/answer_acc_xor",
                                    "validation/long_range_acc_and", "train_loss_running"])
def test_per_category_metrics_are_accepted(tmp_path, metric):
    from mannrl_gym.sweeps.spec import check_config_and_metric

    sweep = load_sweep(write_sweep(tmp_path, metric=metric))
    check_config_and_metric(sweep, "sweep.yaml")  # Logic's categories: and, or, xor


@pytest.mark.parametrize("metric, why", [
    ("validation/answer_acc_xor", "xor 0"),  # Logic holds out no xor sequence
    ("train/long_range_acc_xor", "xor ")])   # xor's two operands are never > 10 steps back
def test_a_metric_the_data_never_measures_fails_before_any_trial(tmp_path, capsys, metric, why):
    path = write_sweep(tmp_path, metric=metric)
    err = sweep_error([str(path), "--out-dir", str(tmp_path / "runs")], capsys)
    assert f"metric.name '{metric}' is never measured" in err and why in err
    assert "every trial would log null" in err
    assert not (tmp_path / "runs").exists()


def test_a_sqlite_file_in_a_missing_folder_or_relative_by_three_slashes_is_named(tmp_path,
                                                                                 capsys):
    path = write_sweep(tmp_path)
    missing = tmp_path / "no" / "such" / "s.db"
    err = sweep_error([str(path), "--storage", f"sqlite:///{missing}", "--trials", "1"], capsys)
    assert f"the folder of the database file is not there: {missing.parent}" in err
    assert not (tmp_path / "no").exists()
    relative = str(tmp_path / "s.db").lstrip("/")  # sqlite:/// + the path without its slash
    err = sweep_error([str(path), "--storage", f"sqlite:///{relative}", "--summary"], capsys)
    assert f"four slashes: sqlite:////{relative}" in err


def test_unreachable_database_is_one_line_and_writes_nothing(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = write_sweep(tmp_path)
    url = f"postgresql://someone:hunter2@127.0.0.1:{port}/sweeps"
    err = sweep_error([str(path), "--storage", url, "--out-dir", str(tmp_path / "runs")], capsys)
    assert "cannot open the database" in err and f"127.0.0.1:{port}" in err
    assert "hunter2" not in err
    assert not (tmp_path / "runs").exists()


def test_overrides_apply_to_every_trial_in_their_own_study(tmp_path, capsys):
    path = write_sweep(tmp_path, epochs=5)
    out = tmp_path / "runs"
    assert cli.main(["sweep", str(path), "epochs=1", "eval_every=1", "--trials", "1",
                     "--out-dir", str(out)]) == 0
    name = "sweep+epochs=1+eval_every=1"
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out}/{name}/study.db")
    run_dir = Path(study.trials[0].user_attrs["run_dir"])
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["epochs"] == 1
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    assert "unknown config key 'epochz'" in sweep_error(
        [str(path), "epochz=1", "--out-dir", str(out)], capsys)
    assert "'run_name' is set for each trial" in sweep_error(
        [str(path), "run_name=x", "--out-dir", str(out)], capsys)
    assert "lr" in sweep_error([str(path), "lr=abc", "--out-dir", str(out)], capsys)


def test_random_draws_depend_on_seed_and_trial_number_only(tmp_path):
    from mannrl_gym.sweeps.samplers import TrialSeeded

    sweep = load_sweep(write_sweep(tmp_path))

    def draws(seed, order):
        study = optuna.create_study(sampler=TrialSeeded("random", seed))
        trials = [study.ask() for _ in range(3)]
        return {t.number: t.suggest_float("lr", 1e-4, 1e-2, log=True) for t in
                [trials[i] for i in order]}

    assert draws(0, [0, 1, 2]) == draws(0, [2, 0, 1])  # order of asking does not matter
    assert draws(0, [0, 1, 2]) != draws(1, [0, 1, 2])
    assert sweep["method"] == "random"


def test_grid_retries_a_failed_point_once_per_command(tmp_path):
    from mannrl_gym.sweeps.samplers import GridByTrialNumber

    sweep = load_sweep(write_sweep(tmp_path, method="grid", lr={"values": [0.1, 0.2]}))
    study = optuna.create_study()

    def run(run_id, fail):
        sampler = GridByTrialNumber(sweep, run_id)
        study.sampler = sampler
        trial = study.ask()
        trial.set_user_attr("run_id", run_id)
        lr = trial.suggest_categorical("lr", [0.1, 0.2])
        study.tell(trial, state=optuna.trial.TrialState.FAIL if fail else None,
                   values=None if fail else 1.0)
        return lr, sampler.has_work(study)

    assert run("first", fail=True) == (0.1, True)       # point 0 killed or failed
    assert run("first", fail=False) == (0.2, False)     # not retried by the same command
    assert run("second", fail=False) == (0.1, False)    # a re-run retries it, then is done


def test_bayes_proposes_past_its_random_start(tmp_path):
    from mannrl_gym.sweeps.samplers import TrialSeeded

    study = optuna.create_study(sampler=TrialSeeded("bayes", 0))
    study.optimize(lambda t: -(t.suggest_float("lr", 1e-4, 1e-2, log=True) - 1e-3) ** 2,
                   n_trials=14)
    late = [t.params["lr"] for t in study.trials[10:]]  # TPE, after 10 random start trials
    assert all(1e-4 <= lr <= 1e-2 for lr in late) and len(set(late)) == len(late)


def test_the_sweep_package_does_not_import_the_command_line():
    """cli imports sweeps.workers; nothing under sweeps/ imports cli back (a trial runs
    `python -m mannrl_gym.cli train ...` as a process instead)."""
    import ast

    for path in (ROOT / "mannrl_gym" / "sweeps").glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        assert not [name for name in imported if name.startswith("mannrl_gym.cli")], path
