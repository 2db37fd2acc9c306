import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mannrl_gym  # noqa: F401  (registers the ids)
from mannrl_gym.envs import ActionError, MannRLVectorEnv
from mannrl_gym.tasks import build_task

from conftest import small_config


def test_single_env_passes_gymnasium_and_sb3_checkers():
    env = gymnasium.make("MannRL-Logic-v0", num_sequences=200)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


def test_single_env_episode_is_one_sequence():
    env = gymnasium.make("MannRL-Logic-v0", num_sequences=200).unwrapped
    observation, info = env.reset(seed=1)
    assert observation.shape == env.observation_space.shape and observation.dtype == np.float32
    length = int(env.data.lengths[info["sequence"]])
    steps, terminated = 0, False
    while not terminated:
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert -10.0 <= reward <= 0.0 and not truncated
        steps += 1
    assert steps == length - 1 and info["answer_step"] and info["position"] == length - 1
    with pytest.raises(gymnasium.error.ResetNeeded, match="the episode has ended"):
        env.step(env.action_space.sample())
    fresh = gymnasium.make("MannRL-Logic-v0", num_sequences=200).unwrapped
    with pytest.raises(gymnasium.error.ResetNeeded, match="before the first step"):
        fresh.step(fresh.action_space.sample())


def test_make_vec_gives_the_batched_env_with_one_shared_network():
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=16, num_sequences=300)
    assert isinstance(env, MannRLVectorEnv) and env.num_envs == 16
    observation, info = env.reset(seed=0)
    assert observation.shape == (16, 48 + 11 + 11)
    assert env.observation_space.contains(observation)
    before = env.learner.flat.clone()
    for _ in range(12):  # past the staggered starts (a step with < 2 live slots trains nothing)
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert reward.shape == (16,) and reward.dtype == np.float32
    assert not (env.learner.flat == before).all()  # one shared A took supervised steps
    for key in ("loss", "correct", "valid", "sequence_start", "answer_step", "long_range"):
        assert info[key].shape == (16,)
    layout = env.layout
    assert np.allclose(observation[:, layout.output].sum(1), 1.0, atol=1e-5)


def rollout(env, seed, steps, actions):
    observation, _ = env.reset(seed=seed)
    trace = [observation]
    for i in range(steps):
        observation, reward, *_ = env.step(actions[i])
        trace += [observation, reward]
    return trace


def test_reset_with_seed_reproduces_the_episode_and_the_network():
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=8, num_sequences=300)
    actions = np.random.default_rng(0).random((50, 8, 48), dtype=np.float32)
    first = rollout(env, 5, 50, actions)
    second = rollout(env, 5, 50, actions)  # A has trained in between: the seed resets it
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    third = rollout(env, 6, 50, actions)
    assert not all(np.array_equal(a, b) for a, b in zip(first, third))


@pytest.mark.parametrize("make", [
    lambda: gymnasium.make("MannRL-Logic-v0", num_sequences=300),
    lambda: gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=300)])
def test_a_seed_out_of_range_is_one_clear_error_and_leaves_the_env_usable(make):
    env = make()
    env.reset(seed=0)  # (Gymnasium's env checker breaks if the very first reset raises)
    for seed in (2**70, -1, 2**32, True):  # (a bool is not a seed: torch's error before)
        with pytest.raises(ValueError, match=r"the seed must be an integer in \[0, 4294967295\]"):
            env.reset(seed=seed)
    env.reset(seed=2**32 - 1)  # the largest the config takes too
    env.step(env.action_space.sample())


EVERY_KIND_OF_ENV = [  # single, vector, replicated
    lambda: gymnasium.make("MannRL-Logic-v0", num_sequences=300),
    lambda: gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=300),
    lambda: gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=2, num_sequences=300)]


@pytest.mark.parametrize("make", EVERY_KIND_OF_ENV)
def test_reset_options_the_env_does_not_read_are_one_clear_error(make):
    env = make()
    env.reset(seed=0)
    for options, message in (({"epcoh": 3}, r"unknown key\(s\) 'epcoh'; this env reads 'epoch'"),
                              ({"epoch": -1}, "whole number >= 0"),
                              ({"epoch": 2.5}, "whole number >= 0"),
                              ({"epoch": True}, "whole number >= 0"),
                              ([("epoch", 3)], "must be a dict")):
        with pytest.raises(ValueError, match=message):
            env.reset(options=options)
    env.reset(options={"epoch": np.int64(2)})  # what a loop over np.arange passes
    env.reset(options={})  # Stable-Baselines3's VecEnv passes an empty dict
    env.step(env.action_space.sample())


def test_more_slots_than_sequences_warns_once_at_the_users_line():
    with pytest.warns(UserWarning, match=r"num_envs=500, but the train split holds \d+ sequences"
                      ) as caught:
        env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=500, num_sequences=200)
    assert [w.filename for w in caught if "num_envs=500" in str(w.message)] == [__file__]
    observation, info = env.reset(seed=0)
    assert not info["valid"].all()  # the idle slots it warned of
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as many slots as sequences: no warning
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=16, num_sequences=200)


def test_one_slot_vector_env_trains_its_action_network():
    """Gymnasium's make_vec defaults to num_envs=1: one row a step, which batch norm cannot
    train on; A then gathers batch_size steps into one step, as the single env does."""
    env = gymnasium.make_vec("MannRL-Logic-v0", num_sequences=300)
    assert env.num_envs == 1
    env.reset(seed=0)
    before = env.learner.flat.clone()
    for _ in range(100):
        env.step(np.full((1, 48), 0.5, np.float32))
    assert env.learner.steps >= 100 // 16 - 1 and not (env.learner.flat == before).all()


@pytest.mark.parametrize("action, message", [
    (np.zeros((16, 47), np.float32), "shape"),
    (np.full((16, 48), np.nan, np.float32), "NaN"),
    (np.full((16, 48), np.inf, np.float32), "infinite"),
    (np.full((16, 48), 1.5, np.float32), r"\[0, 1\]"),
    (np.zeros((16, 48), np.int64), "dtype"),
])
def test_bad_actions_raise_clear_errors(action, message):
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=16, num_sequences=300)
    env.reset(seed=0)
    before = env.learner.flat.clone()
    with pytest.raises(ActionError, match=message):
        env.step(action)
    assert (env.learner.flat == before).all()  # nothing learned from a rejected action


def test_memory_is_zeroed_at_sequence_start_without_carry():
    config = small_config(carry_memory=False)
    env = MannRLVectorEnv(build_task(config), config, num_envs=8)
    env.reset(seed=0)
    ones = np.ones((8, 48), np.float32)
    for _ in range(60):
        observation, _, _, _, info = env.step(ones)
        memory = observation[:, env.layout.memory]
        starts = info["sequence_start"]
        assert (memory[starts] == 0).all() and (memory[~starts & info["valid"]] == 1).all()


def test_pass_truncates_then_autoresets():
    config = small_config(num_sequences=40)
    env = MannRLVectorEnv(build_task(config), config, num_envs=4)
    env.reset(seed=0)
    steps = env.steps_per_pass
    action = np.full((4, 48), 0.5, np.float32)
    for i in range(steps - 1):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated.any()
        assert truncated.all() == (i == steps - 2)
    _, reward, _, truncated, info = env.step(action)  # NEXT_STEP autoreset
    assert (reward == 0).all() and not truncated.any()
    assert (info["sequence_start"] | ~info["valid"]).all()  # live slots start (others staggered)


def test_evaluation_env_shares_the_network_and_never_trains_it():
    config = small_config()
    task = build_task(config)
    train_env = MannRLVectorEnv(task, config, num_envs=16)
    eval_env = train_env.evaluation_env(num_envs=32)
    assert (eval_env.split, eval_env.learn, eval_env.shuffle) == ("validation", False, False)
    assert eval_env.learner is train_env.learner and eval_env.num_envs == 32
    train_env.reset(seed=0)
    before = train_env.learner.flat.clone()
    eval_env.reset(seed=123)  # a shared network is never reinitialised by a seed
    eval_env.step(np.zeros((32, 48), np.float32))
    assert (train_env.learner.flat == before).all()


def test_a_held_out_env_made_by_make_vec_warns_that_its_network_learns():
    with pytest.warns(UserWarning, match=r"evaluation_env\(\)") as caught:
        env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, split="validation",
                                 num_sequences=300)
    assert caught[0].filename == __file__  # the user's line, not the library's
    assert env.learn and env.owns_learner


def test_a_split_that_is_not_one_is_refused_before_any_warning():
    import warnings

    from mannrl_gym.config import ConfigError

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would raise first
        with pytest.raises(ConfigError, match="split must be 'train' or 'validation', got 'test'"):
            gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, split="test", num_sequences=300)


def test_an_env_ignores_wandb_mode_in_the_environment(monkeypatch):
    """The trainer reads WANDB_MODE; an env logs nothing, so no value of it stops make()
    (wandb's own "shared" is not one the trainer takes)."""
    monkeypatch.setenv("WANDB_MODE", "shared")
    env = gymnasium.make("MannRL-Logic-v0", num_sequences=300)
    assert env.unwrapped.config.wandb_mode == "disabled"
    vector = gymnasium.make_vec("MannRL-Logic-v0", num_envs=2, num_sequences=300)
    assert vector.config.wandb_mode == "disabled"


def test_the_sample_data_warning_names_the_users_line():
    with pytest.warns(UserWarning, match="no data_path given") as caught:
        gymnasium.make("MannRL-POS-v0")
    assert caught[0].filename == __file__ and "\x1b" not in str(caught[0].message)


def test_symbolic_env_from_a_jsonl_file(tmp_path):
    path = tmp_path / "copy.jsonl"
    path.write_text('{"input": ["a", "b", "="], "target": [".", "a", "b"]}\n' * 20)
    env = gymnasium.make("MannRL-Symbolic-v0", data_path=str(path), val_fraction=0.2,
                         holdout="random")
    observation, _ = env.reset(seed=0)
    assert observation.shape == (48 + 3 + 3,)


def test_bad_env_kwargs_fail_with_the_key():
    with pytest.raises(ValueError, match="memory_samples"):
        gymnasium.make("MannRL-Logic-v0", memory_samples=64)


def test_keys_of_the_agent_and_the_run_warn_that_the_env_does_not_read_them():
    with pytest.warns(UserWarning, match=r"the env does not read epochs, memory_lr, agent, "
                                         r"wandb_mode, es_sigma: .*ignored") as caught:
        env = gymnasium.make("MannRL-Logic-v0", num_sequences=300, epochs=3, memory_lr=0.5,
                             agent="es", wandb_mode="online", es_sigma=0.5, lr=3e-4)
    assert caught[0].filename == __file__
    config = env.unwrapped.config  # the registered values stay; the keys the env reads apply
    assert (config.epochs, config.memory_lr, config.agent, config.wandb_mode, config.lr) == (
        512, 1e-5, "mannrl", "disabled", 3e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the registered value itself, or a key the env reads
        gymnasium.make("MannRL-Logic-v0", num_sequences=300, epochs=512, memory_size=32)
    with pytest.raises(ValueError, match="key 'epochs' must be int"):  # checked all the same
        gymnasium.make("MannRL-Logic-v0", num_sequences=300, epochs="x")


def test_a_task_other_than_the_ids_is_refused_naming_the_id_to_make():
    with pytest.raises(ValueError, match="MannRL-Logic-v0 is task 'logic', got task='pos'; "
                                         "for task 'pos' make MannRL-POS-v0"):
        gymnasium.make("MannRL-Logic-v0", task="pos")
    with pytest.raises(ValueError, match="MannRL-Symbolic-v0 is task 'jsonl'"):
        gymnasium.make_vec("MannRL-Symbolic-v0", num_envs=2, task="logic")


def test_the_sample_choice_is_in_the_spec_so_check_env_warns_no_more():
    with pytest.warns(UserWarning, match="no data_path given"):
        env = gymnasium.make("MannRL-POS-v0")
    assert env.unwrapped.spec.kwargs["data"] == "sample"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its close check makes the env again from the spec
        check_env(env.unwrapped, skip_render_check=True)
        gymnasium.make(env.unwrapped.spec)



@pytest.mark.parametrize("make", EVERY_KIND_OF_ENV)
def test_a_closed_env_refuses_to_step_or_reset(make):
    env = make()
    env.reset(seed=0)
    action = env.action_space.sample()
    env.close()
    env.close()  # twice: nothing
    with pytest.raises(gymnasium.error.ClosedEnvironmentError, match=r"step\(\) after close"):
        env.step(action)
    with pytest.raises(gymnasium.error.ClosedEnvironmentError, match=r"reset\(\) after close"):
        env.reset(seed=0)
