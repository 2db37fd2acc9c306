import copy

import numpy as np
import pytest
import torch

from mannrl_gym.agents import FrozenMemoryAgent, MannRLAgent, NoMemoryAgent
from mannrl_gym.agents.replay import BatchStateReplay
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.tasks import build_task

from conftest import small_config


def make(config, agent_class=MannRLAgent):
    env = MannRLVectorEnv(build_task(config), config, num_envs=config.batch_size)
    return env, agent_class(env.layout, config, config.batch_size, config.seed)


def test_memory_net_updates_once_per_settle_plus_history_steps():
    config = small_config(settle=3, history=5, memory_samples=2, memory_lr=1e-2)
    env, agent = make(config)
    observation, _ = env.reset(seed=0)
    changed_at = []
    for step in range(1, 25):
        before = agent.net.body[0].weight.clone()
        observation, reward, _, _, info = env.step(agent.act(observation))
        stats = agent.observe(observation, reward, info)
        if not torch.equal(before, agent.net.body[0].weight):
            changed_at.append(step)
            assert stats is not None and np.isfinite(stats["memory_loss"])
    assert changed_at == [8, 16, 24]


@pytest.mark.parametrize("embed_size", [None, 7])
def test_act_is_the_memory_net_in_eval_mode(embed_size):
    config = small_config(embed_size=embed_size, hidden_layers=1 if embed_size is None else 2,
                          memory_lr=1e-2)
    env, agent = make(config)
    observation, _ = env.reset(seed=0)
    for _ in range(45):  # past one update, so running statistics have moved
        observation, reward, _, _, info = env.step(agent.act(observation))
        agent.observe(observation, reward, info)
    assert agent.updates >= 1
    agent.net.eval()
    with torch.no_grad():
        expected = agent.net(torch.from_numpy(observation)).numpy()
    np.testing.assert_allclose(agent.act(observation), expected, atol=1e-6)
    if embed_size:  # the input and output parts each pass through their own embedding
        assert agent.net.embed_input[0].weight.shape == (7, env.layout.input_dim)
        assert agent.net.embed_output[0].weight.shape == (7, env.layout.num_outputs)
        assert agent.net.body[0].in_features == config.memory_size + 14


def test_frozen_and_no_memory_ablations():
    config = small_config()
    env, frozen = make(config, FrozenMemoryAgent)
    _, none = make(config, NoMemoryAgent)
    weights = frozen.net.body[0].weight.clone()
    observation, _ = env.reset(seed=0)
    for _ in range(100):
        observation, reward, _, _, info = env.step(frozen.act(observation))
        assert frozen.observe(observation, reward, info) is None
    assert torch.equal(weights, frozen.net.body[0].weight)
    assert (none.act(observation) == 0).all()


def test_replay_pairs_are_consecutive_rows():
    replay = BatchStateReplay(6, 2, 3)
    for k in range(6):
        replay.push(np.full((2, 3), k, np.float32), np.full(2, -k, np.float32), np.ones(2, bool),
                    np.ones(2, bool))
    state, next_state, reward, usable = replay.sample_pairs(4, torch.Generator().manual_seed(0))
    assert state.shape == (8, 3)
    assert torch.equal(next_state, state + 1) and torch.equal(reward, -(state[:, 0] + 1))
    assert usable.all()


def test_replay_pairs_leave_out_idle_rows():
    replay = BatchStateReplay(6, 3, 2)
    for k in range(6):  # slot 2 goes idle from step 3 on
        valid = np.array([True, True, k < 3])
        replay.push(np.full((3, 2), k, np.float32), np.zeros(3, np.float32), valid, valid)
    state, next_state, _, usable = replay.sample_pairs(5, torch.Generator().manual_seed(0))
    assert state.shape == (5 * 2 + 2, 2)  # pairs (0,1) and (1,2) keep slot 2, the rest do not
    assert usable.all() and torch.equal(next_state, state + 1)


def test_detached_target_changes_the_update():
    results = []
    for detach in (False, True):
        config = small_config(detach_target=detach, settle=0, history=4, memory_samples=2,
                              memory_lr=1e-2)
        env, agent = make(config)
        observation, _ = env.reset(seed=0)
        for _ in range(4):
            observation, reward, _, _, info = env.step(agent.act(observation))
            agent.observe(observation, reward, info)
        results.append(agent.net.body[0].weight.clone())
    assert not torch.equal(*results)


@pytest.mark.parametrize("detach_target,update_weights", [(False, True), (True, True),
                                                           (False, False)])
def test_numpy_memory_update_matches_autograd(detach_target, update_weights):
    """f's hand-written update (agents/memory_update.py) equals the torch autograd path.

    Both step plain SGD here: RMSprop's first steps divide each gradient by its own size, so
    a gradient that is only rounding noise (the bias before batch norm, whose true gradient
    is 0) takes a full step in a random direction in either implementation."""
    config = small_config(settle=0, history=6, memory_samples=4, memory_clipping=0.5,
                          detach_target=detach_target)
    layout = MannRLVectorEnv(build_task(config), config, 4).layout
    numpy_agent, torch_agent = (MannRLAgent(layout, config, 4, seed=2,
                                            update_weights=update_weights) for _ in range(2))
    torch_agent.numpy_update = None  # the autograd path
    for agent in (numpy_agent, torch_agent):
        agent.optimizer = torch.optim.SGD(agent.net.parameters(), lr=0.5)
    numpy_agent.numpy_update.optimizer = numpy_agent.optimizer
    rng = np.random.default_rng(3)
    for _ in range(4):
        valid = rng.random((6, 4)) > 0.2
        for k in range(6):
            state = rng.random((4, layout.size), dtype=np.float32)
            reward = -rng.random(4, dtype=np.float32) * 3
            for agent in (numpy_agent, torch_agent):
                agent.replay.push(state, reward, valid[k], valid[k])
        mine, theirs = numpy_agent.learn(), torch_agent.learn()
        assert mine["memory_loss"] == pytest.approx(theirs["memory_loss"], rel=1e-5)
        for agent in (numpy_agent, torch_agent):
            agent.replay.clear()
    reference = torch_agent.net.state_dict()
    for key, value in numpy_agent.net.state_dict().items():
        torch.testing.assert_close(value, reference[key], rtol=1e-5, atol=1e-6, msg=key)
    initial = MannRLAgent(layout, config, 4, seed=2).net.state_dict()
    moved = not torch.equal(initial["body.0.weight"], reference["body.0.weight"])
    assert moved == update_weights  # what is compared is a trained net (or the frozen one)


def test_numpy_rmsprop_step_equals_torch_and_keeps_its_state_format():
    config = small_config(memory_lr=1e-2)
    layout = MannRLVectorEnv(build_task(config), config, 4).layout
    numpy_agent, torch_agent = (MannRLAgent(layout, config, 4, seed=2) for _ in range(2))
    update = numpy_agent.numpy_update
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [rng.standard_normal(g.shape).astype(np.float32)
                 for g in (update.g_w, update.g_b, update.g_gamma, update.g_beta)]
        for mine, value in zip((update.g_w, update.g_b, update.g_gamma, update.g_beta), grads):
            mine[...] = value
        update._step()
        for param, value in zip(torch_agent.numpy_update.params, grads):
            param.grad = torch.from_numpy(value.copy())
        torch_agent.optimizer.step()
    for key, value in numpy_agent.net.state_dict().items():
        torch.testing.assert_close(value, torch_agent.net.state_dict()[key], rtol=1e-6,
                                   atol=1e-7, msg=key)
    mine, theirs = numpy_agent.optimizer.state_dict(), torch_agent.optimizer.state_dict()
    assert mine["state"].keys() == theirs["state"].keys()
    for index, state in theirs["state"].items():
        assert state.keys() == mine["state"][index].keys()
        torch.testing.assert_close(mine["state"][index]["square_avg"], state["square_avg"])
        assert float(mine["state"][index]["step"]) == float(state["step"]) == 3


def test_pair_stack_is_sample_pairs_as_one_array():
    replay = BatchStateReplay(6, 3, 2)
    rng = np.random.default_rng(0)
    for k in range(6):  # slot 2 goes idle from step 3 on
        valid = np.array([True, True, k < 3])
        replay.push(rng.random((3, 2), dtype=np.float32), rng.random(3, dtype=np.float32),
                    valid & (k % 2 == 0), valid)
    expected = replay.sample_pairs(5, torch.Generator().manual_seed(1))
    pairs, reward, usable = replay.sample_pair_stack(5, torch.Generator().manual_seed(1))
    assert pairs.shape == (2, 12, 2)
    for mine, theirs in zip((pairs[0], pairs[1], reward, usable), expected):
        np.testing.assert_array_equal(mine, theirs.numpy())


def test_memory_update_resumes_from_a_loaded_state():
    """The NumPy update keeps RMSprop's state in one flat buffer; a loaded state_dict (new
    tensors) is taken over, so a resumed agent updates as the uninterrupted one."""
    config = small_config(settle=0, history=6, memory_samples=4, memory_lr=1e-2)
    layout = MannRLVectorEnv(build_task(config), config, 4).layout
    whole, resumed = (MannRLAgent(layout, config, 4, seed=2) for _ in range(2))
    rng = np.random.default_rng(3)

    def update(agents):
        valid = np.ones(4, bool)
        for _ in range(6):
            state = rng.random((4, layout.size), dtype=np.float32)
            reward = -rng.random(4, dtype=np.float32)
            for agent in agents:
                agent.replay.push(state, reward, valid, valid)
        for agent in agents:
            agent.learn()
            agent.replay.clear()

    update([whole])
    resumed.load_state_dict(copy.deepcopy(whole.state_dict()))
    update([whole, resumed])
    for key, value in whole.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0, msg=key)
    initial = MannRLAgent(layout, config, 4, seed=2).net.body[0].weight
    assert not torch.equal(whole.net.body[0].weight, initial)  # the updates moved f
