"""The memory-net keys an agent declares it never reads (``AgentEntry.memory_keys``) leave
its runs identical: every metric of two epochs, f's own ``memory_loss`` included."""

from __future__ import annotations

import json

import pytest

from mannrl_gym import agent_registry, trainer

from conftest import small_config

# a valid value other than Table 1's for every memory-net key an agent may skip
CHANGED = {"history": 16, "settle": 4, "memory_train_iterations": 1, "memory_optimizer": "adam",
           "memory_lr": 1e-3, "memory_clipping": 1.0, "memory_samples": 4,
           "memory_lr_decay_every": 1, "memory_lr_decay": 0.1, "memory_clamp": 0.05,
           "gamma": 0.5, "memory_sees_output": False, "detach_target": True,
           "carry_memory": False}


def run_rows(tmp_path, name: str, **keys) -> list[dict]:
    config = small_config(out_dir=str(tmp_path), run_name=name, **keys)
    rows = (trainer.train(config) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items()
             if k not in ("epoch_seconds", "minutes", "train_steps_per_s")} for line in rows]


@pytest.mark.parametrize("agent", ["no_memory", "frozen_memory", "frozen_weights", "es", "pg",
                                   "repaired", "reward_grad"])
def test_the_memory_net_keys_an_agent_skips_change_none_of_its_runs(tmp_path, agent):
    skipped = agent_registry.unread_keys(agent) & set(agent_registry.MEMORY_NET_KEYS)
    assert skipped and skipped <= set(CHANGED)
    reference = run_rows(tmp_path, "reference", agent=agent)
    changed = run_rows(tmp_path, "changed", agent=agent, **{k: CHANGED[k] for k in skipped})
    assert changed == reference
    read = sorted(set(agent_registry.MEMORY_NET_KEYS) - skipped - {"memory_size"})
    if read:  # and one it reads does change them: the comparison can tell
        assert run_rows(tmp_path, "read", agent=agent, **{read[0]: CHANGED[read[0]]}) != reference
