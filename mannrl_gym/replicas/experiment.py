"""K ``MannRLExperiment``s whose training epochs run as one batched loop.

Each replica stays an ordinary ``MannRLExperiment`` (its env, agent, evaluators, state dict),
so evaluation and checkpoints are the single-run code per replica; only ``run_epoch`` is
shared: one ``ReplicatedVectorEnv`` over the K training envs and the agents' ``AgentReplicas``
(``replicas.agents.replicate``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from mannrl_gym.config import Config
from mannrl_gym.envs.replicated_env import ReplicatedVectorEnv
from mannrl_gym.experiments import MannRLExperiment
from mannrl_gym.replicas.agents import replicate
from mannrl_gym.replicas.device import DevicePass, check_device
from mannrl_gym.tasks.base import Task


class ReplicatedExperiment:
    """K experiments of one shape (``configs`` differ in seed or sweep keys only)."""

    def __init__(self, configs: Sequence[Config], tasks: Sequence[Task],
                 device: str | None = None) -> None:
        """``device``: None trains on the NumPy path (exactly as single runs); a torch device
        name ('cuda', 'cuda:1'; 'cpu' runs the same torch code on the CPU) runs the long
        stretches of batched steps there (``mannrl_gym.replicas.device``)."""
        self.configs = list(configs)
        self.experiments = [MannRLExperiment(config, task) for config, task in zip(configs, tasks)]
        self.env = ReplicatedVectorEnv([e.env for e in self.experiments])
        self.agents = replicate([e.agent for e in self.experiments], self.env.slots)
        self.device_pass = (None if device is None else
                            DevicePass(self.env, self.agents, check_device(device)))
        if self.device_pass is not None:  # the host's share of each pass, on every core
            self.env.reset_workers = os.cpu_count() or 1

    def __len__(self) -> int:
        return len(self.experiments)

    def run_epoch(self, epoch: int, description: str,
                  running: np.ndarray | None = None) -> list[dict[str, Any] | None]:
        """One pass of every replica in ``running`` (K bools; default all), stepped together;
        each one's training statistics as ``MannRLExperiment.run_epoch`` gives them (None for
        a replica that sat out)."""
        replicas = len(self.experiments)
        running = np.ones(replicas, bool) if running is None else np.asarray(running, bool)
        for experiment in self.experiments:
            experiment.agent.start_epoch(epoch)  # the agent's own schedule (memory_lr's decay)
        tic = time.perf_counter()
        observation, _ = self.env.reset(options={"epoch": epoch, "replicas": running})
        for k, experiment in enumerate(self.experiments):
            if running[k]:
                experiment.evaluation_bn = None
                experiment.evaluators["train"].epoch = epoch
        env, agents, slots = self.env, self.agents, self.env.slots
        steps = env.steps_per_pass - 1
        loss_sums = np.zeros(replicas)
        memory_losses: list[list[float]] = [[] for _ in range(replicas)]
        device_losses = (np.zeros(replicas), np.zeros(replicas, np.int64))
        show = self.configs[0].progress
        bar = tqdm(total=steps, desc=description, unit="step", leave=False,
                   disable=None if show else True, mininterval=1.0)
        # on a device: its stretches of batched steps (never the pass's last step)
        stretches = self.device_pass.stretches(steps - 1) if self.device_pass is not None else []
        while env.t < steps:
            if stretches and stretches[0][0] == env.t + 1:
                first, last = stretches.pop(0)
                observation, sums = self.device_pass.run(observation, first, last, bar.update)
                loss_sums += sums
                for total, part in zip(device_losses, self.device_pass.memory_losses()):
                    total += part
                continue
            observation, reward, _, _, info = env.step(agents.explore(observation))
            for k, stats in enumerate(agents.observe(observation, reward, info)):
                if stats is not None:
                    memory_losses[k].append(stats["memory_loss"])
            loss_sums += info["loss"].reshape(replicas, slots).sum(axis=1)
            if env.t % 512 == 0:
                bar.update(512)
        bar.close()
        seconds = time.perf_counter() - tic
        results: list[dict[str, Any] | None] = []
        for k, experiment in enumerate(self.experiments):
            if not running[k]:
                results.append(None)
                continue
            live_rows = int(experiment.env.stream.valid[1:].sum())
            losses = memory_losses[k]
            count = len(losses) + int(device_losses[1][k])
            total = sum(losses) + float(device_losses[0][k])
            results.append({"train_steps_per_s": float(env.lengths[k] - 1) / seconds,
                            "train_loss_running": float(loss_sums[k]) / max(1, live_rows),
                            "memory_loss": total / count if count else None})
        return results
