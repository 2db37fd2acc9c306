"""K memory agents of one class acting on a ``ReplicatedVectorEnv``'s (K * B, D) rows.

The replica machinery asks the agents' class: ``replicate(agents, slots)`` (a classmethod)
returns an ``AgentReplicas`` (``mannrl_gym.protocols``); a class without it cannot be
replicated. Three are here:

* ``ReplicatedAgents`` (``MannRLAgent`` and its controls): ``act`` is batched (each
  memory-net in eval mode is one affine map, ``MannRLAgent.folded``; the K maps are stacked
  into (K, D, M) and applied by one matrix product, a replica's row folded again when its
  ``version`` moves). ``observe`` counts each replica's replay cycle and writes the K replays
  (rows of stacked buffers) in one indexed assignment; the memory-net update every settle +
  history steps is per replica.
* ``ZeroMemoryReplicas`` (``NoMemoryAgent``): zeros.
* ``EachReplica``: any memory agent, each stepped on its own rows (what a user's agent's
  ``replicate`` can return).

A replica whose pass has ended observes nothing, exactly as a single run, whose pass is
over, would not.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from mannrl_gym import agent_registry
from mannrl_gym.agents.mannrl_agent import act_folded
from mannrl_gym.protocols import AgentReplicas


# what an agent does step by step: a batched ``replicate`` stands for these methods of the
# class that defines it, not for a subclass's own
_BEHAVIOUR = ("act", "explore", "observe", "learn", "start_epoch")


def inherited_replicate(kind: type) -> str | None:
    """Why ``kind``'s ``replicate``, inherited, would not compute what ``kind`` does (a
    subclass that overrides ``act``, say, of a class whose batched path never calls it);
    None when it would (it defines ``replicate`` itself, or overrides none of
    ``_BEHAVIOUR`` below the class that does: FrozenWeightsAgent only passes flags to
    MannRLAgent's ``__init__``)."""
    for klass in kind.__mro__:
        if "replicate" in vars(klass):
            return None
        overridden = [name for name in _BEHAVIOUR if name in vars(klass)]
        if overridden:
            owner = next(k for k in kind.__mro__ if "replicate" in vars(k))
            return (f"{kind.__name__} overrides {', '.join(overridden)}, which "
                    f"{owner.__name__}.replicate's batched path does not call: give "
                    f"{kind.__name__} a replicate of its own, e.g. one that returns "
                    f"mannrl_gym.replicas.agents.EachReplica(agents, slots)")
    return None


def replicate_mismatch(name: str) -> str | None:
    """``inherited_replicate`` of the registered agent ``name``'s class (None for a factory,
    or a class without ``replicate``); imports its module."""
    factory = agent_registry.entry(name).load()
    if not isinstance(factory, type) or not callable(getattr(factory, "replicate", None)):
        return None
    return inherited_replicate(factory)


def replicable(name: str) -> bool:
    """Whether the registered agent ``name`` can run as replicas (its factory has
    ``replicate``, its own or one that computes what it does: ``replicate_mismatch``);
    imports its module."""
    if not agent_registry.has_memory_agent(name):
        return False
    factory = agent_registry.entry(name).load()
    return callable(getattr(factory, "replicate", None)) and replicate_mismatch(name) is None


def replicable_names() -> list[str]:
    """The registered agents that can run as replicas."""
    return [name for name in agent_registry.memory_agent_names() if replicable(name)]


def replicate(agents: Sequence, slots: int) -> AgentReplicas:
    """K agents of one class (B = ``slots`` rows each) as one, as their class makes them."""
    kinds = {type(agent) for agent in agents}
    if len(kinds) != 1:
        raise ValueError(f"replicated agents must be of one class, got "
                         f"{sorted(k.__name__ for k in kinds)}")
    (kind,) = kinds
    make = getattr(kind, "replicate", None)
    if make is None:
        raise ValueError(f"{kind.__name__} cannot be replicated (it has no classmethod "
                         f"'replicate'; see mannrl_gym.protocols.AgentReplicas)")
    why = inherited_replicate(kind)
    if why is not None:
        raise ValueError(f"{kind.__name__} cannot be replicated: {why}")
    return make(list(agents), slots)


def _active(info: dict[str, np.ndarray], slots: int) -> np.ndarray:
    """(K,) bool: which replicas are still in their pass."""
    return info["replica_active"][::slots]


class EachReplica:
    """Any memory agents, each one's ``explore`` and ``observe`` called on its own B rows: what
    K single runs do, one after another. A user's agent class becomes replicable with

    ```python
    @classmethod
    def replicate(cls, agents, slots):
        return EachReplica(agents, slots)
    ```
    """

    def __init__(self, agents: Sequence, slots: int) -> None:
        self.agents, self.slots = list(agents), slots

    def explore(self, observation: np.ndarray) -> np.ndarray:
        states = np.asarray(observation).reshape(len(self.agents), self.slots, -1)
        return np.concatenate([agent.explore(state) for agent, state in zip(self.agents, states)])

    def observe(self, observation: np.ndarray, reward: np.ndarray,
                info: dict[str, np.ndarray]) -> list[dict | None]:
        active, slots = _active(info, self.slots), self.slots
        results: list[dict | None] = [None] * len(self.agents)
        for k, agent in enumerate(self.agents):
            if active[k]:
                rows = slice(k * slots, (k + 1) * slots)
                results[k] = agent.observe(observation[rows], reward[rows],
                                           {key: value[rows] for key, value in info.items()})
        return results

    def device_nets(self, device: Any) -> None:
        raise ValueError(f"{type(self.agents[0]).__name__} has no device path: train it with "
                         f"device=cpu")


class ZeroMemoryReplicas:
    """K agents that always write a zero memory (``NoMemoryAgent``)."""

    def __init__(self, agents: Sequence, slots: int) -> None:
        self.agents, self.slots = list(agents), slots
        self.memory_size = self.agents[0].memory_size

    def explore(self, observation: np.ndarray) -> np.ndarray:
        return np.zeros((observation.shape[0], self.memory_size), dtype=np.float32)

    def observe(self, observation, reward, info) -> list[None]:
        return [None] * len(self.agents)

    def device_nets(self, device: Any) -> None:
        return None


class ReplicatedAgents:
    """K ``MannRLAgent``s (or its controls) of B slots each; see the module's docstring."""

    def __init__(self, agents: Sequence, slots: int) -> None:
        self.agents, self.slots = list(agents), slots
        first = self.agents[0]
        self.layout = first.layout
        self.memory_size = first.layout.memory_size
        self.batched_act = first.numpy_update is not None  # no embeddings
        self._weights: np.ndarray | None = None
        self._biases: np.ndarray | None = None
        self._folded = np.full(len(self.agents), -1)  # each row's agent version, as folded
        # the K replays: rows of stacked buffers (K, history, B, ...), filled by one write
        replay = first.replay
        self.replay_stacks = [
            torch.zeros((len(self.agents),) + tuple(field.shape), dtype=field.dtype)
            for field in (replay.states, replay.rewards, replay.usable, replay.valid)]
        for k, agent in enumerate(self.agents):
            agent.replay.bind(*(stack[k] for stack in self.replay_stacks))
        self._replays = tuple(stack.numpy() for stack in self.replay_stacks)

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Next memories (K * B, M) for observations (K * B, D), as each agent's ``act``."""
        replicas = len(self.agents)
        states = np.asarray(observation, dtype=np.float32).reshape(replicas, self.slots, -1)
        if not self.batched_act:  # embedded inputs: each agent's own act
            return np.concatenate([agent.act(state) for agent, state in zip(self.agents, states)])
        if self._weights is None:
            self._weights = np.empty((replicas,) + states.shape[2:] + (self.memory_size,),
                                     np.float32)  # (K, D, M)
            self._biases = np.empty((replicas, 1, self.memory_size), np.float32)
        for k, agent in enumerate(self.agents):
            if self._folded[k] != agent.version:  # f changed (an update, a load): fold it again
                self._weights[k], self._biases[k, 0] = agent.folded()[-1]
                self._folded[k] = agent.version
        memory = act_folded([(self._weights, self._biases)], states, self.layout)
        return memory.reshape(replicas * self.slots, self.memory_size)

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """The paper's agent explores through its updates: ``act``."""
        return self.act(observation)

    def observe(self, observation: np.ndarray, reward: np.ndarray,
                info: dict[str, np.ndarray]) -> list[dict | None]:
        """Each active replica's agent observes its rows (as ``MannRLAgent.observe``: the
        replicas' replay rows are written by one indexed assignment); its update statistics,
        else None."""
        shape = (len(self.agents), self.slots)
        active = _active(info, self.slots)
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

    def device_nets(self, device: torch.device):
        """The K memory-nets, their optimizer state and replays on ``device``."""
        from mannrl_gym.replicas.device_memory import DeviceMemoryNets

        return DeviceMemoryNets(self.agents, self.replay_stacks, device)
