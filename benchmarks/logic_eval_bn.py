"""How A's batch-norm statistics at evaluation change the reported Logic metrics.

Trains once per variant and, after every epoch, evaluates the same weights three ways:
running statistics (what training left, as the reference's eval mode), recalibrated over one
training pass ("precise BN"), and each evaluation batch's own statistics (as in training).
Also prints the accuracy A reached while training in that epoch.

    python benchmarks/logic_eval_bn.py --epochs 30 [double_softmax=false ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.agents import make_agent  # noqa: E402
from mannrl_gym.config import load, parse_overrides  # noqa: E402
from mannrl_gym.envs import MannRLVectorEnv  # noqa: E402
from mannrl_gym.evaluation import evaluate_splits, evaluation_envs  # noqa: E402
from mannrl_gym.rollout import rollout  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402

MODES = ("running", "recalibrated", "batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs/logic.yaml"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS threads thrash on small matrices
    config = load(args.config, parse_overrides(args.overrides))
    task = build_task(config)
    env = MannRLVectorEnv(task, config, config.batch_size)
    agent = make_agent(config, env.layout, config.batch_size)
    evaluators = evaluation_envs(task, config, env.learner)
    env.reset(seed=config.seed)
    print(f"overrides: {args.overrides or 'none (Table 1)'}")
    print(f"{'epoch':>5} {'train acc (live)':>16} " + " ".join(f"{m + ' f1':>16}" for m in MODES))
    history = {m: [] for m in MODES}
    for epoch in range(1, args.epochs + 1):
        correct = total = 0
        for _, reward, info, _ in rollout(env, agent, training=True):
            if reward is None:  # the reset: nothing trained yet
                continue
            correct += int(info["correct"][info["valid"]].sum())
            total += int(info["valid"].sum())
        f1 = {m: evaluate_splits(evaluators, agent, m)["train/f1"] for m in MODES}
        for m in MODES:
            history[m].append(f1[m])
        print(f"{epoch:5d} {correct / total:16.3f} " + " ".join(f"{f1[m]:16.3f}" for m in MODES),
              flush=True)
    print("\ntrain F1 over all epochs: mean / min / stdev")
    for m in MODES:
        values = history[m]
        print(f"  {m:12s} {statistics.mean(values):.3f} / {min(values):.3f} / "
              f"{statistics.pstdev(values):.3f}")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
