"""mannrl-gym: Gymnasium environments and agents for MANN-RL (Barrett, "Learning to Remember").

Importing this package registers the environment ids with Gymnasium.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

_ENVS = {
    "MannRL-Logic-v0": {"task": "logic"},
    "MannRL-Symbolic-v0": {"task": "jsonl"},
    "MannRL-POS-v0": {"task": "pos"},
}

for _env_id, _kwargs in _ENVS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="mannrl_gym.envs:make_env",
                 vector_entry_point="mannrl_gym.envs:make_vector_env", kwargs=_kwargs)
