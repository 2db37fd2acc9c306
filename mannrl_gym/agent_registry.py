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

``config.agent`` may also be a spec ``package.module:Class`` (on the command line, in a config
file, in a run's ``config.yaml``): ``resolve`` imports it on first use and registers it under
the spec itself, as a memory agent, or as an experiment when the class has ``run_epoch`` and
``evaluate`` (``mannrl_gym.protocols``).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal

from mannrl_gym.errors import ConfigError


@dataclass(frozen=True)
class AgentEntry:
    """One name ``config.agent`` may take."""

    name: str
    entry_point: str | Callable[..., Any]  # "module:attribute", or the class / factory itself
    kind: Literal["memory_agent", "experiment"]
    summary: str  # one line, for ``docs/config.md`` and error messages
    reads_features: bool = True  # False: predicts from symbol ids alone (POS needs no vectors)
    # the agent-specific config keys it reads (``specific_keys``: a key some agent declares;
    # the others refuse a value other than its default); None: undeclared, any key
    reads: tuple[str, ...] | None = None
    # a memory agent's memory-net keys (``MEMORY_NET_KEYS``) that it reads; None: all of them
    # (an experiment reads none). A key declared unread is refused on the command line.
    memory_keys: tuple[str, ...] | None = None

    def load(self) -> Callable[..., Any]:
        """The factory the entry point names (imported now)."""
        if callable(self.entry_point):
            return self.entry_point
        module, _, attribute = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), attribute)


REGISTRY: dict[str, AgentEntry] = {}


def register_agent(name: str, entry_point: str | Callable[..., Any], summary: str = "",
                   kind: Literal["memory_agent", "experiment"] = "memory_agent",
                   reads_features: bool = True, reads: tuple[str, ...] | None = None,
                   memory_keys: tuple[str, ...] | None = None) -> AgentEntry:
    """Make ``name`` a valid ``config.agent``; raise ValueError if another agent holds it.
    The same entry point again (the same string, or a class of the same module and qualified
    name, as a re-run notebook cell defines) replaces the entry."""
    if name in REGISTRY and _qualified(REGISTRY[name].entry_point) != _qualified(entry_point):
        raise ValueError(f"agent name {name!r} is already registered (to "
                         f"{_qualified(REGISTRY[name].entry_point)}); register "
                         f"{_qualified(entry_point)} under another name")
    if not callable(entry_point) and ":" not in entry_point:
        raise ValueError(f"entry_point must be 'module:attribute', got {entry_point!r}")
    REGISTRY[name] = AgentEntry(name, entry_point, kind, summary, reads_features,
                                None if reads is None else tuple(reads),
                                None if memory_keys is None else tuple(memory_keys))
    return REGISTRY[name]


def specific_keys() -> dict[str, list[str]]:
    """Each config key that some registered agent declares it reads (``AgentEntry.reads``)
    -> those agents, in registration order."""
    readers: dict[str, list[str]] = {}
    for name, agent in REGISTRY.items():
        for key in agent.reads or ():
            readers.setdefault(key, []).append(name)
    return readers


# the memory-net's keys: what f is, how it learns, what it carries. An experiment that
# declares what it reads (``reads`` not None: the LSTM, most_frequent_tag, perfect_memory)
# has no memory-net and reads none of them.
MEMORY_NET_KEYS = ("memory_size", "history", "settle", "memory_train_iterations",
                   "memory_optimizer", "memory_lr", "memory_clipping", "memory_samples",
                   "memory_lr_decay_every", "memory_lr_decay", "memory_clamp", "gamma",
                   "memory_sees_output", "detach_target", "carry_memory")


def unread_keys(name: str) -> frozenset[str]:
    """The config keys agent ``name`` declares it never reads: the other agents' own keys
    (``specific_keys``) and the memory-net's (``MEMORY_NET_KEYS``) that it does not read (an
    experiment without a memory-net: all; a memory agent: those outside its
    ``memory_keys``). Empty for an agent that declares nothing (``reads`` None) or is not
    registered."""
    entry = REGISTRY.get(name)
    if entry is None or entry.reads is None:
        return frozenset()
    unread = set(specific_keys()) - set(entry.reads)
    if entry.kind == "experiment":
        unread |= set(MEMORY_NET_KEYS) - set(entry.reads)
    elif entry.memory_keys is not None:
        unread |= set(MEMORY_NET_KEYS) - set(entry.memory_keys)
    return frozenset(unread)


def _qualified(entry_point: str | Callable[..., Any]) -> str:
    """``"module:attribute"`` for an entry point given either way."""
    if isinstance(entry_point, str):
        return entry_point
    return f"{getattr(entry_point, '__module__', '?')}:{getattr(entry_point, '__qualname__', '?')}"


_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_EXPERIMENT_METHODS = ("run_epoch", "evaluate", "state_dict", "load_state_dict")
_MEMORY_AGENT_METHODS = ("act", "explore", "observe", "start_epoch", "state_dict",
                         "load_state_dict")


def is_spec(name: str) -> bool:
    """True when ``name`` has the form ``package.module:Class``."""
    return bool(_SPEC.fullmatch(name))


def resolve(name: str) -> AgentEntry:
    """The entry of ``name``: a registered name, or a ``package.module:Class`` spec, imported
    and registered under the spec on first use. ConfigError (without a source) says why a
    spec cannot serve; KeyError names the registered agents for any other unknown name."""
    if name in REGISTRY:
        return REGISTRY[name]
    if not is_spec(name):
        raise KeyError(f"no agent named {name!r}; registered: {agent_names()}")
    module_name, _, attribute = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"is {name!r}, but module {module_name!r} cannot be imported ({exc}); "
                          f"put the folder that holds it on PYTHONPATH") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"is {name!r}, but module {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    if name in REGISTRY:  # importing the module registered the spec itself
        return REGISTRY[name]
    if isinstance(target, type) and all(hasattr(target, m) for m in _EXPERIMENT_METHODS):
        kind: Literal["memory_agent", "experiment"] = "experiment"
    elif callable(target) and (not isinstance(target, type)
                               or all(hasattr(target, m) for m in _MEMORY_AGENT_METHODS)):
        kind = "memory_agent"  # a class with the methods, or a factory that returns one
    else:
        raise ConfigError(f"is {name!r}, which is neither a memory agent (methods "
                          f"{', '.join(_MEMORY_AGENT_METHODS)}) nor an experiment (methods "
                          f"{', '.join(_EXPERIMENT_METHODS)}); see mannrl_gym.protocols")
    summary = ((getattr(target, "__doc__", None) or "").strip().splitlines() or [""])[0]
    return register_agent(name, target, summary, kind,
                          reads_features=bool(getattr(target, "reads_features", True)))


def agent_names() -> list[str]:
    """Every registered name, in registration order."""
    return list(REGISTRY)


def entry(name: str) -> AgentEntry:
    """The entry of ``name`` (a ``package.module:Class`` spec is imported: ``resolve``);
    KeyError naming the registered ones if there is none."""
    return resolve(name)


def has_memory_agent(name: str) -> bool:
    """True when ``name`` is a memory agent (a memory-net predict and plot can replay);
    a ``package.module:Class`` spec is imported to tell."""
    try:
        return resolve(name).kind == "memory_agent"
    except (KeyError, ConfigError):
        return False


def memory_agent_names() -> list[str]:
    """The registered memory agents (``agents.make_agent`` builds them)."""
    return [name for name in REGISTRY if has_memory_agent(name)]


_AGENTS = "mannrl_gym.agents"
_EXPERIMENTS = "mannrl_gym.experiments"
_WINDOW = ("agent_window",)  # the agents that learn from the reward over a window of steps
# the memory-net keys each agent other than mannrl reads: those that change a run of it
# (every metric, memory_loss included); the others leave its runs identical
# (tests/test_agent_keys.py). The agents that learn f another way than the paper's TD step
# skip that step's keys, and those with no discounted return of the paper's its gamma.
_ACTING = ("memory_size", "memory_sees_output", "carry_memory")  # what f writes, not learns
_TD_STEP = ("memory_optimizer", "memory_lr", "memory_clipping", "memory_lr_decay_every",
            "memory_lr_decay", "detach_target")  # the paper's weight step of f alone


def _without(*skipped: str) -> tuple[str, ...]:
    return tuple(key for key in MEMORY_NET_KEYS if key not in skipped)


_MEMORY_KEYS = {"no_memory": ("memory_size",), "frozen_memory": _ACTING,
                "frozen_weights": _without(*_TD_STEP), "pg": _without(*_TD_STEP),
                "es": _without(*_TD_STEP, "gamma"), "repaired": _without(*_TD_STEP, "gamma"),
                "reward_grad": _without(*_TD_STEP, "gamma")}
for _args in (
    ("mannrl", f"{_AGENTS}.mannrl_agent:MannRLAgent",
     "the paper's memory-net, trained by Q-learning on A's loss", ()),
    ("no_memory", f"{_AGENTS}.baselines:NoMemoryAgent", "always writes a zero memory", ()),
    ("frozen_memory", f"{_AGENTS}.baselines:FrozenMemoryAgent",
     "the memory-net frozen at its initial weights and statistics", ()),
    ("frozen_weights", f"{_AGENTS}.baselines:FrozenWeightsAgent",
     "initial weights; batch-norm statistics follow the memories on the paper's schedule", ()),
    ("es", f"{_AGENTS}.es_agent:EvolutionStrategiesAgent",
     "evolution strategies on the memory-net's weights, from the reward alone",
     _WINDOW + ("es_population", "es_sigma", "es_lr")),
    ("pg", f"{_AGENTS}.pg_agent:PolicyGradientAgent",
     "Gaussian memory writes trained by clipped policy gradient on the reward",
     _WINDOW + ("pg_sigma", "pg_lr", "pg_clip")),
    ("repaired", f"{_AGENTS}.repaired_agent:RepairedAgent",
     "the paper's TD update repaired as an actor-critic: target critic, detached bootstrap, "
     "per-unit credit", _WINDOW + ("repaired_sigma", "repaired_actor_lr", "repaired_critic_lr",
                                   "repaired_tau", "repaired_gamma", "repaired_explore_units")),
    ("reward_grad", f"{_AGENTS}.reward_grad_agent:RewardGradientAgent",
     "f trained by the gradient of A's loss through the one write it made (no BPTT)",
     _WINDOW + ("reward_grad_lr", "reward_grad_trace")),
):
    register_agent(*_args[:3], reads=_args[3], memory_keys=_MEMORY_KEYS.get(_args[0]))
register_agent("lstm", f"{_EXPERIMENTS}.lstm:LSTMExperiment",
               "an LSTM trained by backpropagation through time (no memory-net)",
               kind="experiment", reads=())
register_agent("most_frequent_tag", f"{_EXPERIMENTS}.most_frequent:MostFrequentTagExperiment",
               "each input symbol gets its most frequent training target", kind="experiment",
               reads_features=False, reads=())
register_agent("perfect_memory", f"{_EXPERIMENTS}.most_frequent:PerfectMemoryExperiment",
               "each full input history gets its most frequent training target (the ceiling)",
               kind="experiment", reads_features=False, reads=())
