"""The two roles the trainer plays with: a memory agent and an experiment.

Classes fill a role by having its methods (``typing.Protocol``: no base class to inherit);
``isinstance(x, MemoryAgent)`` checks that the methods exist. The registry
(``mannrl_gym.agent_registry``) names the classes that play each role.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class MemoryAgent(Protocol):
    """Plays the memory-net f: reads B states s_t = [m_t | x_t | y_t] (B, D) and writes the
    next memories m_{t+1} (B, M) in [0, 1]. Built as ``Agent(layout, config, num_slots, seed)``.
    An agent that also plays ``LearnsThroughA`` is handed the env's A by
    ``experiments.MannRLExperiment``.
    """

    def act(self, observation: np.ndarray) -> np.ndarray:
        """(B, D) -> (B, M): the deterministic policy (evaluation, prediction, plots)."""

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """(B, D) -> (B, M): the action while training. Agents that sample (es, pg) differ from
        ``act`` here; the others return ``act(observation)``."""

    def observe(self, observation: np.ndarray, reward: np.ndarray,
                info: dict[str, Any]) -> dict[str, float] | None:
        """Take the step that led to ``observation`` (rewards (B,), the env's info); learn when
        due. Returns the update's statistics (``memory_loss``, ...) after an update, else None."""

    def start_epoch(self, epoch: int) -> None:
        """Called before each (0-based) training epoch: apply the agent's own schedule (e.g. its
        learning rate's step decay)."""

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data only (checkpoints load with ``weights_only=True``)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


@runtime_checkable
class LearnsThroughA(Protocol):
    """A memory agent that learns through A's gradient (``reward_grad``): it is given the env's
    A (``supervised.ActionLearner``) before training starts."""

    def attach_learner(self, learner: Any) -> None: ...


@runtime_checkable
class Experiment(Protocol):
    """What ``mannrl train`` runs: built as ``Experiment(config, task)``; one ``run_epoch``
    per epoch, ``evaluate`` when due, ``state_dict`` into every checkpoint."""

    def run_epoch(self, epoch: int, description: str) -> dict[str, Any]:
        """Train one (0-based) epoch; return ``train_steps_per_s``, ``train_loss_running`` and
        ``memory_loss`` (None where they do not apply)."""

    def evaluate(self) -> dict[str, float]:
        """Metrics ``{split}/{name}`` for the train and validation splits (``metrics.py``)."""

    def check_finite(self, when: str) -> None:
        """Raise ``numerics.NumericalError`` naming the network if a weight is NaN or infinite."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors and plain data only)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


@runtime_checkable
class AgentReplicas(Protocol):
    """K agents of one class acting as one on a replicated env's (K * B, D) rows (row
    ``k * B + b``: slot b of replica k; ``mannrl_gym.envs.ReplicatedVectorEnv``).

    A memory agent can be replicated (``mannrl train ... seeds=0-7``) when its class has a
    classmethod ``replicate(agents, slots) -> AgentReplicas``; ``mannrl_gym.replicas.agents.
    EachReplica(agents, slots)`` is a ready one that steps each agent on its own rows.
    """

    agents: list

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """(K * B, D) -> (K * B, M): each agent's ``explore`` on its rows."""

    def observe(self, observation: np.ndarray, reward: np.ndarray,
                info: dict[str, Any]) -> list[dict[str, float] | None]:
        """Each agent whose replica is active (``info["replica_active"]``) observes its rows;
        each one's update statistics, else None."""

    def device_nets(self, device: Any) -> Any:
        """What steps the agents on a torch ``device`` (``replicas.device``): None when they
        write zeros; ValueError when they have no device path."""
