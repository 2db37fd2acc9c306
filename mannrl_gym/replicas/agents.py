"""K memory agents of one kind acting on a ``ReplicatedVectorEnv``'s (K * B, D) rows.

``act`` is batched: each MannRLAgent's memory-net in eval mode is one affine map (batch norm
folded in), so the K of them are stacked into (K, D, M) and applied by one matrix product
over the replica axis (rebuilt after any replica's memory update). ``observe`` hands each
replica its own rows (the replay store and the memory-net update every settle + history
steps are per replica and cheap beside the step); a replica whose pass has ended observes
nothing, exactly as a single run, whose pass is over, would not.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mannrl_gym.agents.baselines import NoMemoryAgent
from mannrl_gym.agents.mannrl_agent import MannRLAgent

# what config.agent may be in a replicated run: agents whose every replica has one shape and
# whose per-step work batches over replicas
REPLICABLE_AGENTS = ("mannrl", "frozen_weights", "frozen_memory", "no_memory")


class ReplicatedAgents:
    """Act for and feed K agents (``MannRLAgent`` or ``NoMemoryAgent``) of B slots each."""

    def __init__(self, agents: Sequence, slots: int, memory_size: int) -> None:
        self.agents = list(agents)
        self.slots, self.memory_size = slots, memory_size
        kinds = {type(agent) for agent in self.agents}
        if len(kinds) != 1 or not kinds <= {MannRLAgent, NoMemoryAgent}:
            raise ValueError(f"replicated agents must all be MannRLAgent or all NoMemoryAgent, "
                             f"got {sorted(k.__name__ for k in kinds)}")
        self.memory_agents = kinds == {MannRLAgent}
        self.batched_act = self.memory_agents and self.agents[0].net.embed_input is None
        self._weights: np.ndarray | None = None
        self._biases: np.ndarray | None = None

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Next memories (K * B, M) for observations (K * B, D), as each agent's ``act``."""
        replicas = len(self.agents)
        if not self.memory_agents:
            return np.zeros((observation.shape[0], self.memory_size), dtype=np.float32)
        states = np.asarray(observation, dtype=np.float32).reshape(replicas, self.slots, -1)
        if not self.batched_act:  # embedded inputs: each agent's own act
            return np.concatenate([agent.act(state) for agent, state in zip(self.agents, states)])
        if self._weights is None or any(agent._acting is None for agent in self.agents):
            self._stack_affines()
        pre = np.matmul(states, self._weights)
        pre += self._biases
        return (1.0 / (1.0 + np.exp(-pre))).reshape(replicas * self.slots, self.memory_size)

    def _stack_affines(self) -> None:
        affines = []
        for agent in self.agents:
            if agent._acting is None:
                agent._acting = agent._eval_affine()
            affines.append(agent._acting[-1])
        self._weights = np.stack([weight for weight, _ in affines])  # (K, D, M)
        self._biases = np.stack([bias for _, bias in affines])[:, None]  # (K, 1, M)

    def observe(self, observation: np.ndarray, reward: np.ndarray,
                info: dict[str, np.ndarray]) -> list[dict | None]:
        """Each active replica's agent observes its rows; its update statistics, else None."""
        if not self.memory_agents:
            return [None] * len(self.agents)
        replicas = len(self.agents)
        states = observation.reshape(replicas, self.slots, -1)
        rewards = reward.reshape(replicas, self.slots)
        valid = info["valid"].reshape(replicas, self.slots)
        starts = info["sequence_start"].reshape(replicas, self.slots)
        active = info["replica_active"][::self.slots]
        return [agent.observe(states[k], rewards[k],
                              {"valid": valid[k], "sequence_start": starts[k]})
                if active[k] else None for k, agent in enumerate(self.agents)]
