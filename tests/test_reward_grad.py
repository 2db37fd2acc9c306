"""agent=reward_grad: f trained by the gradient of A's loss through the one write it made."""

import numpy as np
import pytest
import torch
from torch import nn

from mannrl_gym.agents.reward_grad_agent import RewardGradientAgent
from mannrl_gym.config import ConfigError
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import ActionNet, initialize
from mannrl_gym.supervised import ActionLearner
from mannrl_gym.trainer import train

from conftest import small_config
from test_reward_agents import LAYOUT, SLOTS, states
from test_trainer import comparable, metrics


def trained_action_net(embed_size, hidden_layers, double_softmax, seed=0) -> ActionNet:
    """A with random weights and running statistics away from their defaults."""
    net = ActionNet(LAYOUT.input_dim, LAYOUT.memory_size, 7, LAYOUT.num_outputs,
                    softmax_output=double_softmax, hidden_layers=hidden_layers,
                    embed_size=embed_size)
    initialize(net, torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for norm in (m for m in net.modules() if isinstance(m, nn.BatchNorm1d)):
            norm.running_mean.normal_(0, 0.3, generator=generator)
            norm.running_var.uniform_(0.5, 2.0, generator=generator)
            norm.weight.uniform_(0.5, 1.5, generator=generator)
    return net.eval()


def learner_of(net: ActionNet, embed_size, hidden_layers, double_softmax) -> ActionLearner:
    """An ActionLearner (A as the env trains it) holding ``net``'s weights and statistics."""
    learner = ActionLearner(LAYOUT.input_dim, LAYOUT.memory_size, 7, LAYOUT.num_outputs,
                            lr=1e-3, clipping=1.0, double_softmax=double_softmax, seed=5,
                            hidden_layers=hidden_layers, embed_size=embed_size)
    learner.net.load_state_dict(net.state_dict())  # into the learner's own views
    return learner


@pytest.mark.parametrize("embed_size, hidden_layers, double_softmax",
                         [(None, 1, True), (None, 1, False), (4, 2, True)])
def test_memory_gradient_matches_autograd(embed_size, hidden_layers, double_softmax):
    net = trained_action_net(embed_size, hidden_layers, double_softmax)
    state = states(np.random.default_rng(0))
    features, memory = state[:, LAYOUT.input], state[:, LAYOUT.memory]
    targets = np.random.default_rng(1).integers(0, LAYOUT.num_outputs, SLOTS)
    learner = learner_of(net, embed_size, hidden_layers, double_softmax)
    before = [p.detach().clone() for p in learner.net.state_dict().values()]
    loss, grad = learner.memory_gradient(features, memory, targets)
    assert all(torch.equal(a, b) for a, b in zip(before, learner.net.state_dict().values()))
    m = torch.from_numpy(memory.copy()).requires_grad_()
    expected = nn.functional.cross_entropy(net(torch.from_numpy(features), m),
                                           torch.from_numpy(targets), reduction="none")
    expected.sum().backward()
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, m.grad.numpy(), rtol=1e-4, atol=1e-7)
    assert np.abs(grad).max() > 1e-4  # a gradient to check


def agent(**changes) -> RewardGradientAgent:
    config = small_config(agent="reward_grad", batch_size=SLOTS, **changes)
    return RewardGradientAgent(LAYOUT, config, SLOTS, seed=0)


def test_one_write_trace_is_the_write_s_own_gradient():
    """With reward_grad_trace 0, sum_b g_b . E_b is d (sum_b g_b . f(s_b)) / d (W, gamma, beta)
    through one write, the state (its memory included) held constant."""
    rg = agent(reward_grad_trace=0.0)
    state = states(np.random.default_rng(2))
    rg.explore(state)  # a first write, so that the next state's memory is f's own
    state[:, LAYOUT.memory] = rg.written
    memory = rg.explore(state)
    g = np.random.default_rng(3).standard_normal(memory.shape).astype(np.float32)
    got = np.einsum("bm,bmk->mk", g, rg.trace)
    rg.net.eval()
    written = rg.net(torch.from_numpy(state))
    np.testing.assert_allclose(written.detach().numpy(), memory, rtol=1e-5, atol=1e-6)
    weight, gain, beta = torch.autograd.grad((written * torch.from_numpy(g)).sum(), rg.trained)
    np.testing.assert_allclose(got[:, :-2], weight.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[:, -2], gain.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[:, -1], beta.numpy(), rtol=1e-4, atol=1e-6)


def test_a_trace_follows_each_unit_s_own_recurrence_only_when_asked():
    state = states(np.random.default_rng(4))
    traces = {}
    for decay in (0.0, 0.5):
        rg = agent(reward_grad_trace=decay)
        rg.explore(state)
        first = rg.trace.copy()
        following = state.copy()
        following[:, LAYOUT.memory] = rg.written  # reads f's own write: the trace goes on
        rg.explore(following)
        traces[decay] = rg.trace
        reset = following.copy()
        reset[:, LAYOUT.memory] = 0.0  # the env zeroed the memory: the trace restarts
        rg.explore(reset)
        restarted = rg.trace
        fresh = agent(reward_grad_trace=decay)
        fresh.explore(reset)
        np.testing.assert_array_equal(restarted, fresh.trace)
    assert np.abs(traces[0.5] - traces[0.0]).max() > 1e-6
    assert np.abs(first).max() > 0


def test_rows_that_did_not_read_f_s_write_give_no_gradient():
    rg = agent()
    rg.attach_learner(learner_of(trained_action_net(None, 1, True), None, 1, True))
    state = states(np.random.default_rng(5))
    rg.explore(state)
    after = states(np.random.default_rng(6))
    after[:, LAYOUT.memory] = rg.written
    after[:2, LAYOUT.memory] = 0.0  # two slots' memories reset by the env
    valid = np.ones(SLOTS, bool)
    valid[2] = False  # one idle slot
    info = {"valid": valid, "target": np.zeros(SLOTS, np.int64),
            "sequence_start": np.zeros(SLOTS, bool)}
    rg.observe(after, -np.ones(SLOTS, np.float32), info)
    assert rg.rows == SLOTS - 3 and np.abs(rg.gradient).max() > 0


def test_it_needs_a_when_it_learns():
    rg = agent()
    state = states(np.random.default_rng(7))
    rg.explore(state)
    with pytest.raises(RuntimeError, match="attach_learner"):
        rg.observe(state, np.zeros(SLOTS, np.float32), {"valid": np.ones(SLOTS, bool)})


def memory_weights(run_dir):
    from mannrl_gym import checkpoint
    return checkpoint.load(run_dir / "checkpoint.pt")["experiment"]["agent"]["net"]


def test_it_trains_on_logic_moves_f_and_repeats_itself(tmp_path):
    changes = {"agent": "reward_grad", "agent_window": 32, "epochs": 1, "out_dir": str(tmp_path)}
    first = train(small_config(run_name="a", **changes))
    again = train(small_config(run_name="b", **changes))
    assert comparable(metrics(first)) == comparable(metrics(again))  # same seed, same run
    assert metrics(first)[-1]["memory_loss"] is not None
    initial = RewardGradientAgent(ObservationLayout(48, 11, 11), small_config(**changes), 16,
                                  seed=0).net.state_dict()
    trained = memory_weights(first)
    assert not torch.equal(trained["body.0.weight"], initial["body.0.weight"])  # f learned
    assert not torch.equal(trained["body.1.bias"], initial["body.1.bias"])
    control = memory_weights(train(small_config(run_name="c", epochs=1, out_dir=str(tmp_path),
                                                agent="frozen_weights")))
    assert torch.equal(control["body.0.weight"], initial["body.0.weight"])  # the control's don't


def test_its_settings_are_checked():
    with pytest.raises(ConfigError, match="reward_grad_trace"):
        small_config(agent="reward_grad", reward_grad_trace=1.5)
    with pytest.raises(ConfigError, match="reward_grad_lr"):
        small_config(agent="reward_grad", reward_grad_lr=0.0)
