"""Speed benchmark for the sentence task (Table 3, B = 16, memory 1024), with where the time goes.

Rows (microseconds per batched step, one thread):
  env + agent            the trainer's inner loop on the real data (MannRLVectorEnv.step and
                         MannRLAgent act / observe, memory updates included)
  env + no-memory agent  the same loop with the memory held at zeros (A's work and the env)
  A: hand-written step   ActionLearner.train_step (NumPy forward / backward, fused Adam)
  A: plain PyTorch step  the same network and update with nn.Module, autograd, clip_grad_norm_
                         and torch.optim.Adam
  f: act                 the memory-net's forward in eval mode (BN folded into the linears)
  f: update / (settle + history)
                         one memory update, spread over the steps of its cycle

    python benchmarks/sentence_speed.py [--steps 3000] [--data ../shared/data/pud-en-fr/pud.en]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym.agents import make_agent  # noqa: E402
from mannrl_gym.config import load  # noqa: E402
from mannrl_gym.envs import MannRLVectorEnv  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402


def per_step(function, steps: int) -> float:
    """Microseconds per call of ``function(i)``, after a short warm-up."""
    for i in range(20):
        function(i)
    tic = time.perf_counter()
    for i in range(steps):
        function(i)
    return (time.perf_counter() - tic) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/pud-en-fr/pud.en"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(limits=1)
    rows: dict[str, float] = {}
    for agent_name in ("mannrl", "no_memory"):
        config = load(ROOT / "configs/sentence.yaml",
                      {"data_path": args.data, "agent": agent_name, "wandb_mode": "disabled"})
        task = build_task(config)
        env = MannRLVectorEnv(task, config, num_envs=config.batch_size)
        agent = make_agent(config, env.layout, config.batch_size)
        state = {"observation": env.reset(seed=0)[0]}

        def env_step(_: int) -> None:
            observation, reward, _, _, info = env.step(agent.act(state["observation"]))
            agent.observe(observation, reward, info)
            state["observation"] = observation
        name = "env + agent" if agent_name == "mannrl" else "env + no-memory agent"
        rows[name] = per_step(env_step, args.steps)
        if agent_name != "mannrl":
            continue
        rng = np.random.default_rng(0)
        features = task.input_table.numpy()[rng.integers(0, task.input_dim, 16)]
        memory = rng.random((16, config.memory_size), dtype=np.float32)
        targets = rng.integers(0, task.num_outputs, 16)
        rows["A: hand-written step"] = per_step(
            lambda _: env.learner.train_step(features, memory, targets), args.steps)
        net = copy.deepcopy(env.learner.net)
        for p in net.parameters():
            p.data = p.data.clone()
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        tensors = [torch.from_numpy(a) for a in (features, memory, targets)]

        def plain_step(_: int) -> None:
            loss = nn.functional.cross_entropy(net(tensors[0], tensors[1]), tensors[2])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), config.clipping)
            optimizer.step()
        net.train()
        rows["A: plain PyTorch step"] = per_step(plain_step, args.steps)
        observation = state["observation"]
        rows["f: act"] = per_step(lambda _: agent.act(observation), args.steps)
        cycle = config.settle + config.history
        agent.replay.clear()  # a full buffer, as at every update
        for _ in range(config.history):
            agent.replay.push(observation, np.zeros(16, np.float32), np.ones(16, bool), np.ones(16, bool))
        rows["f: update / (settle + history)"] = per_step(
            lambda _: agent.learn(), max(20, args.steps // cycle)) / cycle
    print(f"Sentence speed, Table 3 (memory 1024, embedding 96, A 2 x 256), B=16, "
          f"{args.steps} steps, torch {torch.__version__}, 1 thread\n")
    print(f"{'part':34s} {'us/step':>8s} {'steps/s':>8s}")
    for name, micros in rows.items():
        print(f"{name:34s} {micros:8.0f} {1e6 / micros:8.0f}")


if __name__ == "__main__":
    main()
