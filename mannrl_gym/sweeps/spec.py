"""A wandb-format sweep file: loading, checking, overrides and the metric a trial reports.

The same file works with ``wandb sweep`` + ``wandb agent`` for users with a W&B server; with
``mannrl sweep`` Optuna drives it (``study`` opens the study, ``workers`` runs
trials). ``method`` grid / random / bayes; ``parameters`` entries ``value``, ``values``,
``min``/``max`` (with ``distribution`` uniform, int_uniform, log_uniform_values); ``metric``
(name, goal) is read from the last line of each trial's ``metrics.jsonl``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Iterator

from mannrl_gym.config import KEYS, ConfigError, read_yaml, unknown_key_hint
from mannrl_gym.errors import not_a_file

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = ("uniform", "int_uniform", "log_uniform_values")
# Keys of a metrics.jsonl row besides the evaluation metrics (trainer.py, experiments.py).
ROW_KEYS = ("epoch", "minutes", "epoch_seconds", "train_steps_per_s", "train_loss_running",
            "memory_loss")
SPLITS = ("train", "validation")
PER_TRIAL_KEYS = ("out_dir", "run_name")  # the sweep sets these for every trial


class SweepError(ConfigError):
    """A sweep that cannot be run; the message names the file (or option) and the entry."""


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and check a wandb-format sweep file; ``overrides`` (key=value from the command
    line) pin those keys for every trial, replacing the file's entries for them."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: {not_a_file(path, 'sweep file')}")
    try:
        sweep = read_yaml(path)
    except ConfigError as exc:  # invalid YAML, a key given twice
        raise SweepError(str(exc)) from None
    if not isinstance(sweep, dict):
        raise SweepError(f"{path}: a sweep must be a mapping")
    if "method" not in sweep and "parameters" not in sweep and set(sweep) & set(KEYS):
        raise SweepError(f"{path}: a training config (keys {', '.join(sorted(set(sweep) & set(KEYS))[:3])}"
                         f", ...), not a sweep file: a sweep file has method, metric, parameters "
                         f"and a command naming its config (e.g. configs/sweeps/logic.yaml); "
                         f"train this one with mannrl train {path}")
    if sweep.get("method") not in METHODS:
        raise SweepError(f"{path}: 'method' must be one of {list(METHODS)}, got {sweep.get('method')!r}")
    metric = sweep.get("metric") or {}
    if (not isinstance(metric, dict) or not isinstance(metric.get("name"), str)
            or metric.get("goal", "maximize") not in ("maximize", "minimize")):
        got = (f", got goal {metric.get('goal')!r}" if isinstance(metric, dict)
               and isinstance(metric.get("name"), str) else f", got {metric!r}")
        raise SweepError(f"{path}: 'metric' needs a name and a goal (maximize or minimize)"
                         f"{got}")
    if sweep.get("early_terminate"):  # wandb's hyperband: not run here, so not silently
        raise SweepError(f"{path}: 'early_terminate' ({sweep['early_terminate']!r}) is wandb's "
                         f"server-side stopping, which this local sweep does not run; remove "
                         f"it (every trial trains its full epochs)")
    parameters = sweep.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise SweepError(f"{path}: 'parameters' must map config keys to their ranges")
    for key, value in (overrides or {}).items():
        if key not in KEYS:
            raise SweepError(f"command line: unknown config key '{key}'{unknown_key_hint(key)}")
        if key in PER_TRIAL_KEYS:
            raise SweepError(f"command line: '{key}' is set for each trial "
                             f"(runs/sweeps/<study>/trial-NNNN); use --out-dir")
        parameters[key] = {"value": value}
    for key, spec in parameters.items():
        _check_parameter(path, sweep["method"], key, spec)
    sweep["config_file"] = _config_file(sweep, path)
    return sweep


def _check_parameter(path: Path, method: str, key: str, spec: Any) -> None:
    where = f"{path}: parameters.{key}"
    if key not in KEYS:
        raise SweepError(f"{path}: parameters: unknown config key '{key}'{unknown_key_hint(key)}")
    if (isinstance(spec, dict) and spec.get("distribution")
            and spec["distribution"] not in DISTRIBUTIONS):  # normal (mu, sigma), say
        raise SweepError(f"{where}: distribution '{spec['distribution']}' is not supported "
                         f"here ({', '.join(DISTRIBUTIONS)})")
    if not isinstance(spec, dict) or not ({"value", "values"} & set(spec) or {"min", "max"} <= set(spec)):
        raise SweepError(f"{where}: give 'value', 'values' or 'min' and 'max'")
    if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
        raise SweepError(f"{where}: 'values' must be a non-empty list")
    if "value" in spec or "values" in spec:
        return
    if method == "grid":
        raise SweepError(f"{where}: a grid sweep needs 'values' lists")
    low, high = spec["min"], spec["max"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in (low, high)):
        raise SweepError(f"{where}: 'min' and 'max' must be numbers, got {low!r} and {high!r}")
    if low > high:
        raise SweepError(f"{where}: 'min' ({low}) is greater than 'max' ({high})")
    distribution = distribution_of(spec)
    if distribution not in DISTRIBUTIONS:
        raise SweepError(f"{where}: distribution '{distribution}' is not supported here "
                         f"({', '.join(DISTRIBUTIONS)})")
    if distribution == "log_uniform_values" and low <= 0:
        raise SweepError(f"{where}: log_uniform_values needs 'min' > 0, got {low}")


def distribution_of(spec: dict[str, Any]) -> str:
    """The wandb distribution of a min/max spec (int_uniform when both bounds are ints)."""
    low, high = spec["min"], spec["max"]
    return spec.get("distribution") or (
        "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform")


def _config_file(sweep: dict[str, Any], path: Path) -> str:
    """The YAML config file the sweep's ``command`` names (every trial trains it)."""
    command = sweep.get("command")
    words = command if isinstance(command, list) else []
    for word in words:
        if isinstance(word, str) and word.endswith((".yaml", ".yml")):
            return word
    raise SweepError(f"{path}: 'command' must name the config file every trial trains, e.g. "
                     f'command: ["${{env}}", mannrl, train, configs/logic.yaml, "${{args}}"]'
                     f" (YAML needs the quotes in brackets)"
                     + ("" if command is None else f"; got {command!r}"))


def fixed_values(sweep: dict[str, Any]) -> dict[str, Any]:
    """The keys every trial gets the same value for (``value`` entries and overrides)."""
    return {k: s["value"] for k, s in sweep["parameters"].items() if "value" in s}


def grid_points(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of a grid sweep's ``values`` lists, in a fixed order."""
    swept = {k: s["values"] for k, s in sorted(sweep["parameters"].items()) if "values" in s}
    return [dict(zip(swept, combo)) for combo in itertools.product(*swept.values())]


def suggest(trial, key: str, spec: dict[str, Any]) -> Any:
    """One Optuna suggestion for a (checked) wandb parameter spec."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return trial.suggest_categorical(key, spec["values"])
    low, high = bounds(spec)
    if distribution_of(spec) == "int_uniform":
        return trial.suggest_int(key, low, high)
    return trial.suggest_float(key, low, high, log=distribution_of(spec) == "log_uniform_values")


def bounds(spec: dict[str, Any]) -> tuple[Any, Any]:
    """A min/max spec's bounds as its trials get them (ints for int_uniform, else floats)."""
    kind = int if distribution_of(spec) == "int_uniform" else float
    return kind(spec["min"]), kind(spec["max"])


def values_to_check(sweep: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, values) for every set of values to check before a trial runs: each grid point;
    for random / bayes, each listed value and each range bound, with the fixed values."""
    fixed = fixed_values(sweep)
    if sweep["method"] == "grid":
        for point in grid_points(sweep):
            yield f"grid point {point}", {**fixed, **point}
        return
    for key, spec in sorted(sweep["parameters"].items()):
        if "values" in spec:
            for value in spec["values"]:
                yield f"parameters.{key} value {value!r}", {**fixed, key: value}
        elif "min" in spec:
            for name, value in zip(("min", "max"), bounds(spec)):
                yield f"parameters.{key} {name} {value!r}", {**fixed, key: value}


def check_config_and_metric(sweep: dict[str, Any], source: str) -> None:
    """Fail before any trial if the config file with the fixed values does not load, if a
    trial's values would not (every grid point, every listed value, every range bound), or if
    the sweep's metric is no key the trainer logs for this task."""
    from mannrl_gym.config import load, parse_overrides
    from mannrl_gym.sweeps.trial import trial_args

    if not Path(sweep["config_file"]).is_file():
        raise SweepError(f"{source}: the config file its command names, {sweep['config_file']}, "
                         f"does not exist (a relative path is read from the current directory, "
                         f"{Path.cwd()})")
    config = load(sweep["config_file"], fixed_values(sweep))
    devices = {config.device, *sweep["parameters"].get("device", {}).get("values", [])}
    if devices - {"cpu"}:  # every trial would stop at its start
        raise SweepError(f"{source}: key 'device' is '{sorted(devices - {'cpu'})[0]}', but a "
                         f"sweep's trials are single runs, on the CPU; on a device, run the "
                         f"points as replicas of one run: mannrl train CONFIG seeds=0-4 "
                         f"replicas='[{{lr: 1e-4}}, ...]' device=cuda (docs/replicas.md)")
    for where, values in values_to_check(sweep):  # as a trial gets them: --key=value
        try:
            load(sweep["config_file"], parse_overrides(trial_args(values)))
        except ConfigError as exc:
            raise SweepError(f"{source}: {where}: {exc}") from None
    name = sweep["metric"]["name"]
    per_split = name.startswith(tuple(f"{split}/" for split in SPLITS))  # not train_loss_running
    if name in logged_keys(()) and not per_split:
        return
    from mannrl_gym.tasks import build_task

    task = build_task(config)
    keys = logged_keys(task.train.kind_names)  # per-category keys depend on the data
    if name not in keys:
        measured = perfect_metrics(task, "validation")  # NaN: never measured on this data
        examples = ", ".join(f"validation/{metric}" for metric, value in sorted(measured.items())
                             if f"validation/{metric}" in keys and not math.isnan(value))
        raise SweepError(f"{source}: metric.name '{name}' is not logged by the trainer; "
                         f"it logs {', '.join(ROW_KEYS)}, train/... and {examples}")
    if per_split:
        check_measured(name, task, source)


def check_measured(name: str, task, source: str) -> None:
    """Fail when the split's data has no step that ``name`` (``<split>/<metric>``) counts, so
    every trial would log null for it (Logic holds out no xor sequence; xor has no
    long-range answer): the metric of a perfect prediction is NaN there."""
    import torch

    split, _, metric = name.partition("/")
    if not math.isnan(perfect_metrics(task, split).get(metric, 0.0)):
        return
    data = getattr(task, split)
    counts = torch.bincount(data.kind, minlength=len(data.kind_names)).tolist()
    held = ", ".join(f"{kind} {count}" for kind, count in zip(data.kind_names, counts))
    raise SweepError(f"{source}: metric.name '{name}' is never measured: the {split} split "
                     f"of this config's data has no step it counts (sequences by kind: {held}), "
                     f"so every trial would log null; choose another metric, e.g. "
                     f"{split}/answer_acc")


def perfect_metrics(task, split: str) -> dict[str, float]:
    """The metrics of a perfect prediction on ``task``'s ``split`` (``train``,
    ``validation``): NaN where the split has no step the metric counts."""
    import torch

    from mannrl_gym.metrics import summarize_set

    data = getattr(task, split)
    return summarize_set(data.targets, torch.zeros(len(data.targets)), data, task.num_outputs)


def logged_keys(kind_names: tuple[str, ...]) -> set[str]:
    """The keys of an evaluated epoch's metrics.jsonl row for a task with these categories."""
    import torch

    from mannrl_gym.metrics import summarize

    empty = torch.zeros(0, dtype=torch.int64)
    names = summarize(empty, empty, empty.bool(), empty.bool(), empty, empty.float(), 2,
                      tuple(kind_names), empty)
    return {f"{split}/{name}" for split in SPLITS for name in names} | set(ROW_KEYS)
