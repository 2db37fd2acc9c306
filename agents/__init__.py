"""Memory-net agents: each plays the memory-net as ``mannrl_gym.protocols.MemoryAgent`` says
(``act``, ``explore``, ``observe``, ``start_epoch``, ``state_dict``, ``load_state_dict``).
``act`` is the deterministic policy (evaluation, prediction); ``explore`` what the trainer
writes while training (es and pg sample there). ``make_agent`` builds the one ``config.agent``
names, through ``mannrl_gym.agent_registry``.

Baselines that are whole experiments (the LSTM, the lookup tables) live in
``mannrl_gym.experiments``.
"""

from __future__ import annotations

from mannrl_gym import agent_registry
from mannrl_gym.agents.baselines import FrozenMemoryAgent, FrozenWeightsAgent, NoMemoryAgent
from mannrl_gym.agents.es_agent import EvolutionStrategiesAgent
from mannrl_gym.agents.mannrl_agent import MannRLAgent
from mannrl_gym.agents.pg_agent import PolicyGradientAgent
from mannrl_gym.agents.repaired_agent import RepairedAgent
from mannrl_gym.agents.replay import BatchStateReplay
from mannrl_gym.agents.reward_grad_agent import RewardGradientAgent
from mannrl_gym.config import Config, ConfigError
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.protocols import MemoryAgent


def make_agent(config: Config, layout: ObservationLayout, num_slots: int) -> MemoryAgent:
    """The memory agent ``config.agent`` names, seeded from ``config.seed``."""
    entry = agent_registry.entry(config.agent)
    if entry.kind != "memory_agent":
        raise ConfigError(f"{config.source}: agent '{config.agent}' is an experiment of its "
                          f"own, not a memory agent")
    if not agent_registry.is_spec(config.agent):  # ours: a failure is a bug, shown whole
        return entry.load()(layout, config, num_slots, config.seed)
    try:  # a user's class or factory: called as every memory agent is
        agent = entry.load()(layout, config, num_slots, config.seed)
    except TypeError as exc:
        raise ConfigError(f"{config.source}: agent '{config.agent}' cannot be called as a memory "
                          f"agent, (layout, config, num_slots, seed) -> agent: {exc}") from None
    if not isinstance(agent, MemoryAgent):
        raise ConfigError(f"{config.source}: agent '{config.agent}' gave a "
                          f"{type(agent).__name__}, not a memory agent "
                          f"(mannrl_gym.protocols.MemoryAgent)")
    return agent


__all__ = ["BatchStateReplay", "EvolutionStrategiesAgent", "FrozenMemoryAgent",
           "FrozenWeightsAgent", "MannRLAgent", "NoMemoryAgent", "PolicyGradientAgent",
           "RepairedAgent", "RewardGradientAgent", "make_agent"]
