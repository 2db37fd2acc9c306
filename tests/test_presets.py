"""The env ids register the paper's tables from the same files `mannrl train` reads."""

from __future__ import annotations

import yaml
from gymnasium.envs.registration import registry

import mannrl_gym  # noqa: F401  (registers the ids)
from conftest import ROOT
from mannrl_gym.config import PATH_KEYS, TASK_KEYS, from_mapping
from mannrl_gym.presets import ENV_PRESETS, NOT_REGISTERED, env_preset


def test_every_env_id_registers_its_config_file():
    for env_id, (name, overrides) in ENV_PRESETS.items():
        in_file = yaml.safe_load((ROOT / "configs" / name).read_text())
        registered = registry[env_id].kwargs
        assert registered == env_preset(env_id)
        for key, value in in_file.items():
            if key not in NOT_REGISTERED and key not in overrides:
                assert registered[key] == value, (env_id, key)
        assert not set(registered) & set(NOT_REGISTERED)
        files = {key: "x" for key in PATH_KEYS[:3]  # data_path, val_path, target_path
                 if registered["task"] in TASK_KEYS[key]}
        from_mapping({**registered, **files}, source=env_id)  # valid once the user names files


def test_pos_id_is_table_2_and_sentence_id_table_3():
    pos, sentence = registry["MannRL-POS-v0"].kwargs, registry["MannRL-Sentence-v0"].kwargs
    assert (pos["memory_size"], pos["history"], pos["settle"]) == (175, 16, 8)  # Table 2
    assert (sentence["memory_size"], sentence["history"], sentence["settle"]) == (1024, 10, 6)
    assert registry["MannRL-Symbolic-v0"].kwargs["task"] == "jsonl"
