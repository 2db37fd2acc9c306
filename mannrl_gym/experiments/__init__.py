"""What ``mannrl train`` runs (each an :class:`~mannrl_gym.protocols.Experiment`).

* :class:`MannRLExperiment` (``memory_agent.py``): the paper's setting, the batched env with A
  learning inside it and a memory agent (every ``memory_agent`` entry of the agent registry).
* Baselines that are whole experiments, with no memory-net: ``lstm.LSTMExperiment`` (the
  recurrent peer, trained by backpropagation through time), ``most_frequent``'s
  ``MostFrequentTagExperiment`` and ``PerfectMemoryExperiment`` (lookup tables).

All report the same metrics, so their rows line up. ``make_experiment`` picks one by
``config.agent`` through ``mannrl_gym.agent_registry``.
"""

from __future__ import annotations

from mannrl_gym import agent_registry
from mannrl_gym.config import Config
from mannrl_gym.experiments.memory_agent import MannRLExperiment
from mannrl_gym.protocols import Experiment
from mannrl_gym.tasks.base import Task


def make_experiment(config: Config, task: Task) -> Experiment:
    """The experiment ``config.agent`` names: its own class for an ``experiment`` entry, else
    the batched env with that memory agent."""
    entry = agent_registry.entry(config.agent)
    if entry.kind == "experiment":
        return entry.load()(config, task)
    return MannRLExperiment(config, task)


__all__ = ["MannRLExperiment", "make_experiment"]
