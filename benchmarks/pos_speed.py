"""POS speed: tokens per second of training (env + paper agent, B = 16) and of evaluation
(eval_batch_size slots, nothing learned), beside the Logic floor from logic_speed.py.

    python benchmarks/pos_speed.py [--steps 5000] [--vectors PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.logic_speed import env_and_agent, floor_same_nets  # noqa: E402
from mannrl_gym.agents import make_agent  # noqa: E402
from mannrl_gym.config import Config, load  # noqa: E402
from mannrl_gym.envs import MannRLVectorEnv  # noqa: E402
from mannrl_gym.evaluation import evaluate  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--vectors", help="override configs/pos.yaml's vectors_path")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS threads thrash on small matrices
    overrides = {"wandb_mode": "disabled"}
    if args.vectors:
        overrides["vectors_path"] = args.vectors
    config = load(ROOT / "configs/pos.yaml", overrides)
    rows = {}
    for agent in ("mannrl", "no_memory"):
        cfg = load(ROOT / "configs/pos.yaml", {**overrides, "agent": agent})
        rows[f"POS train, {agent} (B={cfg.batch_size})"] = env_and_agent(cfg, args.steps) * cfg.batch_size
    task = build_task(config)
    train_env = MannRLVectorEnv(task, config, config.batch_size)
    eval_env = MannRLVectorEnv(task, config, config.eval_batch_size, learner=train_env.learner,
                               learn=False, shuffle=False)
    agent = make_agent(config, train_env.layout, config.batch_size)
    tic = time.perf_counter()
    evaluate(eval_env, agent)
    rows[f"POS evaluation (B={config.eval_batch_size})"] = task.train.num_tokens / (time.perf_counter() - tic)
    logic = Config(wandb_mode="disabled").validate()
    rows["Logic floor (same nets, no env)"] = floor_same_nets(logic, 20000) * logic.batch_size
    rows["Logic env + agent"] = env_and_agent(logic, 20000) * logic.batch_size
    print(f"POS: {task.input_dim}-d vectors, memory {config.memory_size}, "
          f"{len(task.output_symbols)} tags; tokens per second\n")
    for name, rate in rows.items():
        print(f"{name:40s} {rate:10.0f}")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
