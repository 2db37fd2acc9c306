"""K memory agents of one kind acting on a ``ReplicatedVectorEnv``'s (K * B, D) rows.

``act`` is batched: each MannRLAgent's memory-net in eval mode is one affine map (batch norm
folded in), so the K of them are stacked into (K, D, M) and applied by one matrix product
over the replica axis (rebuilt after any replica's memory update). ``observe`` counts each
replica's replay cycle and writes the K replays' rows (rows of stacked buffers) in one
indexed assignment; the memory-net update every settle + history steps is per replica. A
replica whose pass has ended observes nothing, exactly as a single run, whose pass is over,
would not.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

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
        if self.memory_agents:  # the K replays: rows of stacked buffers, filled by one write
            first = self.agents[0].replay
            stacks = [torch.zeros((len(self.agents),) + tuple(field.shape), dtype=field.dtype)
                      for field in (first.states, first.rewards, first.usable, first.valid)]
            for k, agent in enumerate(self.agents):
                agent.replay.bind(*(stack[k] for stack in stacks))
            self._replay_stacks = stacks  # torch (K, history, B, ...): states, rewards, usable, valid
            self._replays = tuple(stack.numpy() for stack in stacks)

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Next memories (K * B, M) for observations (K * B, D), as each agent's ``act``."""
        replicas = len(self.agents)
        if not self.memory_agents:
            return np.zeros((observation.shape[0], self.memory_size), dtype=np.float32)
        states = np.asarray(observation, dtype=np.float32).reshape(replicas, self.slots, -1)
        if not self.batched_act:  # embedded inputs: each agent's own act
            return np.concatenate([agent.act(state) for agent, state in zip(self.agents, states)])
        if self._weights is None:
            self._weights = np.empty((replicas,) + states.shape[2:] + (self.memory_size,),
                                     np.float32)  # (K, D, M)
            self._biases = np.empty((replicas, 1, self.memory_size), np.float32)
            for agent in self.agents:
                agent._acting = None  # fill every row below
        for k, agent in enumerate(self.agents):
            if agent._acting is None:  # f changed (an update, a load): fold it again
                agent._acting = agent._eval_affine()
                self._weights[k], self._biases[k, 0] = agent._acting[-1]
        pre = np.matmul(states, self._weights)
        pre += self._biases
        np.negative(pre, out=pre)
        np.exp(pre, out=pre)
        pre += 1.0
        return np.reciprocal(pre, out=pre).reshape(replicas * self.slots, self.memory_size)

    def observe(self, observation: np.ndarray, reward: np.ndarray,
                info: dict[str, np.ndarray]) -> list[dict | None]:
        """Each active replica's agent observes its rows (as ``MannRLAgent.observe``: the
        replicas' replay rows are written by one indexed assignment); its update statistics,
        else None."""
        if not self.memory_agents:
            return [None] * len(self.agents)
        shape = (len(self.agents), self.slots)
        active = info["replica_active"][::self.slots]
        learning = [k for k, agent in enumerate(self.agents) if active[k] and agent.learns]
        rows = [agent.cycle.count() for agent in (self.agents[k] for k in learning)]
        written = [(k, row) for k, row in zip(learning, rows) if row is not None]
        if written:
            replicas, steps = (np.array(part) for part in zip(*written))
            states, rewards, usable, valid = self._replays
            states[replicas, steps] = observation.reshape(shape + (-1,))[replicas]
            rewards[replicas, steps] = reward.reshape(shape)[replicas]
            usable[replicas, steps] = self.agents[0].usable_rows(info).reshape(shape)[replicas]
            valid[replicas, steps] = info["valid"].reshape(shape)[replicas]
        results: list[dict | None] = [None] * len(self.agents)
        for k in learning:
            results[k] = self.agents[k].learn_if_due()
        return results
