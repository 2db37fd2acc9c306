"""Where a batched step of K replicas spends its CPU time (Logic, Table 1, B = 16).

One training pass of K seeds (``ReplicatedExperiment.run_epoch``), with a CPU-time counter
(``time.process_time``) wrapped around each part; a table of CPU microseconds per batched
step. Parts nest (A's step inside the env's step, the memory-net updates inside observe),
so they do not add up; the counters themselves cost about a microsecond per call.

    OMP_NUM_THREADS=1 python benchmarks/replicas_parts.py [--replicas 8] [--agent mannrl]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.replicas import base_config  # noqa: E402
from mannrl_gym.agents.mannrl_agent import MannRLAgent  # noqa: E402
from mannrl_gym.agents.memory_update import NumpyMemoryUpdate  # noqa: E402
from mannrl_gym.envs.replicated_env import ReplicatedVectorEnv  # noqa: E402
from mannrl_gym.replicas.agents import ReplicatedAgents  # noqa: E402
from mannrl_gym.replicas.experiment import ReplicatedExperiment  # noqa: E402
from mannrl_gym.stacked_learners import StackedLearners  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402

PARTS = [  # (class, method, label)
    (ReplicatedVectorEnv, "step", "env step (A's step included)"),
    (StackedLearners, "train_step", "  A's batched training step"),
    (StackedLearners, "_clip", "    gradient-norm clipping"),
    (StackedLearners, "_adam", "    Adam"),
    (ReplicatedVectorEnv, "_replica_steps", "  steps run per replica (pass start, tail)"),
    (ReplicatedAgents, "act", "agents' act"),
    (ReplicatedAgents, "observe", "agents' observe (updates included)"),
    (MannRLAgent, "learn", "  memory-net updates"),
    (NumpyMemoryUpdate, "_forward", "    f's forward"),
    (NumpyMemoryUpdate, "_backward", "    f's backward"),
    (NumpyMemoryUpdate, "_step", "    RMSprop"),
]


def timed(method, label: str, seconds: Counter):
    def wrapper(*args, **kwargs):
        tic = time.process_time()
        result = method(*args, **kwargs)
        seconds[label] += time.process_time() - tic
        return result
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--agent", default="mannrl")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    seconds: Counter = Counter()
    for cls, name, label in PARTS:
        setattr(cls, name, timed(getattr(cls, name), label, seconds))
    base = base_config(args.agent)
    configs = [replace(base, seed=seed) for seed in range(args.replicas)]
    experiment = ReplicatedExperiment(configs, [build_task(c) for c in configs])
    seconds.clear()
    tic = time.process_time()
    experiment.run_epoch(0, "parts")
    total = time.process_time() - tic
    steps = experiment.env.steps_per_pass - 1
    print(f"K = {args.replicas} replicas, agent {args.agent}: {steps} batched steps, "
          f"{total / steps * 1e6:.0f} CPU us per batched step in all (counters included)\n")
    print(f"{'part':45s} {'us/step':>8s} {'share':>6s}")
    for _, _, label in PARTS:
        print(f"{label:45s} {seconds[label] / steps * 1e6:8.1f} {seconds[label] / total:6.0%}")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
