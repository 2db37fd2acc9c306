"""One pass of a memory agent through the batched env: the loop every caller shares.

The trainer (learning), evaluation, ``mannrl plot``'s memory trace and the benchmarks all
step a :class:`~mannrl_gym.envs.vector_env.MannRLVectorEnv` the same way: reset, then at each
step the agent writes the next memory from the observation, until the pass's last step.
"""

from __future__ import annotations

from typing import Any, Iterator, NamedTuple

import numpy as np

from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.protocols import MemoryAgent


class Step(NamedTuple):
    """One env step of a rollout (B slots); the first item of a rollout is the reset."""

    observation: np.ndarray  # (B, D)
    reward: np.ndarray | None  # (B,); None at the reset
    info: dict[str, Any]  # the env's info, arrays of shape (B,)
    update: dict[str, float] | None  # the agent's statistics when it learned at this step


def rollout(env: MannRLVectorEnv, agent: MemoryAgent, *, training: bool = False,
            seed: int | None = None, options: dict[str, Any] | None = None,
            max_steps: int | None = None) -> Iterator[Step]:
    """Reset ``env`` (``seed``, ``options``) and yield the reset, then each of the pass's
    T - 1 steps (at most ``max_steps``).

    training: the agent writes ``agent.explore(s)`` and ``observe``s every step (it learns);
    otherwise it writes ``agent.act(s)`` and learns nothing.
    """
    observation, info = env.reset(seed=seed, options=options)
    yield Step(observation, None, info, None)
    steps = env.steps_per_pass - 1
    steps = steps if max_steps is None else min(steps, max_steps)
    write = agent.explore if training else agent.act
    for _ in range(steps):
        observation, reward, _, _, info = env.step(write(observation))
        update = agent.observe(observation, reward, info) if training else None
        yield Step(observation, reward, info, update)


def train_steps(env: MannRLVectorEnv, agent: MemoryAgent, steps: int,
                seed: int | None = None) -> None:
    """``steps`` training steps (the agent explores and learns), pass after pass; the first
    pass resets with ``seed``, each later one reshuffles."""
    done = 0
    while done < steps:
        passes = rollout(env, agent, training=True, seed=seed if done == 0 else None,
                         max_steps=steps - done)
        next(passes)  # the reset
        done += sum(1 for _ in passes)
