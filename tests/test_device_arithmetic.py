"""The device path's torch arithmetic against the host's NumPy arithmetic, function by
function, on the same inputs (issue 22: one implementation per backend, compared directly).

A's step: ``DeviceLearners`` (``replicas/device_action.py``) against ``StackedLearners`` /
``supervised.forward_backward`` for K = 3 replicas of B = 16 rows (the device path steps
only fast steps, where every row is live: it has no idle rows to mask). Compared: the
probabilities, the losses, the gradient of the summed loss, and after 1 and 6 steps every
parameter, both Adam moments and every batch-norm running statistic.

The bias of a linear layer that feeds batch norm: batch norm removes it, so its true
gradient is 0 and both backends compute rounding noise (measured: |g| <= 5e-6 beside
gradients up to 7; compared within ``NOISE``). Adam divides by the gradient's own size,
so that noise moves b by up to lr * r_t at step t on each path, in either direction, where
r_t = max |m_hat / sqrt(v_hat)| over gradient sequences = sqrt(sum_s w_s^2 / u_s) (Cauchy-
Schwarz; w, u: the bias-corrected weights of m and v; r_1 = 1, r_6 < 1.03): b is compared
within 2 lr sum_t r_t. Its running mean follows b (the batch mean of W x + b), so after T
steps it is compared within the same bound for T - 1 steps (equal after one step); its
Adam moments are compared within the noise's size. Measured: b apart by up to 1.5 lr after
one step (bound 2 lr) and 5.0 lr after six (bound 12.1 lr), its running mean by 0 and 1.4
lr (bound 10.0 lr); every other parameter and statistic within 1.6e-6, the other gradients
within 5e-6 (rtol 1e-4). None of it changes an output.

The env step's outputs (``replicas.device.step_outputs`` against ``envs.core.step_outputs``)
and f's folded eval-mode act (``DeviceMemoryNets.fold`` + ``act`` against
``MannRLAgent.folded`` + ``agents.mannrl_agent.act_folded``, through the replicated agents'
``act``), with and without f's embeddings and ``memory_sees_output``'s output gate, on the
same random inputs: float32 rounding of the same operations (within 1e-6).
"""

import math

import numpy as np
import pytest
import torch

from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.envs.core import step_outputs as host_step_outputs
from mannrl_gym.agents import MannRLAgent
from mannrl_gym.replicas.agents import replicate
from mannrl_gym.replicas.device import step_outputs as device_step_outputs
from mannrl_gym.replicas.device_action import DeviceLearners
from mannrl_gym.stacked_learners import StackedLearners
from mannrl_gym.supervised import BETA1, BETA2, ActionLearner, forward_backward

from conftest import learner_batches, pre_norm_biases, small_config

K, B = 3, 16
RATES = [(0, 1e-3, 0.01), (1, 3e-3, 100.0), (2, 1e-2, 0.5)]  # (seed, lr, clipping) per replica
NOISE = 1e-5  # |gradient| of a bias before batch norm, rounding only (measured <= 5e-6)
SHAPES = [(1, None), (2, None), (2, 6)]  # (hidden_layers, embed_size)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]  # A's step also on a GPU, where there is one


def adam_reach(steps: int) -> float:
    """sum over t <= steps of r_t, the most one Adam step t moves a parameter, in units of
    lr (see the module's docstring)."""
    total = 0.0
    for t in range(1, steps + 1):
        w = [(1 - BETA1) * BETA1 ** (t - s) / (1 - BETA1 ** t) for s in range(1, t + 1)]
        u = [(1 - BETA2) * BETA2 ** (t - s) / (1 - BETA2 ** t) for s in range(1, t + 1)]
        total += math.sqrt(sum(a * a / b for a, b in zip(w, u)))
    return total


def both_sides(device: str, double_softmax: bool, hidden_layers: int, embed_size: int | None):
    """(the host's StackedLearners, the device's DeviceLearners on ``device``), K replicas
    with the same initial weights."""
    def learners():
        return [ActionLearner(11, 8, 16, 5, lr=lr, clipping=clipping,
                              double_softmax=double_softmax, seed=seed,
                              hidden_layers=hidden_layers, embed_size=embed_size)
                for seed, lr, clipping in RATES]
    host, other = StackedLearners(learners()), StackedLearners(learners())
    on_device = DeviceLearners(other.learners, other.storage, torch.device(device))
    on_device.upload()
    return host, on_device


def flat_names(net: torch.nn.Module) -> list[str]:
    """Each entry of the flat parameter row's parameter name, in order."""
    return [name for name, p in net.named_parameters() for _ in range(p.numel())]


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("double_softmax", [True, False])
@pytest.mark.parametrize("hidden_layers,embed_size", SHAPES)
def test_one_forward_backward_gives_the_same_outputs_and_gradient(where, double_softmax,
                                                                  hidden_layers, embed_size):
    host, device = both_sides(where, double_softmax, hidden_layers, embed_size)
    noise = np.isin(flat_names(host.learners[0].net), sorted(pre_norm_biases(
        host.learners[0].net)))
    index = (np.arange(K)[:, None], np.arange(B)[None, :])
    for features, memory, targets in learner_batches(3):
        probs, loss = forward_backward(host, features, memory, targets, index)
        d_probs, d_loss, d_grad = (part.cpu().numpy() for part in device.forward_backward(
            *(torch.from_numpy(a).to(where) for a in (features, memory, targets)))[:3])
        np.testing.assert_allclose(d_probs, probs, atol=2e-6)
        np.testing.assert_allclose(d_loss, loss, rtol=1e-5, atol=2e-6)
        grad = host.grads
        assert np.abs(grad[:, ~noise]).max() > 0.1  # a gradient of order 1 to compare
        np.testing.assert_allclose(d_grad[:, ~noise], grad[:, ~noise], rtol=1e-4, atol=2e-6)
        # the biases before batch norm: rounding noise on both sides
        assert np.abs(grad[:, noise]).max() < NOISE and np.abs(d_grad[:, noise]).max() < NOISE


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("steps", [1, 6])
@pytest.mark.parametrize("double_softmax", [True, False])
@pytest.mark.parametrize("hidden_layers,embed_size", SHAPES)
def test_steps_update_every_parameter_moment_and_statistic_alike(where, steps, double_softmax,
                                                                 hidden_layers, embed_size):
    host, device = both_sides(where, double_softmax, hidden_layers, embed_size)
    for features, memory, targets in learner_batches(steps):
        probs, loss = host.train_step(features, memory, targets)
        d_probs, d_loss = device.train_step(*(torch.from_numpy(a).to(where)
                                              for a in (features, memory, targets)))
        np.testing.assert_allclose(d_probs.cpu().numpy(), probs, atol=2e-6)
        np.testing.assert_allclose(d_loss.cpu().numpy(), loss, rtol=1e-5, atol=2e-6)
    state = {name: torch.from_numpy(getattr(host.storage, name).numpy()).clone()
             for name in ("exp_avg", "exp_avg_sq")}
    device.download(steps)
    net = host.learners[0].net
    biases = pre_norm_biases(net)
    noise = np.isin(flat_names(net), sorted(biases))
    lrs = np.array([lr for _, lr, _ in RATES])[:, None]
    # the Adam moments: equal where the gradient is, within the noise's size where it is noise
    for name, theirs in state.items():
        mine = getattr(device.storage, name).numpy()
        np.testing.assert_allclose(mine[:, ~noise], theirs.numpy()[:, ~noise], rtol=1e-4,
                                   atol=1e-7, err_msg=name)
        size = NOISE / B if name == "exp_avg" else (NOISE / B) ** 2
        assert np.abs(mine[:, noise] - theirs.numpy()[:, noise]).max() <= 2 * size, name
    for k, (mine, theirs) in enumerate(zip(device.learners, host.learners)):
        assert mine.steps == theirs.steps == steps
        got = mine.net.state_dict()
        for name, value in theirs.net.state_dict().items():
            # a bias before batch norm, and its running mean, follow Adam's noise steps
            if name in biases:
                reach = 2 * lrs[k, 0] * adam_reach(steps)
            elif name.endswith("running_mean"):  # every batch norm follows a linear layer
                reach = 2 * lrs[k, 0] * adam_reach(steps - 1)
            else:
                reach = 0.0
            np.testing.assert_allclose(got[name].numpy(), value.numpy(), rtol=1e-4,
                                       atol=1e-6 + reach, err_msg=f"replica {k}: {name}")


@pytest.mark.parametrize("gate", [None, [1.0, 0.0, 1.0]])  # memory_sees_output false: 0
def test_the_env_step_outputs_agree(gate):
    rng = np.random.default_rng(0)
    memory, features, probs = (rng.random((K, B, size), dtype=np.float32) for size in (6, 5, 4))
    loss = rng.exponential(2.0, (K, B)).astype(np.float32)
    clamp = np.array([[1.0], [3.0], [10.0]], np.float32)
    output_gate = None if gate is None else np.array(gate, np.float32).reshape(K, 1, 1)
    observation, reward, _ = host_step_outputs(memory, features, probs, loss, clamp,
                                               output_gate)
    d_observation, d_reward = device_step_outputs(
        *(torch.from_numpy(a) for a in (memory, features, probs, loss, clamp)),
        None if output_gate is None else torch.from_numpy(output_gate))
    np.testing.assert_allclose(d_observation.numpy(), observation, atol=1e-7)
    np.testing.assert_allclose(d_reward.numpy(), reward, atol=1e-7)
    assert (reward < 0).any() and (reward > -clamp).any()  # some clamped, some not
    if gate is not None:
        assert not observation[1, :, 11:].any() and observation[0, :, 11:].any()


@pytest.mark.parametrize("keys", [{}, {"embed_size": 4}, {"memory_sees_output": False}])
def test_the_folded_act_agrees(keys):
    config = small_config(**keys)
    layout = ObservationLayout(config.memory_size, 5, 4)
    agents = [MannRLAgent(layout, config, B, seed=seed) for seed in range(K)]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights and running statistics away from their initial values
        for agent in agents:
            for name, value in agent.net.state_dict().items():
                if name.endswith("running_var"):
                    value.uniform_(0.5, 2.0, generator=generator)
                elif value.is_floating_point():
                    value.add_(torch.empty_like(value).uniform_(-0.3, 0.3, generator=generator))
            agent.changed()
    host = replicate(agents, B)
    states = np.random.default_rng(1).random((K * B, layout.size), dtype=np.float32)
    memory = host.act(states)
    device = host.device_nets(torch.device("cpu"))
    device.upload()
    d_memory = device.act(torch.from_numpy(states).view(K, B, -1))
    np.testing.assert_allclose(d_memory.reshape(K * B, -1).numpy(), memory, atol=1e-6)
    assert memory.std() > 0.05  # memories that differ between rows and replicas
