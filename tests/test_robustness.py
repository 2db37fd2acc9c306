"""Trustworthy runs: numerical health, reproducibility per agent, damaged files, fuzzing."""

import json

import gymnasium
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mannrl_gym  # noqa: F401
from mannrl_gym import cli
from mannrl_gym.agents import make_agent
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.numerics import NumericalError
from mannrl_gym.tasks import build_task
from mannrl_gym.trainer import train

from conftest import small_config


def test_nan_in_the_action_network_stops_at_once_naming_the_tensor():
    config = small_config(stagger=False)  # every slot live at the first step: A trains on it
    env = MannRLVectorEnv(build_task(config), config, 16)
    env.reset(seed=0)
    with torch.no_grad():
        env.learner.net.body[3].weight[0, 0] = float("nan")
    with pytest.raises(NumericalError, match=r"action network.*training step \d+.*body\.3\.weight"):
        env.step(np.full((16, 48), 0.5, np.float32))


def test_nan_in_the_memory_net_stops_its_update_naming_the_tensor():
    config = small_config(settle=0, history=4, memory_samples=2)
    env = MannRLVectorEnv(build_task(config), config, 16)
    agent = make_agent(config, env.layout, 16)
    observation, _ = env.reset(seed=0)
    with torch.no_grad():
        agent.net.body[0].bias[3] = float("inf")
    with pytest.raises(NumericalError, match=r"memory-net.*update 1.*body\.0\.bias"):
        for _ in range(4):
            observation, reward, _, _, info = env.step(np.full((16, 48), 0.5, np.float32))
            agent.observe(observation, reward, info)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="r", epochs=1))
    good = (run_dir / "checkpoint.pt").read_bytes()
    rows = (run_dir / "metrics.jsonl").read_text()
    assert cli.main(["train", "--resume", str(run_dir), "epochs=3", "lr=1e30"]) == 3
    assert "NaN or infinite" in capsys.readouterr().err
    assert (run_dir / "checkpoint.pt").read_bytes() == good
    assert (run_dir / "metrics.jsonl").read_text() == rows


@pytest.mark.parametrize("agent, task", [("mannrl", "logic"), ("no_memory", "logic"),
                                         ("frozen_memory", "logic"), ("mannrl", "jsonl")])
def test_same_config_and_seed_give_identical_metrics(tmp_path, agent, task):
    data = tmp_path / "task.jsonl"
    data.write_text("".join(json.dumps({"input": list(w) + ["?"], "target": ["."] + list(w)})
                            + "\n" for w in ("abc", "bca", "cab", "acb", "bac") * 8))
    rows = []
    for name in ("a", "b"):
        files = {"data_path": str(data)} if task == "jsonl" else {}
        run = train(small_config(out_dir=str(tmp_path), run_name=name, agent=agent, epochs=1,
                                 task=task, holdout="random", **files))
        row = json.loads((run / "metrics.jsonl").read_text())
        rows.append({k: v for k, v in row.items()
                     if k not in ("minutes", "epoch_seconds", "train_steps_per_s")})
    assert rows[0] == rows[1]


def test_a_tampered_checkpoint_is_refused_and_nothing_is_overwritten(tmp_path, capsys):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="r", epochs=1))
    data = bytearray((run_dir / "checkpoint.pt").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64
    (run_dir / "checkpoint.pt").write_bytes(bytes(data))
    rows = (run_dir / "metrics.jsonl").read_text()
    assert cli.main(["train", "--resume", str(run_dir), "epochs=2"]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert (run_dir / "checkpoint.pt").read_bytes() == bytes(data)
    assert (run_dir / "metrics.jsonl").read_text() == rows


def test_missing_data_file_is_named(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(f"task: jsonl\ndata_path: {tmp_path}/absent.jsonl\nwandb_mode: disabled\n"
                      f"out_dir: {tmp_path}\n")
    assert cli.main(["train", str(config)]) == 2
    assert "absent.jsonl: data file not found" in capsys.readouterr().err


ACTIONS = arrays(np.float32, (48,), elements=st.floats(0.0, 1.0, width=32))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**31 - 1), actions=st.lists(ACTIONS, min_size=1, max_size=6))
def test_fuzz_single_env_with_arbitrary_in_space_actions(seed, actions):
    env = gymnasium.make("MannRL-Logic-v0", num_sequences=60).unwrapped
    observation, _ = env.reset(seed=seed)
    for step in range(300):
        observation, reward, terminated, _, _ = env.step(actions[step % len(actions)])
        assert env.observation_space.contains(observation)
        assert -10.0 <= reward <= 0.0 and np.isfinite(reward)
        if terminated:
            observation, _ = env.reset()


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), extreme=st.sampled_from([0.0, 1.0, None]))
def test_fuzz_vector_env_for_thousands_of_steps(seed, extreme):
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=8, num_sequences=80, carry_memory=False)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(400):
        if extreme is None:
            action = rng.random((8, 48), dtype=np.float32)
        else:
            action = np.full((8, 48), extreme, np.float32)
        observation, reward, *_ = env.step(action)
        assert env.observation_space.contains(observation)
        assert np.isfinite(reward).all() and (reward <= 0).all() and (reward >= -10).all()
