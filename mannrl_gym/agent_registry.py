"""One registry of what ``config.agent`` may name, read by config validation, the trainer,
``mannrl predict`` and ``mannrl plot``.

Two kinds of entry:

* ``memory_agent``: a :class:`~mannrl_gym.protocols.MemoryAgent` class (or factory) called as
  ``factory(layout, config, num_slots, seed)``; the trainer runs it in the batched env
  (``experiments.MannRLExperiment``), and predict and plot can replay it.
* ``experiment``: a baseline that is a whole :class:`~mannrl_gym.protocols.Experiment`
  (``factory(config, task)``) with no memory-net, e.g. the LSTM.

Entry points are ``"module:attribute"`` strings imported on first use, as in
``gymnasium.register``, so that reading the names imports no network code (the config module
reads them); ``register_agent`` also takes the class itself, for a user's own memory agent.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Literal


@dataclass(frozen=True)
class AgentEntry:
    """One name ``config.agent`` may take."""

    name: str
    entry_point: str | Callable[..., Any]  # "module:attribute", or the class / factory itself
    kind: Literal["memory_agent", "experiment"]
    summary: str  # one line, for ``docs/config.md`` and error messages
    reads_features: bool = True  # False: predicts from symbol ids alone (POS needs no vectors)

    def load(self) -> Callable[..., Any]:
        """The factory the entry point names (imported now)."""
        if callable(self.entry_point):
            return self.entry_point
        module, _, attribute = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), attribute)


REGISTRY: dict[str, AgentEntry] = {}


def register_agent(name: str, entry_point: str | Callable[..., Any], summary: str = "",
                   kind: Literal["memory_agent", "experiment"] = "memory_agent",
                   reads_features: bool = True) -> AgentEntry:
    """Make ``name`` a valid ``config.agent``; raise ValueError if another agent holds it.
    The same entry point again (the same string, or a class of the same module and qualified
    name, as a re-run notebook cell defines) replaces the entry."""
    if name in REGISTRY and _qualified(REGISTRY[name].entry_point) != _qualified(entry_point):
        raise ValueError(f"agent name {name!r} is already registered (to "
                         f"{_qualified(REGISTRY[name].entry_point)}); register "
                         f"{_qualified(entry_point)} under another name")
    if not callable(entry_point) and ":" not in entry_point:
        raise ValueError(f"entry_point must be 'module:attribute', got {entry_point!r}")
    REGISTRY[name] = AgentEntry(name, entry_point, kind, summary, reads_features)
    return REGISTRY[name]


def _qualified(entry_point: str | Callable[..., Any]) -> str:
    """``"module:attribute"`` for an entry point given either way."""
    if isinstance(entry_point, str):
        return entry_point
    return f"{getattr(entry_point, '__module__', '?')}:{getattr(entry_point, '__qualname__', '?')}"


def agent_names() -> list[str]:
    """Every registered name, in registration order."""
    return list(REGISTRY)


def entry(name: str) -> AgentEntry:
    """The entry of ``name``; KeyError naming the registered ones if there is none."""
    if name not in REGISTRY:
        raise KeyError(f"no agent named {name!r}; registered: {agent_names()}")
    return REGISTRY[name]


def has_memory_agent(name: str) -> bool:
    """True when ``name`` is a memory agent (a memory-net predict and plot can replay)."""
    return name in REGISTRY and REGISTRY[name].kind == "memory_agent"


def memory_agent_names() -> list[str]:
    """The registered memory agents (``agents.make_agent`` builds them)."""
    return [name for name in REGISTRY if has_memory_agent(name)]


_AGENTS = "mannrl_gym.agents"
_EXPERIMENTS = "mannrl_gym.experiments"
for _args in (
    ("mannrl", f"{_AGENTS}.mannrl_agent:MannRLAgent",
     "the paper's memory-net, trained by Q-learning on A's loss"),
    ("no_memory", f"{_AGENTS}.baselines:NoMemoryAgent", "always writes a zero memory"),
    ("frozen_memory", f"{_AGENTS}.baselines:FrozenMemoryAgent",
     "the memory-net frozen at its initial weights and statistics"),
    ("frozen_weights", f"{_AGENTS}.baselines:FrozenWeightsAgent",
     "initial weights; batch-norm statistics follow the memories on the paper's schedule"),
    ("es", f"{_AGENTS}.es_agent:EvolutionStrategiesAgent",
     "evolution strategies on the memory-net's weights, from the reward alone"),
    ("pg", f"{_AGENTS}.pg_agent:PolicyGradientAgent",
     "Gaussian memory writes trained by clipped policy gradient on the reward"),
    ("repaired", f"{_AGENTS}.repaired_agent:RepairedAgent",
     "the paper's TD update repaired as an actor-critic: target critic, detached bootstrap, "
     "per-unit credit"),
):
    register_agent(*_args)
register_agent("lstm", f"{_EXPERIMENTS}.lstm:LSTMExperiment",
               "an LSTM trained by backpropagation through time (no memory-net)",
               kind="experiment")
register_agent("most_frequent_tag", f"{_EXPERIMENTS}.most_frequent:MostFrequentTagExperiment",
               "each input symbol gets its most frequent training target", kind="experiment",
               reads_features=False)
register_agent("perfect_memory", f"{_EXPERIMENTS}.most_frequent:PerfectMemoryExperiment",
               "each full input history gets its most frequent training target (the ceiling)",
               kind="experiment", reads_features=False)
