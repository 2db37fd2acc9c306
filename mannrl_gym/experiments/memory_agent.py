"""The paper's setting as a trainer experiment: the batched env (A learning inside it) and a
memory agent (any ``memory_agent`` entry of ``mannrl_gym.agent_registry``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mannrl_gym import agent_registry
from mannrl_gym.agents import make_agent
from mannrl_gym.config import Config, ConfigError
from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.evaluation import evaluate_all, evaluation_envs, evaluation_statistics
from mannrl_gym.numerics import non_finite_tensors, raise_non_finite
from mannrl_gym.protocols import LearnsThroughA
from mannrl_gym.rollout import rollout
from mannrl_gym.rundir import SavedRun
from mannrl_gym.tasks import build_task
from mannrl_gym.tasks.base import Task


class MannRLExperiment:
    """The batched env and a memory agent; one epoch is one pass of the constant stream."""

    def __init__(self, config: Config, task: Task) -> None:
        self.config, self.task = config, task
        self.env = MannRLVectorEnv(task, config, num_envs=config.batch_size)
        self.agent = make_agent(config, self.env.layout, config.batch_size)
        if isinstance(self.agent, LearnsThroughA):
            self.agent.attach_learner(self.env.learner)
        self.evaluators = evaluation_envs(task, config, self.env.learner)
        self.env.reset(seed=config.seed)  # draws A's weights from the seed
        self.evaluation_bn: list[tuple[np.ndarray, np.ndarray]] | None = None

    @classmethod
    def from_run(cls, saved: SavedRun, task: Task | None = None) -> "MannRLExperiment":
        """The experiment of a saved run (``rundir.load_run``) at its last checkpoint; its
        task is built anew from the config unless given. ConfigError if the run's agent is not
        a memory agent."""
        if not agent_registry.has_memory_agent(saved.config.agent):
            raise ConfigError(f"{saved.run_dir}: this needs a run of a memory agent "
                              f"{agent_registry.memory_agent_names()}, not "
                              f"'{saved.config.agent}'")
        experiment = cls(saved.config, task if task is not None else build_task(saved.config))
        experiment.load_state_dict(saved.experiment_state)
        return experiment

    def run_epoch(self, epoch: int, description: str) -> dict[str, Any]:
        """One pass: the agent acts and observes at every step; return training statistics."""
        env, agent, config = self.env, self.agent, self.config
        agent.start_epoch(epoch)  # the agent's own schedule (memory_lr's step decay)
        self.evaluation_bn = None  # the weights change: statistics from before no longer fit
        tic = time.perf_counter()
        passing = rollout(env, agent, training=True, options={"epoch": epoch})  # epoch's data
        next(passing)  # the reset
        self.evaluators["train"].epoch = epoch  # evaluate what trained
        loss_sum, memory_loss = 0.0, []
        live_rows = int(env.stream.valid[1:].sum())  # rows stepped this pass; idle rows: loss 0
        bar = tqdm(total=env.steps_per_pass - 1, desc=description, unit="step", leave=False,
                   disable=None if config.progress else True,  # None: off when not a TTY
                   mininterval=1.0)
        for step, (_, _, info, update) in enumerate(passing):
            if update is not None:
                memory_loss.append(update["memory_loss"])
            loss_sum += float(info["loss"].sum())
            if step % 512 == 511:
                bar.update(512)
        bar.close()
        steps = env.steps_per_pass - 1
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
                 "env_generator": self.env.generator_state()}
        if self.evaluation_bn is not None:
            state["evaluation_bn"] = [[torch.from_numpy(a) for a in pair]
                                      for pair in self.evaluation_bn]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env.learner.load_state_dict(state["learner"])
        self.agent.load_state_dict(state["agent"])
        self.env.set_generator_state(state["env_generator"])
        saved = state.get("evaluation_bn")
        self.evaluation_bn = [tuple(t.numpy() for t in pair) for pair in saved] if saved else None

