"""The memory agents trained by the reward alone: evolution strategies (es), policy gradient (pg)
and the paper's agent repaired as an actor-critic (repaired)."""

import numpy as np
import pytest
import torch

from mannrl_gym import checkpoint
from mannrl_gym import agent_registry
from mannrl_gym.agents import EvolutionStrategiesAgent, PolicyGradientAgent, RepairedAgent
from mannrl_gym.config import ConfigError
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.trainer import train

from conftest import small_config
from test_trainer import comparable, metrics

LAYOUT = ObservationLayout(memory_size=6, input_dim=5, num_outputs=4)
SLOTS = 8


def states(generator: np.random.Generator, same: bool = False) -> np.ndarray:
    """A batch of plausible states: memory and output in [0, 1], one-hot input; with ``same``
    every slot reads the same input and output (differences come from the writes alone)."""
    rows = 1 if same else SLOTS
    state = generator.random((rows, LAYOUT.size)).astype(np.float32)
    state[:, LAYOUT.input] = np.eye(LAYOUT.input_dim, dtype=np.float32)[
        generator.integers(0, LAYOUT.input_dim, rows)]
    return np.repeat(state, SLOTS // rows, axis=0)


def paid(state: np.ndarray) -> np.ndarray:
    """(B,) +1 where the state's input is symbol 0, else -1: what the synthetic reward pays."""
    return np.where(state[:, LAYOUT.input][:, 0] == 1, 1.0, -1.0).astype(np.float32)


def drive(agent, steps: int, seed: int = 0) -> None:
    """Train ``agent`` with a synthetic reward that pays for memory unit 0 encoding the input:
    reward = write of unit 0, times +1 after input symbol 0 and -1 after any other. Every step
    starts a new one-step sequence, so each write is credited with its own reward."""
    generator = np.random.default_rng(seed)
    info = {"valid": np.ones(SLOTS, bool), "sequence_start": np.ones(SLOTS, bool)}
    observation = states(generator, same=True)
    for _ in range(steps):
        memory = agent.explore(observation)
        reward = paid(observation) * memory[:, 0]
        observation = states(generator, same=True)
        observation[:, LAYOUT.memory] = memory
        agent.observe(observation, reward, info)


def contrast(agent, unit: int) -> float:
    """In closed loop (``act``'s writes read back): mean write of ``unit`` after input 0 minus
    after the other inputs."""
    generator, after_zero, after_other = np.random.default_rng(99), [], []
    memory = np.zeros((SLOTS, LAYOUT.memory_size), np.float32)
    for _ in range(40):
        observation = states(generator)
        observation[:, LAYOUT.memory] = memory
        memory = agent.act(observation)
        zero = paid(observation) > 0
        after_zero += memory[zero, unit].tolist()
        after_other += memory[~zero, unit].tolist()
    return float(np.mean(after_zero) - np.mean(after_other))


@pytest.mark.parametrize("name, changes", [
    ("es", {"es_population": 8, "es_sigma": 0.05, "es_lr": 0.05}),
    ("pg", {"pg_sigma": 0.5, "pg_lr": 0.01}),
    ("repaired", {"repaired_sigma": 0.5, "repaired_actor_lr": 3e-3, "repaired_critic_lr": 0.01,
                  "repaired_gamma": 0.1, "memory_train_iterations": 4}),
])
def test_the_reward_alone_teaches_a_memory_unit_to_encode_what_it_pays_for(name, changes):
    config = small_config(agent=name, batch_size=SLOTS, agent_window=16, **changes)
    agent = agent_registry.entry(name).load()(LAYOUT, config, SLOTS, seed=0)
    before = {unit: contrast(agent, unit) for unit in (0, 1)}
    drive(agent, steps=16 * 40)
    after = {unit: contrast(agent, unit) for unit in (0, 1)}
    assert after[0] > before[0] + 0.2, (before, after)  # unit 0 now tells input 0 apart
    assert after[0] > abs(after[1]) + 0.2, (before, after)  # and not every unit does


def test_es_slots_of_an_antithetic_pair_act_with_opposite_perturbations():
    config = small_config(agent="es", batch_size=SLOTS, es_population=4, es_sigma=1e-3)
    agent = EvolutionStrategiesAgent(LAYOUT, config, SLOTS, seed=0)
    observation = np.repeat(states(np.random.default_rng(1))[:1], SLOTS, axis=0)
    logit = lambda m: np.log(m / (1 - m))
    mean = logit(agent.act(observation))
    deviation = logit(agent.explore(observation)) - mean  # (B, M)
    assert np.abs(deviation).max() > 1e-4  # members do differ from the mean
    # slot b is member b % 4: members 0/1 and 2/3 are twins (+eps, -eps), up to O(sigma^2)
    np.testing.assert_allclose(deviation[0], -deviation[1], atol=1e-5)
    np.testing.assert_allclose(deviation[2], -deviation[3], atol=1e-5)
    np.testing.assert_allclose(deviation[0], deviation[4], atol=1e-6)  # same member, same weights
    assert np.abs(deviation[0] - deviation[2]).max() > 1e-4  # different pairs, different eps


def test_pg_returns_stop_at_the_end_of_each_sequence():
    config = small_config(agent="pg", batch_size=2, agent_window=4, gamma=0.5)
    agent = PolicyGradientAgent(ObservationLayout(6, 5, 4), config, 2, seed=0)
    state, noise = np.zeros((2, 15), np.float32), np.zeros((2, 6), np.float32)
    rewards = [[1, 1], [2, 2], [4, 4], [8, 8]]
    starts = [[False, False], [False, True], [False, False], [True, False]]
    for reward, start in zip(rewards, starts):
        agent.window.push(state=state, noise=noise, reward=np.array(reward, np.float32),
                          start=np.array(start), valid=np.ones(2, bool),
                          state_valid=np.ones(2, bool))
    total, complete = agent.returns()
    # slot 0: rows 0-2 are one sequence (a new one starts at row 3); slot 1: rows 0 | 1-3
    np.testing.assert_allclose(total[:, 0], [1 + 0.5 * 2 + 0.25 * 4, 2 + 0.5 * 4, 4, 8])
    np.testing.assert_allclose(total[:, 1], [1, 2 + 0.5 * 4 + 0.25 * 8, 4 + 0.5 * 8, 8])
    assert complete[:, 0].tolist() == [True, True, True, False]  # row 3's sequence goes on
    assert complete[:, 1].tolist() == [True, False, False, False]


@pytest.mark.parametrize("name", ["es", "pg", "repaired", "reward_grad"])
def test_reward_trained_agents_train_checkpoint_and_resume_exactly(tmp_path, name):
    changes = {"agent": name, "agent_window": 64}
    whole = train(small_config(out_dir=str(tmp_path), run_name="whole", epochs=3, **changes))
    rows = metrics(whole)
    assert {"train/answer_acc", "validation/long_range_acc"} <= set(rows[-1])
    assert rows[-1]["memory_loss"] is not None  # it did update f
    torch.load(whole / "checkpoint.pt", weights_only=True)  # tensors and plain data only
    agent_state = checkpoint.load(whole / "checkpoint.pt")["experiment"]["agent"]
    assert "net" in agent_state and ("window" in agent_state or "trace" in agent_state
                                     or agent_state["replay"]["size"] > 0)
    part = train(small_config(out_dir=str(tmp_path), run_name="part", epochs=2, **changes))
    train(small_config(out_dir=str(tmp_path), run_name="part", epochs=3, **changes),
          run_dir=part, resume=True)
    assert comparable(metrics(part)) == comparable(metrics(whole))


def test_es_population_must_split_the_slots_evenly():
    with pytest.raises(ConfigError, match="es_population"):
        small_config(agent="es", batch_size=16, es_population=6)
    with pytest.raises(ConfigError, match="es_population.*divide batch_size"):
        small_config(agent="es", batch_size=16, es_population=32)


def test_repaired_target_critic_follows_by_polyak_steps_and_both_nets_learn():
    config = small_config(agent="repaired", batch_size=SLOTS, agent_window=64, repaired_tau=0.25)
    agent = RepairedAgent(LAYOUT, config, SLOTS, seed=0)
    drive(agent, steps=40)  # fills the replay past one minibatch (no update yet: 320 rows)
    assert agent.updates == 0 and agent.replay.size == 40 * SLOTS
    params = lambda module: [p.detach().clone() for p in module.parameters()]
    target_before, critic_before = params(agent.target_critic), params(agent.critic)
    net_before = params(agent.net)
    agent.learn()
    for before, online, target in zip(target_before, agent.critic.parameters(),
                                      agent.target_critic.parameters()):
        torch.testing.assert_close(target, before + 0.25 * (online.detach() - before))
    assert all(not p.requires_grad for p in agent.target_critic.parameters())  # detached bootstrap
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(net_before, agent.net.parameters()))


def test_repaired_explores_only_the_units_it_is_told_to():
    config = small_config(agent="repaired", batch_size=SLOTS, repaired_explore_units=2)
    agent = RepairedAgent(LAYOUT, config, SLOTS, seed=0)
    observation = states(np.random.default_rng(3))
    moved = np.abs(agent.explore(observation) - agent.act(observation)) > 1e-7  # (B, M)
    assert (moved.sum(1) == 2).all()  # 2 of the 6 units per slot
    assert len({tuple(row) for row in moved}) > 1  # not the same units in every slot


def test_repaired_rates_and_discount_are_checked():
    with pytest.raises(ConfigError, match="repaired_tau"):
        small_config(agent="repaired", repaired_tau=0.0)
    with pytest.raises(ConfigError, match="repaired_gamma"):
        small_config(agent="repaired", repaired_gamma=1.0)
    with pytest.raises(ConfigError, match="repaired_explore_units"):
        small_config(agent="repaired", repaired_explore_units=49)  # memory_size 48
    with pytest.raises(ConfigError, match="repaired_actor_lr"):
        small_config(agent="repaired", repaired_actor_lr=-1e-4)
