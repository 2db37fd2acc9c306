"""Environment presets from the one source of the paper's tables: the packaged configs.

Each env id registers the settings of its YAML file in ``mannrl_gym.configs`` (``configs/``
in the repository), less the keys that name this project's files or shape a training run
rather than the environment: the data and vector paths (a user passes their own) and the
sentence curriculum (a property of a long training run; the trainer applies it, an env built
with ``make_vec`` gets it when passed). So ``gymnasium.make("MannRL-POS-v0")`` is Table 2.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

# env id -> (config file, overrides)
ENV_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "MannRL-Logic-v0": ("logic.yaml", {}),
    "MannRL-Symbolic-v0": ("logic.yaml", {"task": "jsonl"}),  # Table 1 on the user's own task
    "MannRL-POS-v0": ("pos.yaml", {}),
    "MannRL-Sentence-v0": ("sentence.yaml", {}),
    "MannRL-Translate-v0": ("translate.yaml", {}),
}
NOT_REGISTERED = ("data_path", "val_path", "target_path", "vectors_path", "cache_dir",
                  "curriculum_every", "curriculum_chunk", "out_dir", "run_name", "wandb_mode",
                  "wandb_project")


def ids_of_task(task: str) -> list[str]:
    """The env ids that register ``task`` (``"logic"`` -> ``["MannRL-Logic-v0"]``)."""
    return [env_id for env_id in ENV_PRESETS if env_preset(env_id)["task"] == task]


def read_config_file(name: str) -> dict[str, Any]:
    """The mapping in the packaged config file ``name`` (e.g. ``"pos.yaml"``)."""
    return yaml.safe_load(resources.files("mannrl_gym.configs").joinpath(name).read_text())


def env_preset(env_id: str) -> dict[str, Any]:
    """The config keys ``env_id`` registers (a subset of its YAML file's)."""
    name, overrides = ENV_PRESETS[env_id]
    settings = {k: v for k, v in read_config_file(name).items() if k not in NOT_REGISTERED}
    return {**settings, **overrides}
