"""``mannrl sweep``: run a wandb-format sweep YAML with no server, driven by Optuna.

The same file works with ``wandb sweep`` + ``wandb agent`` for users with a W&B server. Here:
``method`` grid / random / bayes maps to Optuna's GridSampler / RandomSampler / TPESampler;
``parameters`` entries ``value``, ``values``, ``min``/``max`` (with ``distribution`` uniform,
int_uniform, log_uniform_values) map to Optuna suggestions; ``metric`` (name, goal) is read
from the last line of each trial's ``metrics.jsonl``. Each trial is a ``mannrl train``
subprocess (its wandb run offline), so a crashed trial is marked failed and the sweep goes on.
The study lives in a SQLite file by default, or any database URL several machines share; trials
left running by a killed sweep are marked failed when the study is next opened (heartbeats).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from mannrl_gym.config import KEYS, ConfigError

METHODS = ("grid", "random", "bayes")


class SweepError(ConfigError):
    """A sweep file that cannot be run; the message names the file and the entry."""


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and check a wandb-format sweep file."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: sweep file not found")
    try:
        sweep = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(sweep, dict):
        raise SweepError(f"{path}: a sweep must be a mapping")
    if sweep.get("method") not in METHODS:
        raise SweepError(f"{path}: 'method' must be one of {list(METHODS)}, got {sweep.get('method')!r}")
    metric = sweep.get("metric") or {}
    if not metric.get("name") or metric.get("goal", "maximize") not in ("maximize", "minimize"):
        raise SweepError(f"{path}: 'metric' needs a name and a goal (maximize or minimize)")
    parameters = sweep.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise SweepError(f"{path}: 'parameters' must map config keys to their ranges")
    for key, spec in parameters.items():
        if key not in KEYS:
            raise SweepError(f"{path}: parameters: unknown config key '{key}'")
        if not isinstance(spec, dict) or not ({"value", "values"} & set(spec) or {"min", "max"} <= set(spec)):
            raise SweepError(f"{path}: parameters.{key}: give 'value', 'values' or 'min' and 'max'")
        if sweep["method"] == "grid" and "min" in spec:
            raise SweepError(f"{path}: parameters.{key}: a grid sweep needs 'values' lists")
    sweep["config_file"] = _config_file(sweep, path)
    return sweep


def _config_file(sweep: dict[str, Any], path: Path) -> str:
    """The YAML config named in the sweep's ``command`` (else configs/<stem>.yaml)."""
    for word in sweep.get("command") or []:
        if isinstance(word, str) and word.endswith((".yaml", ".yml")):
            return word
    return str(Path("configs") / f"{path.stem}.yaml")


def suggest(trial, key: str, spec: dict[str, Any]) -> Any:
    """One Optuna suggestion for a wandb parameter spec."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return trial.suggest_categorical(key, spec["values"])
    low, high = spec["min"], spec["max"]
    distribution = spec.get("distribution") or (
        "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform")
    if distribution == "int_uniform":
        return trial.suggest_int(key, int(low), int(high))
    if distribution == "uniform":
        return trial.suggest_float(key, float(low), float(high))
    if distribution == "log_uniform_values":
        return trial.suggest_float(key, float(low), float(high), log=True)
    raise SweepError(f"parameters.{key}: distribution '{distribution}' is not supported here "
                     f"(uniform, int_uniform, log_uniform_values)")


def _sampler(sweep: dict[str, Any], seed: int):
    import optuna

    if sweep["method"] == "grid":
        space = {k: s["values"] if "values" in s else [s["value"]]
                 for k, s in sweep["parameters"].items()}
        return optuna.samplers.GridSampler(space, seed=seed)
    if sweep["method"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def run_trial(sweep: dict[str, Any], overrides: dict[str, Any], run_dir: Path) -> float:
    """Train one trial in a subprocess; return its metric (last epoch). Raises if it fails."""
    args = [f"--{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in overrides.items()]
    command = [sys.executable, "-m", "mannrl_gym.cli", "train", sweep["config_file"], *args,
               f"out_dir={run_dir.parent}", f"run_name={run_dir.name}", "progress=false"]
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "WANDB_SILENT": "true"})
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"trial in {run_dir} failed (exit {result.returncode}): {' | '.join(tail)}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    value = rows[-1].get(sweep["metric"]["name"])
    if value is None or not math.isfinite(value):
        raise RuntimeError(f"trial in {run_dir}: metric {sweep['metric']['name']!r} missing")
    return float(value)


def run_sweep(path: str | Path, trials: int, storage: str | None = None,
              study_name: str | None = None, out_dir: str = "runs/sweeps", seed: int = 0,
              heartbeat_interval: int = 30, grace_period: int | None = None):
    """Run (or continue) the study for ``path``; return the Optuna study."""
    import optuna

    sweep = load_sweep(path)
    name = study_name or Path(path).stem
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    rdb = optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval,
                                     grace_period=grace_period)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    direction = "maximize" if sweep["metric"].get("goal", "maximize") == "maximize" else "minimize"
    study = optuna.create_study(study_name=name, storage=rdb, direction=direction,
                                sampler=_sampler(sweep, seed), load_if_exists=True)
    optuna.storages.fail_stale_trials(study)  # trials of a killed sweep: failed, not lost

    def objective(trial) -> float:
        overrides = {k: suggest(trial, k, spec) for k, spec in sweep["parameters"].items()}
        run_dir = out / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        value = run_trial(sweep, overrides, run_dir)
        print(f"trial {trial.number}: {sweep['metric']['name']} = {value:.4f}  {overrides}",
              flush=True)
        return value

    study.optimize(objective, n_trials=trials, catch=(RuntimeError,))
    return study


def print_study(study) -> None:
    print(f"\nstudy {study.study_name}: {len(study.trials)} trials")
    for trial in study.trials:
        value = "" if trial.value is None else f"{trial.value:.4f}"
        print(f"  {trial.number:4d}  {trial.state.name:8s}  {value:>8s}  {trial.params}")
    completed = [t for t in study.trials if t.value is not None]
    if completed:
        print(f"best: trial {study.best_trial.number}, {study.best_value:.4f}, {study.best_params}")
