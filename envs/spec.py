"""The ``spec`` Gymnasium sets on an env after ``make``: checked against the id, completed."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import EnvSpec

from mannrl_gym.config import PATH_KEYS, Config, ConfigError, absolute_path
from mannrl_gym.presets import ENV_PRESETS, env_preset, ids_of_task


def settle_spec(spec: EnvSpec | None, config: Config) -> EnvSpec | None:
    """``spec`` as the env keeps it. ConfigError where a ``task=`` keyword made another task
    than the id registers (``make("MannRL-Logic-v0", task="pos")`` would build POS with
    Logic's settings); where the env chose the shipped sample (no data path given), the spec's
    kwargs say ``data="sample"``, so ``spec.make()`` (Gymnasium's ``check_env`` does it) builds
    the same env again without the sample's warning; path keys are made absolute
    (where they name a file), so the spec makes the same env from any directory."""
    if spec is None or spec.id not in ENV_PRESETS:
        return spec
    registered = env_preset(spec.id)["task"]
    if config.task != registered:
        ids = ids_of_task(config.task)
        instead = f"; for task {config.task!r} make {ids[0]}" if ids else ""
        raise ConfigError(f"environment kwargs: {spec.id} is task {registered!r}, got "
                          f"task={config.task!r}{instead}")
    if config.data == "sample" and "data" not in spec.kwargs:
        spec.kwargs["data"] = "sample"
    for key in PATH_KEYS:  # absolute, so that spec.make() works from any directory
        if spec.kwargs.get(key):
            spec.kwargs[key] = absolute_path(spec.kwargs[key], only_existing=True)
    return spec


class SpecSettled:
    """Mixin of the envs ``make`` / ``make_vec`` return (before Gymnasium's base class): the
    ``spec`` attribute goes through ``settle_spec``. Needs ``self.config``."""

    config: Config
    _spec: EnvSpec | None = None

    @property
    def spec(self) -> EnvSpec | None:
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self._spec = settle_spec(value, self.config)
