"""How far back does the memory hold what was read? A linear probe of the memory vector.

For each lag k, a ridge-regression readout (closed form, one-hot targets) is fitted from the
memory m_t that A reads at step t to the character read at step t - k of the same sentence,
on 80% of the training sentences, and scored (argmax accuracy) on the other 20%. Writing a
sentence back needs lags of about its length (76 characters on average here); "chance" is
the share of the most frequent character. The memory comes from the memory-net of a run's
checkpoint, whatever agent wrote it (mannrl, frozen_memory, frozen_weights, es, pg, or your
own in AGENTS), or with no run from a fresh one (the frozen-memory ablation; Table 3's memory
learning rate of 1e-7 barely moves it). Any task: on Logic (sequences of 7 to 25 symbols)
use short lags. Where the task marks answer steps, a last line reads the answer itself
out of the memory A reads at each answer step.

    python benchmarks/memory_capacity.py [--run RUN_DIR] [--lags 1,2,4,8,16,32,64,96]
    python benchmarks/memory_capacity.py --run benchmarks/results/logic-issue16/es-s0 --lags 1,2,4,8,16
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym.agent_registry import memory_agent_names  # noqa: E402
from mannrl_gym.config import load  # noqa: E402
from mannrl_gym.experiments import MannRLExperiment  # noqa: E402
from mannrl_gym.rollout import rollout  # noqa: E402
from mannrl_gym.rundir import load_run  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402


def memory_pass(experiment: MannRLExperiment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One evaluation pass over the training split: memories (T, B, M), inputs and sequence
    ids (T, B), -1 where a slot is idle."""
    env, agent = experiment.evaluators["train"], experiment.agent
    memories, sequences = [], []
    for observation, _, info, _ in rollout(env, agent):
        memories.append(observation[:, env.layout.memory])
        sequences.append(info["sequence"])
    return np.stack(memories), env.stream.inputs.numpy(), np.stack(sequences)


def probe(memories, inputs, sequences, lag: int, is_char: np.ndarray, num_symbols: int,
          rng: np.random.Generator, rows: int = 40_000, ridge: float = 1.0) -> tuple[float, int]:
    """(held-out accuracy of the lag-k readout, number of (memory, character) pairs)."""
    same = (sequences[lag:] == sequences[:-lag]) & (sequences[lag:] >= 0)
    same &= is_char[inputs[:-lag]]
    t, b = np.nonzero(same)
    if t.size == 0:
        return float("nan"), 0
    x = memories[t + lag, b]
    y = inputs[t, b]
    held = (sequences[t + lag, b] % 5) == 0  # a fifth of the sentences, never fitted on
    return readout(x, y, held, num_symbols, rng, rows, ridge), int(t.size)


def readout(x: np.ndarray, y: np.ndarray, held: np.ndarray, num_classes: int,
            rng: np.random.Generator, rows: int = 40_000, ridge: float = 1.0) -> float:
    """Held-out argmax accuracy of a ridge readout from x (N, M) to classes y (N,), fitted on
    up to ``rows`` of the rows not ``held``."""
    fit = np.nonzero(~held)[0]
    fit = rng.choice(fit, min(rows, fit.size), replace=False)
    design = np.concatenate([x[fit], np.ones((fit.size, 1), np.float32)], 1).astype(np.float64)
    onehot = np.eye(num_classes)[y[fit]]
    weights = np.linalg.solve(design.T @ design + ridge * np.eye(design.shape[1]),
                              design.T @ onehot)
    test = np.concatenate([x[held], np.ones((int(held.sum()), 1), np.float32)], 1)
    return float(((test @ weights).argmax(1) == y[held]).mean())


def answer_probe(memories, stream, rng: np.random.Generator, num_outputs: int
                 ) -> tuple[float, float, int]:
    """(held-out accuracy, chance, count) of a readout from the memory A reads at each answer
    step to that step's target: does the memory hold the answer itself?"""
    t, b = np.nonzero(stream.answer.numpy())
    if t.size == 0:
        return float("nan"), float("nan"), 0
    y = stream.targets.numpy()[t, b]
    held = (stream.sequence.numpy()[t, b] % 5) == 0
    chance = np.bincount(y[held]).max() / max(1, int(held.sum()))
    return readout(memories[t, b], y, held, num_outputs, rng), float(chance), int(t.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", type=Path, help="a run directory of any memory-net agent (default: fresh f)")
    parser.add_argument("--config", default=str(ROOT / "configs/sentence.yaml"))
    parser.add_argument("--lags", default="1,2,4,8,16,32,64,96")
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides = {"wandb_mode": "disabled", "progress": False}
    saved = load_run(args.run, overrides) if args.run else None
    config = saved.config if saved else load(args.config, overrides)
    if config.agent not in memory_agent_names():
        parser.error(f"{args.run}: agent {config.agent!r} writes no memory vector to probe; "
                     f"choose a run of one of {memory_agent_names()}")
    task = build_task(config)
    experiment = MannRLExperiment.from_run(saved, task) if saved else MannRLExperiment(config, task)
    memories, inputs, sequences = memory_pass(experiment)
    is_char = np.array([not (s.startswith("<") and len(s) > 1) for s in task.input_symbols])
    chars = inputs[(sequences >= 0) & is_char[inputs]]
    chance = np.bincount(chars).max() / chars.size
    rng = np.random.default_rng(0)
    source = f"run {args.run}" if args.run else "a fresh memory-net (seed 0)"
    print(f"Linear probe of the memory ({config.memory_size} units) from {source}, "
          f"{task.name} training split; chance {chance:.3f}\n")
    print(f"{'lag':>5s} {'accuracy':>9s} {'pairs':>8s}")
    for lag in (int(k) for k in args.lags.split(",")):
        accuracy, pairs = probe(memories, inputs, sequences, lag, is_char, len(task.input_symbols),
                                rng)
        print(f"{lag:5d} {accuracy:9.3f} {pairs:8d}")
    accuracy, chance, count = answer_probe(memories, experiment.evaluators["train"].stream, rng,
                                           task.num_outputs)
    if count:
        print(f"\nanswer steps ({count}): readout of the answer from the memory A reads there "
              f"{accuracy:.3f} (chance {chance:.3f})")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
