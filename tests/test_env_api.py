"""What a Gymnasium user meets first: make_vec's modes, reset order, kwargs, info, threads."""

import os
import re
import signal
import subprocess
import sys
import time

import gymnasium
import numpy as np
import pytest

import mannrl_gym  # noqa: F401  (registers the ids)
from mannrl_gym.config import ConfigError

from conftest import ROOT

README = (ROOT / "docs/environments.md").read_text()  # the envs page the README links

ASYNC = r"""
import os, sys, torch, gymnasium, mannrl_gym
torch.set_num_threads(2)
torch.ones(4_000_000).add_(1)  # the parent's torch thread pool is up before the workers fork
env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=2, vectorization_mode="async",
                         num_sequences=100)
print("workers", *[p.pid for p in env.processes], flush=True)
observation, _ = env.reset(seed=0)
observation, reward, *_ = env.step(env.action_space.sample())
print("shapes", observation.shape, reward.shape, flush=True)
env.close()
print("closed", flush=True)
"""


def alive(pid: int) -> bool:
    try:
        state = (open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_async_make_vec_works_with_the_default_context_and_leaves_no_process():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    script = subprocess.Popen([sys.executable, "-c", ASYNC], env=env, cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        out, err = script.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(script.pid, signal.SIGKILL)  # the script and its workers: no orphans
        script.communicate()
        pytest.fail("make_vec(vectorization_mode='async') hung")
    assert script.returncode == 0, err
    assert "shapes (2, 70) (2,)" in out and "closed" in out
    workers = [int(pid) for pid in re.search(r"workers (.*)", out).group(1).split()]
    deadline = time.time() + 10
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def test_vector_env_step_before_reset_raises():
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=100)
    with pytest.raises(gymnasium.error.ResetNeeded, match="reset"):
        env.step(np.full((4, 48), 0.5, np.float32))


@pytest.mark.parametrize("num_envs", [-1, 0, 2.5])
def test_bad_num_envs_is_named(num_envs):
    with pytest.raises(ConfigError, match=f"num_envs must be a whole number >= 1, got {num_envs}"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=num_envs, num_sequences=100)


def readme_info_keys() -> list[str]:
    row = next(line for line in README.splitlines() if line.startswith("| info |"))
    return re.findall(r"`(\w+)`", row)


def test_both_envs_give_the_info_keys_the_readme_lists():
    keys = readme_info_keys()
    assert {"loss", "valid", "kind", "sequence", "position"} <= set(keys)
    single = gymnasium.make("MannRL-Logic-v0", num_sequences=100)
    _, info = single.reset(seed=0)
    _, _, _, _, step_info = single.step(single.action_space.sample())
    assert set(keys) <= set(info) and set(keys) <= set(step_info)
    assert info["sequence_start"] and not step_info["sequence_start"] and info["valid"]
    vector = gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=100)
    _, info = vector.reset(seed=0)
    assert set(keys) - {"position"} <= set(info)


def test_the_layout_is_where_the_readme_says():
    assert "`venv.layout`" in README and "`env.unwrapped.layout`" in README
    venv = gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=100)
    env = gymnasium.make("MannRL-Logic-v0", num_sequences=100)
    assert venv.layout == env.unwrapped.layout
    observation, _ = env.reset(seed=0)
    assert observation[env.unwrapped.layout.output].sum() == pytest.approx(1.0, abs=1e-5)


THREADS = r"""
import torch, gymnasium, mannrl_gym
from threadpoolctl import threadpool_info
torch.set_num_threads(3)
gymnasium.make("MannRL-Logic-v0", num_sequences=100)
print("untouched", torch.get_num_threads())
gymnasium.make("MannRL-Logic-v0", num_sequences=100, num_threads=1)
print("configured", torch.get_num_threads(), max(p["num_threads"] for p in threadpool_info()))
"""


def test_an_env_given_num_threads_applies_it_and_leaves_threads_alone_otherwise():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", THREADS], env=env, cwd=ROOT, text=True,
                         capture_output=True, timeout=120, check=True).stdout
    assert "untouched 3" in out and "configured 1 1" in out


def test_idle_slots_are_never_counted_correct():
    # idle slots predict 0 and have target 0: an accuracy over all slots counted them right
    for env in (gymnasium.make_vec("MannRL-Logic-v0", num_envs=16, num_sequences=100),
                gymnasium.make_vec("MannRL-Logic-v0", num_envs=8, replicas=2, num_sequences=100)):
        env.reset(seed=0)
        _, _, _, _, info = env.step(np.full((16, 48), 0.5, np.float32))
        assert not info["valid"].all()  # the first steps have idle slots (staggered starts)
        assert not info["correct"][~info["valid"]].any()
        assert (info["correct"] == (info["prediction"] == info["target"]) & info["valid"]).all()


def test_gymnasium_keywords_of_the_other_maker_are_named():
    with pytest.raises(ConfigError, match="num_envs is a keyword of gymnasium.make_vec"):
        gymnasium.make("MannRL-Logic-v0", num_envs=4)
    with pytest.raises(ConfigError, match="max_episode_steps: this env's episode is one pass"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, max_episode_steps=5)
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=2, vectorization_mode="sync",
                             max_episode_steps=5, num_sequences=100)  # single copies: TimeLimit
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3].all() for _ in range(5)]
    assert truncated == [False, False, False, False, True]


def test_a_spec_made_from_a_relative_path_makes_the_env_from_anywhere(tmp_path, monkeypatch):
    data = (ROOT / "mannrl_gym" / "sample_data" / "symbolic.jsonl").read_text()
    (tmp_path / "mine.jsonl").write_text(data)
    monkeypatch.chdir(tmp_path)
    env = gymnasium.make("MannRL-Symbolic-v0", data_path="mine.jsonl")
    assert env.spec.kwargs["data_path"] == str(tmp_path / "mine.jsonl")
    monkeypatch.chdir(ROOT)
    again = gymnasium.make(env.spec)
    assert again.unwrapped.data.inputs.shape == env.unwrapped.data.inputs.shape
