"""MANN-RL environments. Importing ``mannrl_gym`` registers them with Gymnasium:

* ``MannRL-Logic-v0``: the paper's logic task (section 4.1, Table 1).
* ``MannRL-Symbolic-v0``: a user's own task from a JSON-lines file (``data_path=...``).
* ``MannRL-POS-v0``: part-of-speech tagging (section 4.2; ``data_path``, ``val_path``,
  ``vectors_path``).
* ``MannRL-Sentence-v0`` / ``MannRL-Translate-v0``: read a sentence character by character,
  write it (or its translation) back from memory (section 4.3, Table 3 defaults;
  ``data_path`` and, for translation, ``target_path``).

``gymnasium.make(id, **config_keys)`` gives the single-slot :class:`MannRLEnv`;
``gymnasium.make_vec(id, num_envs=B, **config_keys)`` the batched :class:`MannRLVectorEnv`;
``make_vec(id, num_envs=B, replicas=K)`` K independent replicas of it (seeds seed..seed+K-1)
as one :class:`ReplicatedVectorEnv` of K * B rows (docs/replicas.md).
Keyword arguments are config keys (see ``mannrl_gym.config.Config``), checked the same way.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import replace
from typing import Any

import gymnasium

from mannrl_gym import agent_registry, threads
from mannrl_gym.config import (PATH_KEYS, Config, ConfigError, from_mapping,
                               refuse_paths_beside_sample)
from mannrl_gym.envs.core import ActionError, ObservationLayout, check_replica_seed
from mannrl_gym.envs.single_env import MannRLEnv
from mannrl_gym.envs.replicated_env import ReplicatedVectorEnv
from mannrl_gym.envs.user_warning import warn_at_user_line
from mannrl_gym.envs.vector_env import MannRLVectorEnv, check_num_envs
from mannrl_gym.presets import env_preset, ids_of_task
from mannrl_gym.samples import SAMPLE_FILES
from mannrl_gym.tasks import build_task, stand_in_note
from mannrl_gym.tasks.base import Task


# keys of the memory agent and of `mannrl train`'s runs: an env has no agent and no run, so it
# reads none of them (each id still registers its table's values, e.g. POS's history 16)
UNREAD_BY_ENV = ("agent", "history", "settle", "memory_train_iterations", "memory_optimizer",
                 "memory_lr", "memory_clipping", "memory_samples", "memory_lr_decay_every",
                 "memory_lr_decay", "gamma", "agent_window", "detach_target", "epochs",
                 "eval_every", "out_dir", "run_name", "wandb_mode", "wandb_project",
                 "max_minutes", "progress")


def _without_unread(settings: dict[str, Any], kwargs: dict[str, Any], task: str
                    ) -> dict[str, Any]:
    """``settings`` less the keys the env does not read where ``kwargs`` set them (a value
    other than the one registered by the id of ``task``), with a warning at the user's line
    naming them; the registered value stays. Their values are checked first (a bad one is an
    error, read or not), but for the agents' own keys, which need their agent."""
    ids = ids_of_task(task)
    registered = {**(env_preset(ids[0]) if ids else {}), "wandb_mode": "disabled"}
    agents_own = set(agent_registry.specific_keys())
    passed = [key for key in kwargs if key in set(UNREAD_BY_ENV) | agents_own
              and (key not in registered or kwargs[key] != registered[key])]
    if not passed:
        return settings
    from_mapping({key: value for key, value in settings.items() if key not in agents_own},
                 source="environment kwargs")
    warn_at_user_line(f"the env does not read {', '.join(passed)}: they are keys of the memory "
                      f"agent or of `mannrl train`'s runs (an env has neither); ignored")
    return {key: registered[key] if key in passed else value for key, value in settings.items()
            if key not in passed or key in registered}


def _config(defaults: dict[str, Any], kwargs: dict[str, Any]) -> tuple[Config, str]:
    kwargs = dict(kwargs)
    split = kwargs.pop("split", "train")
    if split not in ("train", "validation"):  # before any warning about the split
        raise ConfigError(f"environment kwargs: split must be 'train' or 'validation', "
                          f"got {split!r}")
    # an env logs nothing: WANDB_MODE (which from_mapping reads where no key is given) is not
    # its business, whatever value the user's shell holds for wandb
    refuse_paths_beside_sample(kwargs, "environment kwargs")
    settings = {**defaults, "wandb_mode": "disabled", **kwargs}
    if (settings["task"] in SAMPLE_FILES and "data" not in settings
            and not any(settings.get(key) for key in PATH_KEYS)):
        settings["data"] = "sample"
        warn_at_user_line(f"no data_path given: task {settings['task']} steps through the "
                          f"sample shipped with mannrl-gym (data='sample'); pass data_path=... "
                          f"for your own data")
    if split != "train" and kwargs.get("replicas") is None:
        warn_at_user_line(f"split={split!r}: this env has an action network of its own, which "
                          f"learns from the {split} data as it steps; to evaluate a training "
                          f"env's network on it: train_env.evaluation_env() (a make_vec env), "
                          f"which shares it and does not train")
    config = from_mapping(_without_unread(settings, kwargs, defaults["task"]),
                          source="environment kwargs")
    if config.device != "cpu":  # the envs take and give NumPy arrays; nothing runs on a device
        raise ConfigError(f"environment kwargs: key 'device' is '{config.device}', but the envs "
                          f"step on the CPU (NumPy arrays in and out); device applies to "
                          f"`mannrl train`'s replicated runs (seeds=..., docs/replicas.md)")
    if "num_threads" in kwargs or multiprocessing.parent_process() is not None:
        limit_threads(config.num_threads)
    return config, split


def limit_threads(count: int) -> None:
    """Set torch's thread count for this whole process (NumPy's BLAS: one thread;
    ``mannrl_gym.threads.limit_threads``).

    An env applies it when given ``num_threads=N``, and always in a worker process of an
    async vector env (there the process is the env's alone, and with the default fork start
    method a torch thread pool inherited from the parent would hang the worker's first
    parallel operation).
    """
    threads.limit_threads(count)


def _task(config: Config) -> Task:
    """The config's task, warning at the user's line where most words lack a vector."""
    built = build_task(config)
    if note := stand_in_note(built):
        warn_at_user_line(note)
    return built


def make_env(task: str = "logic", render_mode: str | None = None, **kwargs: Any) -> MannRLEnv:
    """Single-slot env for ``gymnasium.make`` (``render_mode``: None or ``"ansi"``)."""
    if "replicas" in kwargs:  # also what a sync/async make_vec passes to each copy
        raise ConfigError("environment kwargs: replicas= is a key of make_vec's default mode "
                          "(vectorization_mode='vector_entry_point': one env over K replicas); "
                          "gymnasium.make and a sync/async make_vec build single envs")
    if "num_envs" in kwargs:
        raise ConfigError("environment kwargs: num_envs is a keyword of gymnasium.make_vec (B "
                          "slots that share one action network); gymnasium.make builds one slot "
                          "(its A trains on batch_size steps gathered)")
    config, split = _config({"task": task}, kwargs)
    return MannRLEnv(_task(config), config, split=split, render_mode=render_mode)


def make_vector_env(task: str = "logic", num_envs: int = 16, replicas: int | None = None,
                    render_mode: str | None = None,
                    **kwargs: Any) -> MannRLVectorEnv | ReplicatedVectorEnv:
    """Batched env for ``gymnasium.make_vec``; with ``replicas=K``, K replicas of B =
    ``num_envs`` slots each, replica k drawn from seed ``seed + k`` (its data, order and A)."""
    check_num_envs(num_envs)
    if "max_episode_steps" in kwargs:
        raise ConfigError("environment kwargs: max_episode_steps: this env's episode is one pass "
                          "over the data (env.steps_per_pass steps), truncated at its end; "
                          "Gymnasium's TimeLimit applies to gymnasium.make and to make_vec(..., "
                          "vectorization_mode='sync' or 'async'), whose copies are single envs")
    config, split = _config({"task": task}, kwargs)
    if replicas is None:
        env = MannRLVectorEnv(_task(config), config, num_envs=num_envs, split=split,
                              render_mode=render_mode)
        _warn_idle_slots(num_envs, len(env.data), split)
        return env
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"environment kwargs: replicas must be a whole number >= 1, "
                          f"got {replicas!r}")
    from mannrl_gym.replicas.spec import MAX_REPLICAS  # (the replicas package imports envs)

    if replicas > MAX_REPLICAS:
        raise ConfigError(f"environment kwargs: replicas={replicas}, but at most "
                          f"{MAX_REPLICAS} replicas step in one process on the CPU")
    check_replica_seed(config.seed, replicas, "environment kwargs")
    if render_mode is not None:
        raise ConfigError("environment kwargs: render_mode applies to one replica's env "
                          "(make_vec without replicas)")
    if split != "train":
        raise ConfigError("environment kwargs: replicas are learning envs of the train split; "
                          "evaluate replica k with env.replicas[k].evaluation_env()")
    configs = [replace(config, seed=config.seed + k) for k in range(replicas)]
    envs = [MannRLVectorEnv(_task(c) if k == 0 else build_task(c), c, num_envs=num_envs)
            for k, c in enumerate(configs)]  # (the same words in every replica: warned once)
    _warn_idle_slots(num_envs, min(len(env.data) for env in envs), split)
    return ReplicatedVectorEnv(envs)


def _warn_idle_slots(num_envs: int, sequences: int, split: str) -> None:
    """Warn (at the user's line) where more slots than sequences means slots that never read:
    ``mannrl train`` refuses such a batch_size; an env user may want them, so it only warns."""
    if num_envs > sequences:
        warn_at_user_line(f"num_envs={num_envs}, but the {split} split holds {sequences} "
                          f"sequences: {num_envs - sequences} slots idle at every step of a pass "
                          f"(info['valid'] False, reward 0); num_envs <= {sequences} keeps every "
                          f"slot reading")


__all__ = ["ActionError", "MannRLEnv", "MannRLVectorEnv", "ObservationLayout",
           "ReplicatedVectorEnv", "make_env", "make_vector_env"]
