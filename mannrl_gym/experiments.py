"""What the trainer runs: one epoch of learning, an evaluation, and the state to checkpoint.

``MannRLExperiment`` is the paper's setting: the batched env (A learning inside it) and a
memory agent. ``mannrl_gym.agents.lstm.LSTMExperiment`` is the recurrent peer trained by
backpropagation through time. Both report the same metrics, so their rows line up.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mannrl_gym.agents import make_agent
from mannrl_gym.config import Config
from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.evaluation import evaluate_all, evaluation_envs, evaluation_statistics
from mannrl_gym.numerics import non_finite_tensors, raise_non_finite
from mannrl_gym.tasks.base import Task


class MannRLExperiment:
    """The batched env and a memory agent; one epoch is one pass of the constant stream."""

    def __init__(self, config: Config, task: Task) -> None:
        self.config = config
        self.env = MannRLVectorEnv(task, config, num_envs=config.batch_size)
        self.agent = make_agent(config, self.env.layout, config.batch_size)
        self.evaluators = evaluation_envs(task, config, self.env.learner)
        self.env.reset(seed=config.seed)  # draws A's weights from the seed
        self.evaluation_bn: list[tuple[np.ndarray, np.ndarray]] | None = None

    def memory_lr(self, epoch: int) -> float:
        """The memory-net's learning rate in (0-based) ``epoch``: step decay if configured."""
        every = self.config.memory_lr_decay_every
        steps = epoch // every if every else 0
        return self.config.memory_lr * self.config.memory_lr_decay ** steps

    def run_epoch(self, epoch: int, description: str) -> dict[str, Any]:
        """One pass: the agent acts and observes at every step; return training statistics."""
        env, agent, config = self.env, self.agent, self.config
        if hasattr(agent, "optimizer"):
            for group in agent.optimizer.param_groups:
                group["lr"] = self.memory_lr(epoch)
        self.evaluation_bn = None  # the weights change: statistics from before no longer fit
        tic = time.perf_counter()
        observation, _ = env.reset(options={"epoch": epoch})  # the curriculum's data of epoch
        self.evaluators["train"].epoch = epoch  # evaluate what trained
        steps = env.steps_per_pass - 1
        loss_sum, memory_loss = 0.0, []
        live_rows = int(env.stream.valid[1:].sum())  # rows stepped this pass; idle rows: loss 0
        bar = tqdm(total=steps, desc=description, unit="step", leave=False,
                   disable=None if config.progress else True,  # None: off when not a TTY
                   mininterval=1.0)
        for step in range(steps):
            observation, reward, _, _, info = env.step(agent.act(observation))
            stats = agent.observe(observation, reward, info)
            if stats is not None:
                memory_loss.append(stats["memory_loss"])
            loss_sum += float(info["loss"].sum())
            if step % 512 == 511:
                bar.update(512)
        bar.close()
        seconds = time.perf_counter() - tic
        return {"train_steps_per_s": steps / seconds,
                "train_loss_running": loss_sum / max(1, live_rows),
                "memory_loss": sum(memory_loss) / len(memory_loss) if memory_loss else None}

    def check_finite(self, when: str) -> None:
        for owner, module in (("action network", self.env.learner.net),
                              ("memory-net", getattr(self.agent, "net", None))):
            if module is not None and non_finite_tensors(module):
                raise_non_finite(owner, when, "a weight", module)

    def evaluate(self) -> dict[str, float]:
        """Metrics on both splits; keeps recalibrated batch-norm statistics for the checkpoint."""
        with evaluation_statistics(self.evaluators["train"], self.agent,
                                   self.config.bn_statistics) as statistics:
            self.evaluation_bn = statistics
            return evaluate_all(self.evaluators, self.agent)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps; ``evaluation_bn``: A's recalibrated batch-norm statistics
        [(mean, var), ...] for these weights, when this epoch was evaluated with them."""
        state = {"learner": self.env.learner.state_dict(), "agent": self.agent.state_dict(),
                 "env_generator": self.env._generator.get_state()}
        if self.evaluation_bn is not None:
            state["evaluation_bn"] = [[torch.from_numpy(a) for a in pair]
                                      for pair in self.evaluation_bn]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env.learner.load_state_dict(state["learner"])
        self.agent.load_state_dict(state["agent"])
        self.env._generator.set_state(state["env_generator"])
        saved = state.get("evaluation_bn")
        self.evaluation_bn = [tuple(t.numpy() for t in pair) for pair in saved] if saved else None


def make_experiment(config: Config, task: Task):
    if config.agent == "perfect_memory":
        from mannrl_gym.agents.most_frequent import PerfectMemoryExperiment
        return PerfectMemoryExperiment(config, task)
    if config.agent == "most_frequent_tag":
        from mannrl_gym.agents.most_frequent import MostFrequentTagExperiment
        return MostFrequentTagExperiment(config, task)
    if config.agent == "lstm":
        from mannrl_gym.agents.lstm import LSTMExperiment
        return LSTMExperiment(config, task)
    return MannRLExperiment(config, task)
