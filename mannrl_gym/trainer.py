"""The `mannrl train` loop: agent and env step together, evaluate every epoch, keep everything.

A run directory holds ``config.yaml``, ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt``
(after every epoch, written atomically), ``summary.json`` and wandb's files. A killed run
resumes from its last checkpoint and ends with the same metrics as one never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from mannrl_gym import checkpoint
from mannrl_gym.agents import make_agent
from mannrl_gym.config import Config, ConfigError, from_mapping
from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.evaluation import evaluate_splits, evaluation_envs
from mannrl_gym.numerics import non_finite_tensors, raise_non_finite
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


def restore(state: dict[str, Any], env: MannRLVectorEnv, agent) -> None:
    """Put a checkpoint's networks, optimizer states and data-order RNG into ``env``/``agent``."""
    env.learner.load_state_dict(state["learner"])
    agent.load_state_dict(state["agent"])
    env._generator.set_state(state["env_generator"])


def train(config: Config, run_dir: Path | None = None, resume: bool = False) -> Path:
    """Run (or resume) the experiment ``config`` describes; return the run directory."""
    torch.set_num_threads(config.num_threads)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, metrics = run_dir / "checkpoint.pt", checkpoint.MetricsLog(run_dir / "metrics.jsonl")

    task = build_task(config)
    env = MannRLVectorEnv(task, config, num_envs=config.batch_size)
    agent = make_agent(config, env.layout, config.batch_size)
    evaluators = evaluation_envs(task, config, env.learner)

    start_epoch, elapsed, wandb_id = 0, 0.0, None
    if resume and ckpt_path.exists():
        state = checkpoint.load(ckpt_path)
        env.reset(seed=config.seed)  # as a fresh run does; then overwrite with the saved state
        restore(state, env, agent)
        start_epoch, elapsed, wandb_id = int(state["epoch"]), float(state["elapsed"]), state["wandb_id"]
        metrics.keep_through(start_epoch)
    else:
        checkpoint.atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict()))
        metrics.keep_through(0)
        env.reset(seed=config.seed)  # draws A's weights from the seed before the first epoch
    if start_epoch >= config.epochs:
        print(f"{run_dir}: all {config.epochs} epochs are done; pass epochs=N to train further")
    tracker = Tracker(config, run_dir, wandb_id)

    steps_done = 0
    try:
        for epoch in range(start_epoch, config.epochs):
            tic = time.perf_counter()
            observation, _ = env.reset()
            train_loss = 0.0
            bar = tqdm(total=env.steps_per_pass - 1, desc=f"epoch {epoch + 1}/{config.epochs}",
                       unit="step", leave=False, disable=not config.progress, mininterval=1.0)
            memory_loss = []
            for step in range(env.steps_per_pass - 1):
                observation, reward, _, _, info = env.step(agent.act(observation))
                stats = agent.observe(observation, reward, info)
                if stats is not None:
                    memory_loss.append(stats["memory_loss"])
                train_loss += float(info["loss"].sum())
                if step % 512 == 511:
                    bar.update(512)
            bar.close()
            steps_done = env.steps_per_pass - 1
            train_seconds = time.perf_counter() - tic
            for owner, module in (("action network", env.learner.net),
                                  ("memory-net", getattr(agent, "net", None))):
                if module is not None and non_finite_tensors(module):
                    raise_non_finite(owner, f"after epoch {epoch + 1}", "a weight", module)
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update(evaluate_splits(evaluators, agent, config.bn_statistics))
            elapsed += time.perf_counter() - tic
            row.update({"train_steps_per_s": steps_done / train_seconds,
                        "epoch_seconds": time.perf_counter() - tic, "minutes": elapsed / 60,
                        "memory_loss": sum(memory_loss) / len(memory_loss) if memory_loss else None,
                        "train_loss_running": float(train_loss) / max(1, steps_done * config.batch_size)})
            row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            metrics.append(row)
            tracker.log(row)
            checkpoint.save(ckpt_path, {
                "epoch": epoch + 1, "elapsed": elapsed, "config": config.to_dict(),
                "learner": env.learner.state_dict(), "agent": agent.state_dict(),
                "env_generator": env._generator.get_state(), "wandb_id": tracker.run_id})
            tqdm.write(_progress_line(row))
            if config.max_minutes is not None and elapsed / 60 >= config.max_minutes:
                tqdm.write(f"stopping: {elapsed / 60:.1f} min reached max_minutes={config.max_minutes}")
                break
    finally:
        tracker.finish()
    write_summary(run_dir, metrics.read())
    return run_dir


def _progress_line(row: dict[str, Any]) -> str:
    def fmt(key: str) -> str:
        value = row.get(key)
        return "  n/a" if value is None else f"{value:.3f}"
    return (f"epoch {row['epoch']:4d}  {row['minutes']:6.2f} min  train f1 {fmt('train/f1')} "
            f"answer {fmt('train/answer_acc')} long {fmt('train/long_range_acc')}  |  "
            f"val f1 {fmt('validation/f1')} answer {fmt('validation/answer_acc')}  "
            f"{row['train_steps_per_s']:.0f} steps/s")


def first_stable_epoch(rows: list[dict[str, Any]], key: str, threshold: float) -> dict | None:
    """The first row from which ``key`` stays >= threshold until the last row (or None)."""
    found = None
    for row in rows:
        value = row.get(key)
        if value is not None and value >= threshold:
            found = found or row
        else:
            found = None
    return found


def write_summary(run_dir: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Write ``summary.json``: last epoch's metrics and when F1 first reached 0.99 for good."""
    summary: dict[str, Any] = {"epochs": len(rows)}
    if rows:
        summary["final"] = rows[-1]
        for key in ("train/f1", "validation/f1", "train/answer_acc", "validation/answer_acc"):
            stable = first_stable_epoch(rows, key, F1_TARGET)
            summary[f"{key} >= {F1_TARGET} from"] = (
                {"epoch": stable["epoch"], "minutes": stable["minutes"]} if stable else None)
    checkpoint.atomic_write_text(Path(run_dir) / "summary.json", json.dumps(summary, indent=2))
    return summary


def with_overrides(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` with ``changes``, validated."""
    return replace(config, **changes).validate()
