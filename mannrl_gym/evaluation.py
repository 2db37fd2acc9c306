"""One evaluation pass of (action network, memory agent) over a split, nothing learned."""

from __future__ import annotations

import numpy as np
import torch

from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.metrics import summarize


@torch.no_grad()
def evaluate(env: MannRLVectorEnv, agent) -> dict[str, float]:
    """Run ``agent`` over one pass of ``env`` (a non-learning env) and return its metrics."""
    if env.learn:
        raise ValueError("evaluate() needs an env built with learn=False")
    observation, info = env.reset()
    steps = env.steps_per_pass
    keys = ("prediction", "target", "answer_step", "long_range", "kind", "loss", "valid")
    rows = {k: [info[k]] for k in keys}
    for _ in range(steps - 1):
        observation, _, _, _, info = env.step(agent.act(observation))
        for k in keys:
            rows[k].append(info[k])
    flat = {k: torch.from_numpy(np.stack(v)).reshape(-1) for k, v in rows.items()}
    valid = flat.pop("valid")
    flat = {k: v[valid] for k, v in flat.items()}
    return summarize(flat["prediction"], flat["target"], flat["answer_step"], flat["long_range"],
                     flat["kind"], flat["loss"], env.task.num_outputs, env.data.kind_names)
