"""`mannrl train CONFIG seeds=0-7`: K replicas trained in one process, each in its own
ordinary run directory.

Layout: a parent directory ``out_dir/run_name`` holds ``replicas.yaml`` (the replicas' names)
and one run directory per replica (``seed3``, ``lr=0.0003-seed3``, ...), each exactly what
``mannrl train`` writes for one run (config.yaml with that replica's seed and values,
metrics.jsonl, checkpoint.pt, summary.json). ``mannrl train --resume PARENT`` resumes them
together; ``mannrl train --resume PARENT/seed3`` resumes one alone.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from mannrl_gym import checkpoint, rundir, stopping
from mannrl_gym import trainer as trainer_module  # its LineClock and default run name
from mannrl_gym.allocator import keep_freed_memory
from mannrl_gym.config import Config, ConfigError, with_absolute_paths
from mannrl_gym.replicas.experiment import ReplicatedExperiment
from mannrl_gym.replicas.spec import POINT_KEYS, Replica, check_device
from mannrl_gym.tasks import build_task, check_trainable
from mannrl_gym.threads import beyond_cores_note, limit_threads
from mannrl_gym.tracking import Tracker, check_online_login
from mannrl_gym.trainer import (Interrupted, RunLog, epoch_line, format_duration,
                                resume_config, resumed_state)

INDEX = "replicas.yaml"
# keys the replicas' one loop takes from the first replica: a resume needs them equal
SHARED_RUN_KEYS = ("device", "epochs", "num_threads")


def is_replicated_run(run_dir: Path) -> bool:
    return (Path(run_dir) / INDEX).is_file()


def parent_dir(base: Config) -> Path:
    """Where a new replicated run of ``base`` goes: ``out_dir/run_name`` (default:
    ``trainer.default_run_name`` with ``replicas`` for the seed)."""
    return Path(base.out_dir) / (base.run_name
                                 or trainer_module.default_run_name(base, "replicas"))


def train_replicas(replicas: list[Replica], parent: Path) -> Path:
    """Train every replica (a new run) under ``parent``; return ``parent``."""
    parent = Path(parent)
    if parent.exists() and any(parent.iterdir()):
        raise ConfigError(f"{replicas[0].config.source}: {parent} already exists and is not "
                          f"empty; resume it with `mannrl train --resume {parent}` or choose "
                          f"another run_name")
    configs = [Config(**{**r.config.to_dict(), "out_dir": str(parent), "run_name": r.name},
                      source=r.config.source).validate() for r in replicas]
    tasks = _tasks(configs)  # bad data fails here, before anything is written
    rundir.check_creatable(parent, replicas[0].config.source)
    parent.mkdir(parents=True, exist_ok=True)
    try:
        checkpoint.atomic_write_text(parent / INDEX, yaml.safe_dump(
            {"replicas": [r.name for r in replicas]}, sort_keys=False))
        _train(configs, tasks, [parent / r.name for r in replicas],
               [None] * len(replicas), new_run=True)
    except BaseException:
        if not any((parent / r.name / "checkpoint.pt").exists() for r in replicas):
            shutil.rmtree(parent, ignore_errors=True)  # nothing half-written left behind
        raise
    return parent


def resume_replicas(parent: Path, overrides: dict[str, Any] | None = None) -> Path:
    """Resume every replica of the replicated run in ``parent`` (``overrides`` apply to all)."""
    parent = Path(parent)
    names = (yaml.safe_load((parent / INDEX).read_text()) or {}).get("replicas")
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{parent / INDEX}: expected 'replicas: [names]'")
    run_dirs = [parent / name for name in names]
    if overrides:
        _refuse_collapsing_points(parent, names, [resume_config(d) for d in run_dirs],
                                  overrides)
    configs = [resume_config(run_dir, overrides) for run_dir in run_dirs]
    for key in SHARED_RUN_KEYS:  # e.g. one replica resumed alone with more epochs
        values = {name: getattr(config, key) for name, config in zip(names, configs)}
        if len(set(values.values())) > 1:
            listed = ", ".join(f"{name}: {value}" for name, value in values.items())
            raise ConfigError(f"{parent}: key '{key}' differs between its replicas ({listed}); "
                              f"give one for all: `mannrl train --resume {parent} {key}=...`")
    check_device(configs)
    # a replica killed before its first checkpoint starts again from its seed
    states = [resumed_state(run_dir, config) if (run_dir / "checkpoint.pt").exists() else None
              for run_dir, config in zip(run_dirs, configs)]
    _train(configs, _tasks(configs), run_dirs, states, new_run=False)
    return parent


def _refuse_collapsing_points(parent: Path, names: list[str], saved: list[Config],
                              overrides: dict[str, Any] | None) -> None:
    """ConfigError for an override of a key the replicas' points vary (``replicas=[{lr:
    ...}, ...]``): one value for all would make the points one, under names that still say
    otherwise."""
    for key in sorted(set(overrides or {}) & set(POINT_KEYS)):  # device: SHARED_RUN_KEYS
        values = {name: getattr(config, key) for name, config in zip(names, saved)}
        if len({repr(v) for v in values.values()}) > 1:
            listed = ", ".join(f"{name}: {value}" for name, value in list(values.items())[:4])
            raise ConfigError(f"{parent}: key '{key}' is what its replicas vary ({listed}); "
                              f"one value for all would make them one point under their old "
                              f"names: resume without it (a point with another {key} is a new "
                              f"run: `mannrl train {parent / names[0] / 'config.yaml'} "
                              f"{key}=... run_name=NAME`)")


def _tasks(configs: list[Config]) -> list:
    """One task per distinct data config (seeds draw Logic's data; sweep points share it)."""
    built: dict[str, Any] = {}
    data_keys = ("task", "seed", "data_path", "val_path", "num_sequences")
    tasks = []
    check_online_login(configs[0])  # before any data is built or anything written
    # 1,024 seeds build 1,024 data sets before the first epoch: minutes, shown on a terminal
    bar = tqdm(configs, desc="data sets", unit="replica", leave=False, mininterval=1.0,
               disable=None if configs[0].progress and len(configs) > 1 else True)
    for config in bar:
        key = repr([getattr(config, k) for k in data_keys])
        if key not in built:
            built[key] = build_task(config)
        check_trainable(config, built[key])
        tasks.append(built[key])
    return tasks


def _train(configs: list[Config], tasks: list, run_dirs: list[Path],
           states: list[dict[str, Any] | None], new_run: bool) -> None:
    configs = [with_absolute_paths(config) for config in configs]  # see trainer._train
    keep_freed_memory()  # no page faults an update (mannrl_gym.allocator)
    with limit_threads(configs[0].num_threads), contextlib.ExitStack() as held:
        for run_dir, config in zip(run_dirs, configs):
            held.enter_context(rundir.claim(run_dir, new_run=new_run, source=config.source))
        _run(configs, tasks, run_dirs, states)


def _run(configs: list[Config], tasks: list, run_dirs: list[Path],
         states: list[dict[str, Any] | None]) -> None:
    device = configs[0].device
    replicated = ReplicatedExperiment(configs, tasks, None if device == "cpu" else device)
    trackers: list[Tracker] = []
    done = [state["epoch"] if state else 0 for state in states]  # each replica's epochs
    epoch = min(done)
    if "selected" in tasks[0].details:  # the sentence tasks' chosen lengths
        tqdm.write(f"data: {tasks[0].details['selected']}")
    if note := beyond_cores_note(configs[0].num_threads):
        tqdm.write(f"threads: {note}")
    ahead = [f"{run_dir.name} after {count}" for run_dir, count in zip(run_dirs, done)
             if count > epoch]  # a stop between two replicas' checkpoints
    tqdm.write(f"runs: {run_dirs[0].parent}/ ({', '.join(d.name for d in run_dirs)})"
               + (f", resumed after epoch {epoch}" if any(states) else "")
               + (f" ({', '.join(ahead)}: waiting while the others catch up)" if ahead else ""))
    try:
        logs = []
        for k, (config, task, run_dir) in enumerate(zip(configs, tasks, run_dirs)):
            state = states[k]
            trackers.append(Tracker(config, run_dir, state["wandb_id"] if state else None,
                                    alongside=True))
            logs.append(RunLog(config, task, run_dir, state, trackers[-1],
                               replicated.experiments[k]))
        epochs = configs[0].epochs
        line_clock = trainer_module.LineClock()
        first = min(log.start_epoch for log in logs)
        # replicas stop together at max_minutes: one spent (a resume) leaves them all spent
        for epoch in range(first, first if any(log.spent for log in logs) else epochs):
            stopping.raise_if_requested()  # a stop whose raise was lost (mannrl_gym.stopping)
            running = [log.start_epoch <= epoch for log in logs]  # a replica behind catches up
            tic = time.perf_counter()
            stats = replicated.run_epoch(epoch, f"epoch {epoch + 1}/{epochs} "
                                                f"({sum(running)} replicas)", running)
            seconds = time.perf_counter() - tic
            stop = any(log.out_of_time(seconds) for log, go in zip(logs, running) if go)
            rows = []
            for k, log in enumerate(logs):
                if running[k]:
                    log.finish_epoch(epoch, stats[k], seconds, stop=stop, announce=False)
                    rows.append(log.last_row)
            evaluated = any("train/f1" in row for row in rows)  # progress=false: as a single run
            if (configs[0].progress or evaluated or epoch + 1 == epochs or stop
                    or line_clock.quiet()):  # as a single run, a line when silent a while
                eta = None if stop else max(log.eta_seconds(epoch) for log, go
                                            in zip(logs, running) if go)
                epoch_line(progress_line(epoch, rows, seconds, eta))
                line_clock.printed()
            if stop:
                tqdm.write(f"stopping: max_minutes={configs[0].max_minutes} reached")
                break
    except KeyboardInterrupt:
        raise Interrupted(run_dirs[0].parent, epoch + 1) from None
    finally:
        for tracker in trackers:
            tracker.finish()
    for log in logs:
        log.close()


def _spread(rows: list[dict[str, Any]], key: str) -> str:
    values = [row[key] for row in rows if row.get(key) is not None]
    if not values:
        return "  n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def progress_line(epoch: int, rows: list[dict[str, Any]], seconds: float,
                  eta_seconds: float | None = None) -> str:
    """One line for all replicas' epoch: mean [min, max] over replicas, replica-steps/s, then
    the estimated time left (``ETA``, the slowest replica's) while epochs remain."""
    replica_steps = sum(row.get("train_steps_per_s") or 0.0 for row in rows)
    noun = "replica" if len(rows) == 1 else "replicas"
    return (f"epoch {epoch + 1:4d}  {len(rows)} {noun}  train f1 {_spread(rows, 'train/f1')}"
            f"  |  val f1 {_spread(rows, 'validation/f1')}  answer "
            f"{_spread(rows, 'validation/answer_acc')}  {replica_steps:.0f} replica-steps/s, "
            f"{seconds:.1f} s training"
            + (f"  ETA {format_duration(eta_seconds)}" if eta_seconds else ""))
