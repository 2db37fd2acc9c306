"""Speed benchmark for Logic (Table 1, B = 16): batched steps per second of env + agent.

Rows:
  trainer            MannRLExperiment.run_epoch: the env + agent loop as ``mannrl train`` runs
                     it (progress, running loss), whole passes, evaluation excluded
  env + agent        the trainer's inner loop: MannRLVectorEnv.step + MannRLAgent act/observe
  floor (same nets)  a bare loop of the same two networks' work (A's training step, f's
                     forward, f's updates every settle + history steps) on fixed tensors,
                     with no environment, data stream, checks or info around it
  plain PyTorch      the same work written the usual way: nn.Module, autograd,
                     torch.optim.Adam / RMSprop, clip_grad_norm_ (no environment)
  reference          the paper's code on this machine, measured 2026-11-25 (661/s)

    python benchmarks/logic_speed.py [--steps 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.agents import MannRLAgent  # noqa: E402
from mannrl_gym.config import Config  # noqa: E402
from mannrl_gym.envs import MannRLVectorEnv  # noqa: E402
from mannrl_gym.experiments import MannRLExperiment  # noqa: E402
from mannrl_gym.networks import ActionNet, MemoryNet  # noqa: E402
from mannrl_gym.rollout import train_steps  # noqa: E402
from mannrl_gym.supervised import ActionLearner  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402

REFERENCE_STEPS_PER_S = 661.0  # the paper's code on this machine, measured 2026-11-25 (not rerun here)
REFERENCE_ROW = "paper's code (2026-11-25)*"


def env_and_agent(config: Config, steps: int) -> float:
    env = MannRLVectorEnv(build_task(config), config, num_envs=config.batch_size)
    agent = MannRLAgent(env.layout, config, config.batch_size, config.seed)
    tic = time.perf_counter()
    train_steps(env, agent, steps, seed=0)  # the first reset inside the timing (milliseconds)
    return steps / (time.perf_counter() - tic)


def trainer_loop(config: Config, steps: int) -> float:
    """``MannRLExperiment.run_epoch`` (what ``mannrl train`` runs between evaluations), over
    whole passes until ``steps`` batched steps are done; evaluation excluded."""
    experiment = MannRLExperiment(replace(config, progress=False), build_task(config))
    done, seconds, epoch = 0, 0.0, 0
    while done < steps:
        tic = time.perf_counter()
        experiment.run_epoch(epoch, "speed")
        seconds += time.perf_counter() - tic
        done += experiment.env.steps_per_pass - 1
        epoch += 1
    return done / seconds


def _batch(config: Config, rng: np.random.Generator):
    features = np.eye(11, dtype=np.float32)[rng.integers(0, 11, config.batch_size)]
    memory = rng.random((config.batch_size, config.memory_size), dtype=np.float32)
    targets = rng.integers(0, 11, config.batch_size)
    return features, memory, targets


def floor_same_nets(config: Config, steps: int) -> float:
    """A's NumPy step + f's act + f's updates, on fixed arrays; no env."""
    rng = np.random.default_rng(0)
    learner = ActionLearner(11, config.memory_size, config.hidden_size, 11, config.lr,
                            config.clipping, config.double_softmax, seed=0)
    from mannrl_gym.envs.core import ObservationLayout
    layout = ObservationLayout(config.memory_size, 11, 11)
    agent = MannRLAgent(layout, config, config.batch_size, 0)
    features, memory, targets = _batch(config, rng)
    state = np.concatenate([memory, features, np.zeros_like(features)], axis=1)
    for _ in range(config.history):
        live = np.ones(config.batch_size, bool)
        agent.replay.push(state, np.zeros(config.batch_size, np.float32), live, live)
    cycle = config.settle + config.history
    tic = time.perf_counter()
    for step in range(steps):
        memory = agent.act(state)
        learner.train_step(features, memory, targets)
        if step % cycle == cycle - 1:
            agent.learn()
    return steps / (time.perf_counter() - tic)


def plain_pytorch(config: Config, steps: int) -> float:
    """The same per-step work with nn.Module, autograd and torch.optim; no env."""
    rng = np.random.default_rng(0)
    features, memory, targets = (torch.from_numpy(a) for a in _batch(config, rng))
    action = ActionNet(11, config.memory_size, config.hidden_size, 11, softmax_output=True)
    memory_net = MemoryNet(config.memory_size, 11, 11)
    optimizer = torch.optim.Adam(action.parameters(), lr=config.lr)
    memory_optimizer = torch.optim.RMSprop(memory_net.parameters(), lr=config.memory_lr)
    state = torch.cat([memory, features, torch.zeros_like(features)], dim=1)
    pairs = state.repeat(config.memory_samples, 1)
    cycle = config.settle + config.history
    tic = time.perf_counter()
    for step in range(steps):
        memory_net.eval()
        with torch.no_grad():
            memory = memory_net(state)
        action.train()
        scores = action(features, memory)
        loss = nn.functional.cross_entropy(scores, targets)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(action.parameters(), config.clipping)
        optimizer.step()
        if step % cycle == cycle - 1:
            memory_net.train()
            for _ in range(config.memory_train_iterations):
                target = config.gamma * memory_net(pairs) - 1.0
                mem_loss = nn.functional.smooth_l1_loss(memory_net(pairs), target)
                memory_optimizer.zero_grad()
                mem_loss.backward()
                nn.utils.clip_grad_norm_(memory_net.parameters(), config.memory_clipping)
                memory_optimizer.step()
    return steps / (time.perf_counter() - tic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per row")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS threads thrash on small matrices
    config = Config(wandb_mode="disabled").validate()
    rows = {}
    for name, bench in [("trainer (run_epoch)", trainer_loop), ("env + agent", env_and_agent),
                        ("floor (same nets, no env)", floor_same_nets),
                        ("plain PyTorch (no env)", plain_pytorch)]:
        bench(config, 500)  # warm up
        rows[name] = max(bench(config, args.steps) for _ in range(args.repeats))
    rows[REFERENCE_ROW] = REFERENCE_STEPS_PER_S
    floor = rows["floor (same nets, no env)"]
    print(f"Logic speed, Table 1, B={config.batch_size}, {args.steps} steps, best of "
          f"{args.repeats}, torch {torch.__version__}, 1 thread\n")
    print(f"{'loop':28s} {'steps/s':>9s} {'us/step':>8s} {'x floor':>8s} {'x reference':>12s}")
    for name, rate in rows.items():
        print(f"{name:28s} {rate:9.0f} {1e6 / rate:8.0f} {floor / rate:8.2f} "
              f"{rate / REFERENCE_STEPS_PER_S:12.2f}")
    print(f"\n* {REFERENCE_ROW[:-1]}: a figure measured on that date (neuralmemory's own "
          f"loop, same machine), quoted, not measured in this run")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
