"""Stable-Baselines3 SAC on the single env under different thread settings.

Each setting runs in a fresh Python process: SAC ("MlpPolicy", default settings,
learning_starts=100) for --steps env steps on ``gymnasium.make("MannRL-Logic-v0")``.

    default       nothing set: torch and BLAS use one thread per core
    env           the env's own setting: ``gymnasium.make(..., num_threads=1)``
    torch=1       torch.set_num_threads(1) in the user's script
    blas=1        threadpoolctl.threadpool_limits(1) (BLAS and OpenMP) in the user's script
    torch=1,blas=1  both

    python benchmarks/sb3_threads.py [--steps 300] [--repeats 2] [--settings 'default env ...']
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("default", "env", "torch=1", "blas=1", "torch=1,blas=1")

CHILD = r"""
import json, sys, time
setting, steps = sys.argv[1], int(sys.argv[2])
import torch, gymnasium, mannrl_gym
from stable_baselines3 import SAC
parts = setting.split(",")
if "torch=1" in parts:
    torch.set_num_threads(1)
if "blas=1" in parts:
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
kwargs = {"num_sequences": 1000}
if "env" in parts:
    kwargs["num_threads"] = 1
env = gymnasium.make("MannRL-Logic-v0", **kwargs)
model = SAC("MlpPolicy", env, learning_starts=100, seed=0)
tic = time.perf_counter()
model.learn(total_timesteps=steps)
print(json.dumps({"seconds": time.perf_counter() - tic, "torch_threads": torch.get_num_threads()}))
"""


def run(setting: str, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env["WANDB_SILENT"] = "true"
    out = subprocess.run([sys.executable, "-c", CHILD, setting, str(steps)], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--settings", default=" ".join(SETTINGS),
                        help="space-separated, e.g. 'default env torch=1,blas=1'")
    args = parser.parse_args()
    settings = args.settings.split()
    print(f"SAC, {args.steps} steps on MannRL-Logic-v0 (single env), {os.cpu_count()} CPUs; "
          f"seconds per run, {args.repeats} runs each, settings interleaved\n")
    times: dict[str, list[float]] = {s: [] for s in settings}
    threads: dict[str, int] = {}
    for _ in range(args.repeats):
        for setting in settings:
            result = run(setting, args.steps)
            times[setting].append(result["seconds"])
            threads[setting] = result["torch_threads"]
    print("| setting | torch threads during learn | median s | min s | max s |")
    print("|---|---|---|---|---|")
    for setting in settings:
        t = times[setting]
        print(f"| {setting} | {threads[setting]} | {statistics.median(t):.1f} | {min(t):.1f} "
              f"| {max(t):.1f} |")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
