"""Stable-Baselines3 agents as the memory-net, for real."""

import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

import mannrl_gym  # noqa: F401
from mannrl_gym.agents.sb3 import SB3MemoryAgent, SB3VecEnv
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.evaluation import evaluate_splits
from mannrl_gym.tasks import build_task

from conftest import small_config


def test_sac_on_the_batched_env_with_callbacks(tmp_path):
    config = small_config(num_sequences=60)
    task = build_task(config)
    env = MannRLVectorEnv(task, config, num_envs=4)
    venv = SB3VecEnv(env)
    assert isinstance(venv, VecEnv)
    before = env.learner.flat.clone()
    eval_env = make_vec_env("MannRL-Logic-v0", n_envs=1, env_kwargs={"num_sequences": 60})
    model = SAC("MlpPolicy", venv, learning_starts=50, batch_size=32, seed=0, verbose=0)
    model.learn(total_timesteps=4 * 150, callback=[
        CheckpointCallback(save_freq=100, save_path=str(tmp_path), name_prefix="sac"),
        EvalCallback(eval_env, eval_freq=100, n_eval_episodes=2, verbose=0)])
    assert list(tmp_path.glob("sac_*_steps.zip"))
    assert not (env.learner.flat == before).all()  # the shared action network trained
    evaluators = {s: MannRLVectorEnv(task, config, 16, split=s, learner=env.learner, learn=False,
                                     shuffle=False) for s in ("train", "validation")}
    metrics = evaluate_splits(evaluators, SB3MemoryAgent(model))
    assert 0.0 <= metrics["train/f1"] <= 1.0 and "validation/answer_acc" in metrics


def test_pass_end_is_a_truncated_episode_with_terminal_observation():
    config = small_config(num_sequences=20)
    venv = SB3VecEnv(MannRLVectorEnv(build_task(config), config, num_envs=4))
    venv.seed(0)
    venv.reset()
    steps = venv.env.steps_per_pass
    action = np.full((4, 48), 0.5, np.float32)
    for _ in range(steps - 2):
        _, _, dones, infos = venv.step(action)
        assert not dones.any()
    observation, _, dones, infos = venv.step(action)
    assert dones.all() and all(i["TimeLimit.truncated"] for i in infos)
    assert infos[0]["terminal_observation"].shape == (48 + 22,)
    assert venv.env.observation_space.contains(observation)  # the next pass has begun


def test_each_slots_info_reaches_sb3_and_other_envs_are_refused():
    venv = SB3VecEnv(gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=40))
    venv.seed(0)
    venv.reset()
    _, _, _, infos = venv.step(np.full((4, 48), 0.5, np.float32))
    env_info = venv.env.unwrapped._shown  # the env's own (B,) arrays of this step
    assert [i["loss"] for i in infos] == pytest.approx(env_info["loss"].tolist())
    assert [i["correct"] for i in infos] == env_info["correct"].tolist()
    assert all(isinstance(i["valid"], bool) for i in infos)
    for env in (gymnasium.make("MannRL-Logic-v0", num_sequences=40),
                gymnasium.make_vec("MannRL-Logic-v0", num_envs=2, num_sequences=40,
                                   vectorization_mode="sync")):
        with pytest.raises(TypeError, match="takes a MANN-RL vector env"):
            SB3VecEnv(env)


def test_single_env_works_with_sb3_make_vec_env():
    venv = make_vec_env("MannRL-Logic-v0", n_envs=2, env_kwargs={"num_sequences": 60})
    model = SAC("MlpPolicy", venv, learning_starts=20, batch_size=16, seed=0, verbose=0)
    model.learn(total_timesteps=100)
    assert isinstance(gymnasium.make("MannRL-Logic-v0", num_sequences=60).action_space,
                      gymnasium.spaces.Box)


def test_the_sac_example_names_its_task_and_refuses_bad_input_in_one_line():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mannrl_gym.agents.sac_memory", *args],
                              capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})

    said = run("--steps", "3", "task=pos", "data=sample")
    assert said.returncode == 0, said.stderr
    assert said.stdout.startswith("pos, 3 env steps of 16 slots")
    sac = next(line for line in said.stdout.splitlines() if line.startswith("SAC"))
    assert sac.split()[-3] == "-" and "nan" not in said.stdout  # POS has no long-range steps
    for args, message in ((("--steps", "0"), "--steps must be >= 1, got 0"),
                          (("foo=1",), "command line: unknown key 'foo'")):
        said = run(*args)
        assert said.returncode == 2 and message in said.stderr
        assert "Traceback" not in said.stderr
