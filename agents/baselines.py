"""Ablations that say what the memory, and its RL training, each add."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mannrl_gym.agents.mannrl_agent import MannRLAgent
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout


class NoMemoryAgent:
    """Always writes a zero memory: A sees only the current input."""

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int, seed: int) -> None:
        self.memory_size = layout.memory_size

    def act(self, observation: np.ndarray) -> np.ndarray:
        """(B, D) -> zeros (B, M)."""
        return np.zeros((observation.shape[0], self.memory_size), dtype=np.float32)

    def explore(self, observation: np.ndarray) -> np.ndarray:
        return self.act(observation)

    def observe(self, observation, reward, info) -> None:
        return None

    def start_epoch(self, epoch: int) -> None:
        """Nothing to schedule."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @classmethod
    def replicate(cls, agents: Sequence["NoMemoryAgent"], slots: int):
        """K of them as one (``mannrl_gym.protocols.AgentReplicas``): zeros for every row."""
        from mannrl_gym.replicas.agents import ZeroMemoryReplicas

        return ZeroMemoryReplicas(agents, slots)


class FrozenMemoryAgent(MannRLAgent):
    """The paper's memory-net frozen at its initial weights: a fixed random recurrent map."""

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int,
                 seed: int) -> None:
        super().__init__(layout, config, num_slots, seed, learn=False)


class FrozenWeightsAgent(MannRLAgent):
    """The paper's agent with f's weights frozen at their initial values while its batch-norm
    running statistics follow the memories exactly as the paper's updates refresh them."""

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int,
                 seed: int) -> None:
        super().__init__(layout, config, num_slots, seed, update_weights=False)
