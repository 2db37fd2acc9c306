"""Example: Stable-Baselines3's SAC as the memory-net on Logic, reported like the paper's agent.

    python -m mannrl_gym.agents.sac_memory --steps 20000 [key=value ...]

Trains SAC on the batched env (16 slots sharing one action network), then evaluates with the
trainer's evaluation and prints the same metrics (F1, answer accuracy, long-range) beside
the paper's agent trained for the same number of env steps.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from stable_baselines3 import SAC

from mannrl_gym.agents import make_agent
from mannrl_gym.agents.sb3 import SB3MemoryAgent, SB3VecEnv
from mannrl_gym.config import Config, ConfigError, from_mapping, parse_overrides
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.evaluation import evaluate_splits, evaluation_envs
from mannrl_gym.rollout import train_steps
from mannrl_gym.tasks import build_task


def train_sac(config: Config, steps: int, **sac_kwargs) -> tuple[dict[str, float], float]:
    """Train SAC for ``steps`` env steps; return (metrics, seconds)."""
    task = build_task(config)
    env = MannRLVectorEnv(task, config, config.batch_size)
    venv = SB3VecEnv(env)
    venv.seed(config.seed)
    kwargs = {"learning_starts": 1000, "batch_size": 256, "train_freq": 1, "gradient_steps": 1,
              "seed": config.seed, "verbose": 0, **sac_kwargs}
    model = SAC("MlpPolicy", venv, **kwargs)
    tic = time.perf_counter()
    model.learn(total_timesteps=steps * config.batch_size)
    seconds = time.perf_counter() - tic
    metrics = evaluate_splits(evaluation_envs(task, config, env.learner), SB3MemoryAgent(model),
                              config.bn_statistics)
    return metrics, seconds


def train_paper_agent(config: Config, steps: int) -> tuple[dict[str, float], float]:
    """The paper's agent for the same number of env steps."""
    task = build_task(config)
    env = MannRLVectorEnv(task, config, config.batch_size)
    agent = make_agent(config, env.layout, config.batch_size)
    tic = time.perf_counter()
    train_steps(env, agent, steps, seed=config.seed)
    seconds = time.perf_counter() - tic
    return evaluate_splits(evaluation_envs(task, config, env.learner), agent,
                           config.bn_statistics), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=20000, help="env steps (batches of 16)")
    parser.add_argument("overrides", nargs="*", help="config key=value")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    torch.set_num_threads(1)
    try:
        config = from_mapping({"wandb_mode": "disabled", **parse_overrides(args.overrides)},
                              source="command line")
    except ConfigError as exc:
        parser.error(str(exc))
    rows = {"SAC (SB3)": train_sac(config, args.steps),
            "MANN-RL (paper agent)": train_paper_agent(config, args.steps)}
    keys = ["train/f1", "train/answer_acc", "train/long_range_acc", "validation/f1",
            "validation/answer_acc"]
    print(f"{config.task}, {args.steps} env steps of {config.batch_size} slots\n")
    print(f"{'memory-net':24s} {'seconds':>8s} " + " ".join(f"{k:>22s}" for k in keys))
    for name, (metrics, seconds) in rows.items():
        print(f"{name:24s} {seconds:8.1f} " + " ".join(  # a metric the task has not: "-"
            f"{metrics[k]:22.3f}" if metrics.get(k) is not None and not math.isnan(metrics[k])
            else f"{'-':>22s}" for k in keys))


if __name__ == "__main__":
    main()
