"""What replicas a command asks for: ``seeds=0-7`` / ``seeds=0,3,5`` and sweep points
``replicas=[{lr: 1e-4}, {lr: 3e-4}]`` (every point runs with every seed), checked up front."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mannrl_gym.config import Config, ConfigError, from_mapping
from mannrl_gym.replicas.agents import replicable, replicable_names, replicate_mismatch

# keys a sweep point may set: they change no shape and no data, so replicas stay stackable
POINT_KEYS = ("lr", "clipping", "memory_lr", "memory_clipping", "memory_clamp", "gamma",
              "memory_lr_decay", "memory_lr_decay_every", "memory_train_iterations",
              "memory_samples", "settle", "detach_target")
MAX_REPLICAS = 256
MAX_DEVICE_REPLICAS = 1024  # device != cpu
# keys every replica must share on a device (its memory updates of one phase run together)
DEVICE_SHARED_KEYS = ("settle", "memory_train_iterations", "memory_samples")


@dataclass(frozen=True)
class Replica:
    """One replica: its run directory's name (under the parent run) and its config."""

    name: str
    config: Config


MAX_SEEDS = 4096  # replicas in one process; far more than fit in memory


def parse_seeds(value: Any, source: str = "command line") -> list[int]:
    """``3``, ``"0-7"`` (inclusive), ``"0,3,5"``, ``"0-3,8"`` or a list of ints -> seeds."""
    def fail(why: str):
        got = "nothing" if value is None else repr(value)  # `seeds=` reads as None
        raise ConfigError(f"{source}: key 'seeds' {why}, got {got} (e.g. seeds=0-7 or "
                          f"seeds=0,3,5)")
    if isinstance(value, bool):
        fail("must be seeds")
    if isinstance(value, int):
        parts: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    else:
        fail("must be a seed, a range a-b or a comma-separated list")
    seeds: list[int] = []
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            seeds.append(part)
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", str(part))
        if not match:
            fail(f"has a part {part!r} that is neither a whole number >= 0 nor a range a-b")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            fail(f"has an empty range {part!r} (the end must be >= the start)")
        if len(seeds) + high - low >= MAX_SEEDS:  # before a list of a billion seeds
            fail(f"names more than {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    if any(seed < 0 for seed in seeds):
        fail("must hold seeds >= 0")
    if not seeds:
        fail("names no seed")
    repeated = sorted(seed for seed, count in Counter(seeds).items() if count > 1)
    if repeated:
        fail(f"repeats seed(s) {repeated}")
    return seeds


def parse_points(value: Any, source: str = "command line") -> list[dict[str, Any]]:
    """A list of mappings of POINT_KEYS, e.g. ``[{lr: 1e-4}, {lr: 3e-4, gamma: 0.9}]``."""
    example = "e.g. replicas='[{lr: 1e-4}, {lr: 3e-4}]'"
    if not isinstance(value, list) or not value or not all(isinstance(p, dict) and p
                                                           for p in value):
        raise ConfigError(f"{source}: key 'replicas' must be a list of key: value mappings, "
                          f"{example}; got {value!r}")
    for point in value:
        for key in point:
            if key not in POINT_KEYS:
                why = ("give the seeds with seeds=..., every point runs with each" if key == "seed"
                       else "it changes shapes, data or what runs, so replicas would not stack"
                       if key in Config.__dataclass_fields__ else "it is no config key")
                raise ConfigError(f"{source}: key 'replicas' sets '{key}', which a replica "
                                  f"cannot vary: {why}. Replicas may vary: "
                                  f"{', '.join(POINT_KEYS)} (and seeds=...)")
    seen = [tuple(sorted(p.items())) for p in value]
    repeated = [dict(p) for i, p in enumerate(seen) if p in seen[:i]]
    if repeated:
        raise ConfigError(f"{source}: key 'replicas' repeats the point {repeated[0]}")
    return value


def _point_name(point: dict[str, Any]) -> str:
    return "+".join(f"{key}={value}" for key, value in point.items())


def replicas(base: Config, seeds: list[int] | None,
             points: list[dict[str, Any]] | None) -> list[Replica]:
    """Every (point, seed) of the request as a checked config; names like ``seed3`` or
    ``lr=0.0003-seed3``. Raises ConfigError for an agent that cannot be replicated."""
    if not replicable(base.agent):
        why = replicate_mismatch(base.agent)
        raise ConfigError(f"{base.source}: key 'agent' is '{base.agent}', which cannot run as "
                          f"replicas{f' ({why})' if why else ''}; replicated agents: "
                          f"{', '.join(replicable_names())} (run the others one seed per "
                          f"process)")
    seeds = seeds if seeds is not None else [base.seed]
    points = points if points is not None else [{}]
    limit = MAX_REPLICAS if base.device == "cpu" else MAX_DEVICE_REPLICAS
    if len(seeds) * len(points) > limit:
        raise ConfigError(f"{base.source}: keys 'seeds' and 'replicas' ask for "
                          f"{len(seeds) * len(points)} replicas ({len(seeds)} seed(s) x "
                          f"{len(points)} point(s)); at most {limit} run in one process with "
                          f"device={base.device}")
    result = []
    for point in points:
        for seed in seeds:
            name = "-".join(filter(None, [_point_name(point), f"seed{seed}"]))
            config = from_mapping({**base.to_dict(), **point, "seed": seed},
                                  source=f"{base.source} (replica {name})")
            result.append(Replica(name, config))
    _check_distinct(result, base.source)
    check_device([r.config for r in result], base.source)
    return result


def _check_distinct(chosen: list[Replica], source: str) -> None:
    """ConfigError when two sweep points give one config once their values are read
    (``{lr: 1e-4}`` and ``{lr: 0.0001}``, or a point that sets the config's own value)."""
    seen: dict[str, str] = {}
    for replica in chosen:
        key = repr(sorted(replica.config.to_dict().items()))
        if key in seen:
            raise ConfigError(f"{source}: key 'replicas' gives replicas {seen[key]} and "
                              f"{replica.name} the same config (the same run twice)")
        seen[key] = replica.name


def device_refusal(memory_optimizer: str) -> str | None:
    """Why the device path cannot run these settings, or None (the one place that says it:
    the request's check and the device classes use it)."""
    if memory_optimizer != "rmsprop":
        return (f"the device path steps the memory-net with RMSprop only (memory_optimizer "
                f"is '{memory_optimizer}')")
    return None


def check_device(configs: list[Config], source: str | None = None) -> None:
    """ConfigError naming the key when the replicas' ``device`` cannot run them: a setting the
    device path does not support (checked first: no device would run it), or a device torch
    does not find here. ``source`` names the request (default: the first replica's)."""
    first = configs[0]
    if first.device == "cpu":
        return
    from mannrl_gym.replicas.device import check_device as usable  # torch's device checks

    where = f"{source or first.source}: key 'device'"
    source = f"{where} is '{first.device}'"
    refusal = device_refusal(first.memory_optimizer)
    if refusal is not None:
        raise ConfigError(f"{source}, but {refusal}; use device=cpu")
    for key in DEVICE_SHARED_KEYS:
        if len({getattr(c, key) for c in configs}) > 1:
            raise ConfigError(f"{source}, and there the replicas must share '{key}' (their "
                              f"memory updates run together); sweep it with device=cpu")
    try:
        usable(first.device)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}; use device=cpu") from None
