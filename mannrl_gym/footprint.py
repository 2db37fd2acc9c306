"""What a run would allocate, estimated before it allocates anything.

``estimate`` adds up the big arrays of a run from its config and task: the epoch streams
((T, B) ids and flags per env), the observations, the memory agent's replay (history x B x D),
A's activations, the evaluation envs (eval_batch_size slots each) and the two networks with
their optimizer states. It is a lower bound (Python objects, temporaries and the allocator's
slack come on top); ``check_footprint`` refuses a run whose estimate exceeds the machine's
physical memory, naming the key that drives it.
"""

from __future__ import annotations

import os

from mannrl_gym import agent_registry
from mannrl_gym.config import Config
from mannrl_gym.errors import ConfigError

FLOAT = 4  # bytes of a float32
STREAM_BYTES_PER_STEP = 4 * 8 + 4  # EpochStream: four int64 and four bool (T, B) tensors


def _stream_bytes(data, slots: int) -> int:
    """An epoch stream of ``data`` over ``slots`` slots: T >= tokens / slots plus the longest
    sequence (the tail) and the mean length (the stagger)."""
    tokens = data.num_tokens
    lengths = data.lengths
    longest = int(lengths.max()) if len(lengths) else 0
    mean = tokens // max(1, len(lengths))
    steps = -(-tokens // slots) + longest + mean
    return steps * slots * STREAM_BYTES_PER_STEP


def estimate(config: Config, task) -> dict[str, int]:
    """Bytes per part of a run of ``config`` on ``task``: {"training slots", "evaluation
    slots", "action network", "memory-net"}."""
    memory, hidden, layers = config.memory_size, config.hidden_size, config.hidden_layers
    width = memory + task.input_dim + task.num_outputs  # one observation, D
    has_memory = agent_registry.has_memory_agent(config.agent)
    batch, eval_batch = config.batch_size, config.eval_batch_size
    replay = (config.history + 1) * batch * width * FLOAT if has_memory else 0
    training = (_stream_bytes(task.train, batch) + replay
                + batch * (4 * width + 6 * hidden * layers) * FLOAT)
    evaluation = sum(_stream_bytes(data, eval_batch)
                     + eval_batch * (4 * width + 2 * hidden * layers) * FLOAT
                     for data in (task.train, task.validation))
    action_net = ((config.embed_size or task.input_dim) + memory) * hidden \
        + hidden * hidden * (layers - 1) + hidden * task.num_outputs
    memory_net = width * memory if has_memory else 0
    # weights, gradients, two optimizer moments; the memory-net also has an eval copy
    return {"training slots": training, "evaluation slots": evaluation,
            "action network": 4 * action_net * FLOAT, "memory-net": 5 * memory_net * FLOAT}


def physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


DRIVING_KEY = {"training slots": "batch_size", "evaluation slots": "eval_batch_size",
               "action network": "hidden_size", "memory-net": "memory_size"}


def check_footprint(config: Config, task, limit: int | None = None) -> None:
    """ConfigError when ``estimate`` exceeds ``limit`` bytes (default: physical memory)."""
    limit = physical_memory() if limit is None else limit
    if limit is None:
        return
    parts = estimate(config, task)
    total = sum(parts.values())
    if total <= limit:
        return
    largest = max(parts, key=parts.get)
    key = DRIVING_KEY[largest]
    raise ConfigError(f"{config.source}: this run would allocate at least {total / 2**30:,.1f} "
                      f"GiB ({largest}: {parts[largest] / 2**30:,.1f} GiB, from {key}="
                      f"{getattr(config, key)}), more "
                      f"than this machine's {limit / 2**30:,.1f} GiB of memory; lower {key}")
