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
# Table 3 (section 4.3); hidden_size is not given by the paper.
_SENTENCE = {"memory_size": 1024, "history": 10, "settle": 6, "epochs": 2048,
             "memory_train_iterations": 1, "memory_lr": 1e-7, "hidden_layers": 2,
             "embed_size": 96, "hidden_size": 256}
_ENVS["MannRL-Sentence-v0"] = {"task": "sentence", **_SENTENCE}
_ENVS["MannRL-Translate-v0"] = {"task": "translate", **_SENTENCE}

for _env_id, _kwargs in _ENVS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point="mannrl_gym.envs:make_env",
                 vector_entry_point="mannrl_gym.envs:make_vector_env", kwargs=_kwargs)
