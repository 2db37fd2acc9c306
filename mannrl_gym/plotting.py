"""``mannrl plot``: learning curves of runs side by side, and what the memory holds.

curves.png   F1 and answer accuracy per epoch, train and validation, one line per run
             (MANN-RL beside its ablations when given several run directories).
memory.png   the memory vector at every step of one sequence (rows: memory units, columns:
             steps labelled input -> A's output), for the first run given when it has a
             memory agent (not for the LSTM or most-frequent-tag baselines).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mannrl_gym import agent_registry, checkpoint
from mannrl_gym.agents import make_agent
from mannrl_gym.config import Config, ConfigError, as_saved, path_parts, read_yaml
from mannrl_gym.errors import DataError, not_a_run_dir
from mannrl_gym.figure_backend import pyplot
from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.replicas.spec import POINT_KEYS
from mannrl_gym.rollout import rollout
from mannrl_gym.rundir import load_run, load_run_config
from mannrl_gym.tasks import build_task
from mannrl_gym.tasks.base import Task

PANELS = [("train/f1", "train F1 (all steps)"), ("validation/f1", "validation F1"),
          ("train/answer_acc", "train answer accuracy"),
          ("validation/answer_acc", "validation answer accuracy")]
SWITCHES = tuple(dict.fromkeys(("task", "data_path", "seed", "double_softmax",
                                 "carry_memory", *POINT_KEYS)))


def _label(config: dict, others: list[dict]) -> str:
    """The agent, plus every switch (seed, sweep keys) whose value differs between the runs
    plotted."""
    parts = [config["agent"]]
    parts += [f"{k}={_short(config[k])}" for k in SWITCHES
              if k in config and len({str(o.get(k)) for o in others}) > 1]
    return ", ".join(parts)


def _short(value) -> str:
    """A legend's value: floats to 3 significant digits (5.3138726699706024e-05 -> 5.31e-05),
    paths by their file names (pg.en, not /home/.../pg.en)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, str) and os.sep in value:
        return os.pathsep.join(Path(part).name for part in path_parts(value))
    return str(value)


def _ordinal(n: int) -> str:
    """2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# keys a resume may change that change nothing computed, or only how long it runs
UNPLOTTED_CHANGES = ("epochs", "max_minutes", "num_threads", "eval_every", "progress",
                     "wandb_mode", "wandb_project", "out_dir", "run_name")


def resumed_changes(run_dir: Path) -> list[str]:
    """What a run's resumes changed that changes what it computes (``resumes.jsonl``; a
    resume that only extends the run is left out): ``lr 0.0001→0.0003 at epoch 200``, one
    per key and resume. Its config.yaml holds only the last values."""
    said = []
    for resume in checkpoint.MetricsLog(run_dir / "resumes.jsonl").read():
        for key, change in (resume.get("changed") or {}).items():
            if key not in UNPLOTTED_CHANGES and isinstance(change, dict):
                said.append(f"{key} {_short(change.get('from'))}→{_short(change.get('to'))} "
                            f"at epoch {resume.get('at_epoch')}")
    return said


def _labels(run_dirs: list[Path], configs: list[dict]) -> list[str]:
    """One legend label per run (and what its resumes changed); runs whose labels would
    collide also show their directory."""
    labels = [_label(config, configs) for config in configs]
    labels = [f"{label} ({run_dir.name})" if labels.count(label) > 1 else label
              for label, run_dir in zip(labels, run_dirs)]
    return ["; ".join([label, *resumed_changes(run_dir)])
            for label, run_dir in zip(labels, run_dirs)]


def plot_curves(run_dirs: list[Path], path: Path) -> Path:
    plt = pyplot()
    fig = curves_figure(run_dirs)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_figure(run_dirs: list[Path]):
    """The 2 x 2 panels of curves.png. Each evaluated epoch is also drawn as a marker, so a
    run with one evaluated epoch (or evaluations apart, eval_every > 1) still shows."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    configs = [run_config(d) for d in run_dirs]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for run_dir, label in zip(run_dirs, _labels(run_dirs, configs)):
        rows = checkpoint.MetricsLog(run_dir / "metrics.jsonl").read()
        if not rows:  # else an empty curves.png, and no word why
            raise DataError(f"{run_dir / 'metrics.jsonl'}: no epoch logged yet; nothing to plot")
        for ax, (key, title) in zip(axes.flat, PANELS):
            # the epochs that hold the value: eval_every > 1 leaves the others without, and
            # a NaN between two evaluations would break the line into dots
            held = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None]
            epochs, values = zip(*held) if held else ((), ())
            ax.plot(epochs, values, label=label, marker="o", markersize=3)
            ax.set_title(title)
            ax.set_ylim(0, 1.01)
            ax.grid(alpha=0.3)
    low, high = axes[0, 0].get_xlim()
    if high - low < 2:  # one epoch: widen, or the locator falls back to fractional ticks
        middle = round((low + high) / 2)
        axes[0, 0].set_xlim(middle - 1, middle + 1)  # (the panels share x)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # below the panels, so that no curve hides under it
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # as many columns as the figure's width holds (about 7 px a character at size 8)
    width = fig.get_figwidth() * fig.dpi
    columns = max(1, min(len(labels), int(width // (7 * max(map(len, labels)) + 60))))
    rows = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, min(0.4, 0.035 * rows + 0.01), 1, 1))
    return fig


def run_config(run_dir: Path) -> dict:
    """The run's config (``config.yaml``) as plain data, not validated: curves need no data
    file, so a run whose files have moved still plots them."""
    data = read_yaml(Path(run_dir) / "config.yaml") if (Path(run_dir) / "config.yaml").is_file() \
        else None
    if not isinstance(data, dict):
        return load_run_config(run_dir).to_dict()  # its error names what is wrong
    return {**Config().to_dict(), **as_saved(data)}


def memory_trace(run_dir: Path, sequence: int | None = None):
    """Replay one training sequence through a run's last checkpoint.

    Returns (memory (T, M), input symbols, output symbols, targets) for the sequence ``sequence``
    of the training split, by default the longest one whose answer needs long-range memory.
    """
    saved = load_run(run_dir)
    config = saved.config
    task = build_task(config)
    data = task.train
    if sequence is not None and not 0 <= sequence < len(data):
        raise ConfigError(f"--sequence {sequence}: the training split of {run_dir} holds "
                          f"{len(data)} sequences, numbered 0 to {len(data) - 1}")
    if sequence is None:
        ends = data.offsets[1:] - 1
        candidates = torch.nonzero(data.long_range[ends]).squeeze(1)
        pool = candidates if candidates.numel() else torch.arange(len(data))
        sequence = int(pool[data.lengths[pool].argmax()])
    one = Task(task.name, task.input_symbols, task.output_symbols, task.input_table,
               train=data.subset(torch.tensor([sequence])), validation=task.validation)
    env = MannRLVectorEnv(one, config, num_envs=1, learn=False, shuffle=False)
    agent = make_agent(config, env.layout, config.batch_size)  # acts on any batch size
    env.learner.load_state_dict(saved.experiment_state["learner"])
    agent.load_state_dict(saved.experiment_state["agent"])
    memories, outputs, targets = [], [], []
    for observation, _, info, _ in rollout(env, agent):
        memories.append(observation[0, env.layout.memory])
        outputs.append(info["prediction"][0])
        targets.append(info["target"][0])
    inputs = env.stream.inputs[:, 0].tolist()
    names = task.input_symbols, task.output_symbols
    return (np.stack(memories), [names[0][i] for i in inputs], [names[1][i] for i in outputs],
            [names[1][i] for i in targets])


MAX_WIDTH_INCHES = 18  # memory.png: 1,980 px at 110 dpi, however long the sequence
MAX_TICKS = 80  # step labels drawn at most; every k-th step beyond


def no_memory_net(agent: str) -> str | None:
    """Why the heat map cannot replay a run of ``agent`` (not a memory agent, or a
    ``package.module:Class`` that cannot be imported here), or None when it can."""
    try:
        kind = agent_registry.resolve(agent).kind
    except ConfigError as cannot:
        return f"the run's key 'agent' {cannot}"
    except KeyError:
        return f"agent {agent!r} is not registered in this process (register_agent it first)"
    if kind != "memory_agent":
        return (f"{agent} has no memory-net (the heat map replays a memory agent's memory over "
                f"one sequence)")
    return None


def plot_memory(run_dir: Path, path: Path, sequence: int | None = None) -> Path:
    plt = pyplot()
    fig = memory_figure(*memory_trace(run_dir, sequence))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory_figure(memory: np.ndarray, inputs: list[str], outputs: list[str], targets: list[str]):
    """The heat map of memory.png: memory (T, M) over the steps of one sequence, at most
    MAX_WIDTH_INCHES wide; long sequences label every k-th step and shorten the title."""
    plt = pyplot()
    steps = len(inputs)
    fig, ax = plt.subplots(figsize=(min(MAX_WIDTH_INCHES, max(6, 0.45 * steps + 2)), 6))
    image = ax.imshow(memory.T, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    every = -(-steps // MAX_TICKS)  # ceil
    ticks = list(range(0, steps, every))
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{inputs[i]}→{outputs[i]}" + ("" if outputs[i] == targets[i]
                                                        else f" ({targets[i]})") for i in ticks],
                       rotation=90, fontsize=9 if every == 1 else 7)
    ax.set_xlabel("step: input → A's output (target where wrong)"
                  + (f"; every {_ordinal(every)} step labelled" if every > 1 else ""))
    ax.set_ylabel("memory unit")
    text, prefix = "".join(inputs), f"memory over one sequence ({steps} steps): "
    room = int(fig.get_figwidth() * 9) - len(prefix)  # characters that fit at 11 pt
    ax.set_title(prefix + (text if len(text) <= room else text[:room - 1] + "…"), fontsize=11)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


def plot(run_dirs: list[Path], out_dir: Path | None = None, sequence: int | None = None,
         say: Callable[[str], None] = lambda text: None) -> list[Path]:
    """Write curves.png and memory.png into ``out_dir`` (default: the first run directory);
    ``say`` tells why memory.png is not drawn (no memory agent, no checkpoint, its data
    files gone); where ``sequence`` asks for the heat map, the reason is an error."""
    unique: dict[Path, Path] = {}
    for run_dir in map(Path, run_dirs):  # each run once, in the order first given
        unique.setdefault(run_dir.resolve(), run_dir)
    run_dirs = list(unique.values())
    for run_dir in run_dirs:
        if not (run_dir / "metrics.jsonl").is_file() and (run_dir / "replicas.yaml").is_file():
            raise FileNotFoundError(f"{run_dir}: a replicated run (replicas.yaml); plot its "
                                    f"replicas' run directories: mannrl plot {run_dir}/*/")
        if not (run_dir / "metrics.jsonl").is_file():
            raise FileNotFoundError(f"{run_dir}: {not_a_run_dir(run_dir, 'metrics.jsonl')}")
    out_dir = Path(out_dir) if out_dir else run_dirs[0]
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a directory; give a folder")
    figures = {"curves.png": curves_figure(run_dirs)}  # every input read before any file is written
    agent = run_config(run_dirs[0])["agent"]
    if why := no_memory_net(agent):
        if sequence is not None:  # asked for: the reason is the answer
            raise ConfigError(f"--sequence {sequence}: {run_dirs[0]}: {why}")
        say(f"memory.png not drawn: {why}")
    elif not (run_dirs[0] / "checkpoint.pt").exists():
        say(f"memory.png not drawn: the heat map replays {run_dirs[0]}'s last checkpoint, "
            f"and it has none")
    else:
        try:  # the replay reads the run's data: gone or edited, curves alone
            figures["memory.png"] = memory_figure(*memory_trace(run_dirs[0], sequence))
        except (ConfigError, DataError) as unreadable:
            if sequence is not None:  # asked for: the reason is the answer
                raise
            say(f"memory.png not drawn: {unreadable}")
    out_dir.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    for name, fig in figures.items():
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
    return [out_dir / name for name in figures]
