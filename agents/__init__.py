"""Memory-net agents. Each has ``act(observation) -> next memory`` and
``observe(observation, reward, info)``; ``make_agent`` picks one by ``config.agent``."""

from __future__ import annotations

from mannrl_gym.agents.baselines import FrozenMemoryAgent, FrozenWeightsAgent, NoMemoryAgent
from mannrl_gym.agents.mannrl_agent import MannRLAgent
from mannrl_gym.agents.replay import BatchStateReplay
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout

AGENTS = {"mannrl": MannRLAgent, "no_memory": NoMemoryAgent, "frozen_memory": FrozenMemoryAgent,
          "frozen_weights": FrozenWeightsAgent}


def make_agent(config: Config, layout: ObservationLayout, num_slots: int):
    """The agent ``config.agent`` names, seeded from ``config.seed``."""
    return AGENTS[config.agent](layout, config, num_slots, config.seed)


__all__ = ["AGENTS", "BatchStateReplay", "FrozenMemoryAgent", "FrozenWeightsAgent", "MannRLAgent",
           "NoMemoryAgent", "make_agent"]
