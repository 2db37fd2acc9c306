"""Paired timings of two ways the sentence step can compute the same thing, in one process.

  f's act       the folded body stored (out, in) through torch's BLAS (what runs) against
                the same weight stored (in, out) through NumPy's (before 2026-12-07)
  f's update    forward and backward of one round with f's memory part multiplied once per
                stored state (``forward_torch`` with an index: what runs) against the same
                round on the gathered pair rows (before 2026-12-07)

On this shared machine a whole loop's time moves by up to a fifth between runs a minute
apart, which hides savings of a few percent; here both ways run in blocks taking turns, on the
same inputs (the env and agent stepped 320 steps on the config's data first), and the table
gives each one's median and the median of the paired block differences, ms a call.

    python benchmarks/sentence_paths.py [--rounds 6] [--threads 1,2] [--config configs/sentence.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym.agents import make_agent  # noqa: E402
from mannrl_gym.agents.mannrl_agent import act_folded  # noqa: E402
from mannrl_gym.agents.memory_update import (forward_torch, loss_torch,  # noqa: E402
                                             memory_blocks, pick_rows)
from mannrl_gym.allocator import keep_freed_memory  # noqa: E402
from mannrl_gym.config import load  # noqa: E402
from mannrl_gym.envs import MannRLVectorEnv  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402
from mannrl_gym.threads import limit_threads  # noqa: E402

Way = Callable[[], None]


def block_median(way: Way, calls: int) -> float:
    """Median seconds of ``calls`` calls of ``way`` (after two more)."""
    way(), way()
    times = []
    for _ in range(calls):
        tic = time.perf_counter()
        way()
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


def paired(new: Way, old: Way, rounds: int, calls: int) -> tuple[float, float, float]:
    """(new's median, old's median, median of the rounds' differences new - old), seconds;
    the two take turns in blocks of ``calls``, which goes first alternating."""
    pairs = []
    for r in range(rounds):
        order = (new, old) if r % 2 == 0 else (old, new)
        first, second = (block_median(way, calls) for way in order)
        pairs.append((first, second) if r % 2 == 0 else (second, first))
    news, olds = (np.array(side) for side in zip(*pairs))
    return float(np.median(news)), float(np.median(olds)), float(np.median(news - olds))


def ways(config_path: str) -> dict[str, tuple[Way, Way]]:
    """The env and agent stepped to their steady state; the two ways of each part."""
    config = load(ROOT / config_path, {"wandb_mode": "disabled"})
    task = build_task(config)
    env = MannRLVectorEnv(task, config, num_envs=config.batch_size)
    agent = make_agent(config, env.layout, config.batch_size)
    observation = env.reset(seed=0)[0]
    for _ in range(320):
        observation, reward, _, _, info = env.step(agent.act(observation))
        agent.observe(observation, reward, info)
    state = np.asarray(observation, dtype=np.float32)
    folded = agent.folded()
    stored_in_out = folded[:-1] + [(np.ascontiguousarray(folded[-1][0]), folded[-1][1])]
    # one round's inputs: the replay full, as at an update
    agent.replay.clear()
    for _ in range(config.history):
        agent.replay.push(state, np.zeros(config.batch_size, np.float32),
                          np.ones(config.batch_size, bool), np.ones(config.batch_size, bool))
    states, index, reward, usable = agent.replay.sample_pair_rows(config.memory_samples,
                                                                  torch.Generator())
    gathered = pick_rows(states[None], index[None])
    gamma = torch.full((1, 1, 1), config.gamma)
    net, split = agent.net, agent.net.split_sizes

    def update(use_index: bool) -> Way:
        def way() -> None:
            params = [tuple(p.unsqueeze(0) for p in (b[0].weight, b[0].bias, b[1].weight,
                                                     b[1].bias)) for b in memory_blocks(net)]
            if use_index:
                out, _ = forward_torch(params, states[None], None, split, index[None])
            else:
                out, _ = forward_torch(params, gathered, None, split)
            net.zero_grad(set_to_none=True)
            loss_torch(out, reward[None], usable[None], gamma, config.detach_target)[0].backward()
        return way
    return {"f's act": (lambda: act_folded(folded, state, env.layout),
                        lambda: act_folded(stored_in_out, state, env.layout)),
            "f's update, one round": (update(True), update(False))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--config", default="configs/sentence.yaml")
    args = parser.parse_args()
    keep_freed_memory()  # as `mannrl train` runs (mannrl_gym.allocator)
    print(f"Paired timings, {args.config}, {args.rounds} rounds, torch {torch.__version__}")
    print(f"{'threads':>7s}  {'part':24s} {'what runs':>10s} {'before':>8s} {'paired diff':>12s}")
    for threads in (int(n) for n in args.threads.split(",") if n):
        with limit_threads(threads):
            for name, (new, old) in ways(args.config).items():
                calls = 100 if name == "f's act" else 10
                mine, theirs, diff = paired(new, old, args.rounds, calls)
                print(f"{threads:7d}  {name:24s} {mine * 1e3:10.3f} {theirs * 1e3:8.3f} "
                      f"{diff * 1e3:+12.3f}")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
