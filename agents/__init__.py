"""Memory-net agents. Each has ``act(observation) -> next memory`` and
``observe(observation, reward, info)``; agents that explore while training (es, pg) also have
``explore(observation)``, which the trainer calls instead of ``act`` (``act`` stays their
deterministic policy, for evaluation). ``make_agent`` picks one by ``config.agent``."""

from __future__ import annotations

from mannrl_gym.agents.baselines import FrozenMemoryAgent, FrozenWeightsAgent, NoMemoryAgent
from mannrl_gym.agents.es_agent import EvolutionStrategiesAgent
from mannrl_gym.agents.mannrl_agent import MannRLAgent
from mannrl_gym.agents.pg_agent import PolicyGradientAgent
from mannrl_gym.agents.repaired_agent import RepairedAgent
from mannrl_gym.agents.replay import BatchStateReplay
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout

AGENTS = {"mannrl": MannRLAgent, "no_memory": NoMemoryAgent, "frozen_memory": FrozenMemoryAgent,
          "frozen_weights": FrozenWeightsAgent, "es": EvolutionStrategiesAgent,
          "pg": PolicyGradientAgent, "repaired": RepairedAgent}


def make_agent(config: Config, layout: ObservationLayout, num_slots: int):
    """The agent ``config.agent`` names, seeded from ``config.seed``."""
    return AGENTS[config.agent](layout, config, num_slots, config.seed)


__all__ = ["AGENTS", "BatchStateReplay", "EvolutionStrategiesAgent", "FrozenMemoryAgent",
           "FrozenWeightsAgent", "MannRLAgent", "NoMemoryAgent", "PolicyGradientAgent", "make_agent"]
