"""The `mannrl train` loop: agent and env step together, evaluate every epoch, keep everything.

A run directory holds ``config.yaml``, ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt``
(after every epoch, written atomically), ``summary.json`` and wandb's files. A killed run
resumes from its last checkpoint and ends with the same metrics as one never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from mannrl_gym import checkpoint
from mannrl_gym.config import Config, ConfigError, from_mapping
from mannrl_gym.experiments import make_experiment
from mannrl_gym.tasks import build_task
from mannrl_gym.tracking import Tracker

F1_TARGET = 0.99


def new_run_dir(config: Config) -> Path:
    name = config.run_name or f"{config.task}-{config.agent}-seed{config.seed}-" \
                              f"{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(config.out_dir) / name
    if (run_dir / "checkpoint.pt").exists():
        raise ConfigError(f"{config.source}: run directory {run_dir} already holds a run; resume "
                          f"it with `mannrl train --resume {run_dir}` or choose another run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def load_run_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The config saved in ``run_dir``, with ``overrides`` (e.g. more epochs) applied."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no run to resume here (config.yaml missing)")
    data = yaml.safe_load(path.read_text())
    return from_mapping({**data, **(overrides or {})}, source=str(path))


def train(config: Config, run_dir: Path | None = None, resume: bool = False) -> Path:
    """Run (or resume) the experiment ``config`` describes; return the run directory."""
    torch.set_num_threads(config.num_threads)
    with threadpool_limits(limits=config.num_threads):  # BLAS threads thrash on small matrices
        return _train(config, run_dir, resume)


def _train(config: Config, run_dir: Path | None, resume: bool) -> Path:
    task = build_task(config)  # bad data fails here, before anything is written
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, metrics = run_dir / "checkpoint.pt", checkpoint.MetricsLog(run_dir / "metrics.jsonl")
    state = checkpoint.load(ckpt_path) if resume and ckpt_path.exists() else None
    tracker = Tracker(config, run_dir, state["wandb_id"] if state else None)
    swept = tracker.sweep_overrides()  # a wandb sweep agent's values win over the file's
    if swept:
        config = from_mapping({**config.to_dict(), **swept}, source=f"{config.source} + wandb.config")
        task = build_task(config)
    experiment = make_experiment(config, task)

    start_epoch, elapsed = 0, 0.0
    if state is not None:
        experiment.load_state_dict(state["experiment"])
        start_epoch, elapsed = int(state["epoch"]), float(state["elapsed"])
        metrics.keep_through(start_epoch)
    else:
        checkpoint.atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict()))
        metrics.keep_through(0)
    if start_epoch >= config.epochs:
        print(f"{run_dir}: all {config.epochs} epochs are done; pass epochs=N to train further")
    try:
        for epoch in range(start_epoch, config.epochs):
            tic = time.perf_counter()
            stats = experiment.run_epoch(epoch, f"epoch {epoch + 1}/{config.epochs}")
            experiment.check_finite(f"after epoch {epoch + 1}")
            row: dict[str, Any] = {"epoch": epoch + 1}
            out_of_time = (config.max_minutes is not None
                           and (elapsed + time.perf_counter() - tic) / 60 >= config.max_minutes)
            if epoch + 1 == config.epochs or out_of_time or (epoch + 1) % config.eval_every == 0:
                row.update(experiment.evaluate())
            elapsed += time.perf_counter() - tic
            row.update(stats, epoch_seconds=time.perf_counter() - tic, minutes=elapsed / 60)
            row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            metrics.append(row)
            tracker.log(row)
            checkpoint.save(ckpt_path, {"epoch": epoch + 1, "elapsed": elapsed,
                                        "config": config.to_dict(), "wandb_id": tracker.run_id,
                                        "experiment": experiment.state_dict()})
            if "train/f1" in row:
                tqdm.write(_progress_line(row))
            if out_of_time:
                tqdm.write(f"stopping: {elapsed / 60:.1f} min reached max_minutes={config.max_minutes}")
                break
    finally:
        tracker.finish()
    write_summary(run_dir, metrics.read(), task)
    return run_dir


def _progress_line(row: dict[str, Any]) -> str:
    def fmt(key: str) -> str:
        value = row.get(key)
        return "  n/a" if value is None else f"{value:.3f}"
    return (f"epoch {row['epoch']:4d}  {row['minutes']:6.2f} min  train f1 {fmt('train/f1')} "
            f"answer {fmt('train/answer_acc')} long {fmt('train/long_range_acc')}  |  "
            f"val f1 {fmt('validation/f1')} answer {fmt('validation/answer_acc')}"
            + (f"  exact {fmt('train/answer_exact')}" if "train/answer_exact" in row else "")
            + (f"  {row['train_steps_per_s']:.0f} steps/s" if row.get("train_steps_per_s") else ""))


def first_stable_epoch(rows: list[dict[str, Any]], key: str, threshold: float) -> dict | None:
    """The first row from which ``key`` stays >= threshold until the last row (or None)."""
    found = None
    for row in rows:
        if key not in row:  # an epoch without evaluation (eval_every > 1)
            continue
        value = row.get(key)
        if value is not None and value >= threshold:
            found = found or row
        else:
            found = None
    return found


def write_summary(run_dir: Path, rows: list[dict[str, Any]], task=None) -> dict[str, Any]:
    """Write ``summary.json``: the data, the last epoch's metrics and when F1 first reached
    0.99 for good."""
    summary: dict[str, Any] = {"epochs": len(rows)}
    if task is not None:
        summary["data"] = {"task": task.name, "train_sequences": len(task.train),
                           "train_tokens": task.train.num_tokens,
                           "validation_sequences": len(task.validation),
                           "validation_tokens": task.validation.num_tokens,
                           "unknown_words": len(task.unknown_words),
                           "unknown_word_examples": list(task.unknown_words[:20]),
                           **task.details}
    if rows:
        summary["final"] = rows[-1]
        for key in ("train/f1", "validation/f1", "train/answer_acc", "validation/answer_acc"):
            stable = first_stable_epoch(rows, key, F1_TARGET)
            summary[f"{key} >= {F1_TARGET} from"] = (
                {"epoch": stable["epoch"], "minutes": stable["minutes"]} if stable else None)
    checkpoint.atomic_write_text(Path(run_dir) / "summary.json", json.dumps(summary, indent=2))
    return summary
