"""mannrl-gym: Gymnasium environments and agents for MANN-RL (Barrett, "Learning to Remember").

Importing this package registers the environment ids with Gymnasium.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

from mannrl_gym.presets import ENV_PRESETS, env_preset

for _env_id in ENV_PRESETS:  # each id registers its table's config file (mannrl_gym.presets)
    if _env_id not in registry:
        register(id=_env_id, entry_point="mannrl_gym.envs:make_env",
                 vector_entry_point="mannrl_gym.envs:make_vector_env", kwargs=env_preset(_env_id))
