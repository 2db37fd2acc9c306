"""f's clipping and RMSprop step in halves (``agents/memory_optimizer.py``), its fold in halves
(``networks.fold_batch_norm``) and ``forward_torch`` without a mask: each the same numbers,
bit for bit, as the code it replaces (torch's ``clip_grad_norm_`` and ``RMSprop``, one pass,
a mask of ones), at one thread and with the halves on two."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import mannrl_gym.threads as threads
from mannrl_gym.agents.memory_optimizer import clip_and_step, plain_rmsprop
from mannrl_gym.agents.memory_update import forward_torch
from mannrl_gym.networks import MemoryNet, fold_batch_norm, initialize
from mannrl_gym.threads import SPLIT_ELEMENTS, limit_threads


@pytest.fixture
def restore_threads():
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


def memory_net(seed: int) -> MemoryNet:
    """f with embeddings whose body weight (600 x 632) is split in halves."""
    net = MemoryNet(600, 10, 8, embed_size=16)
    initialize(net, torch.Generator().manual_seed(seed))
    assert net.body[0].weight.numel() >= SPLIT_ELEMENTS
    return net


def give_gradients(net: nn.Module, step: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(100 + step)
    for param in net.parameters():
        param.grad = torch.randn(param.shape, generator=generator) * scale


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("scale", [1e-4, 10.0])  # below and above the clipping norm
def test_clip_and_step_is_torchs_clip_and_rmsprop_bit_for_bit(count, scale, restore_threads):
    ours, theirs = memory_net(0), memory_net(0)
    optimizer_ours = torch.optim.RMSprop(ours.parameters(), lr=1e-3)
    optimizer_theirs = torch.optim.RMSprop(theirs.parameters(), lr=1e-3)
    assert plain_rmsprop(optimizer_ours)
    with limit_threads(count):
        jobs = threads.helper().jobs
        for step in range(3):
            give_gradients(ours, step, scale)
            give_gradients(theirs, step, scale)
            clip_and_step(optimizer_ours, list(ours.parameters()), 0.5)
            nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, foreach=True)
            optimizer_theirs.step()
        assert threads.helper().jobs - jobs == 3 * (count - 1)  # the body weight in halves
    for mine, torchs in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(mine, torchs)
        assert torch.equal(mine.grad, torchs.grad)  # clipped in place, as torch does
    ours_state, theirs_state = optimizer_ours.state_dict(), optimizer_theirs.state_dict()
    for key, state in theirs_state["state"].items():
        assert torch.equal(ours_state["state"][key]["square_avg"], state["square_avg"])
        assert torch.equal(ours_state["state"][key]["step"], state["step"])
    # the state goes on with torch's own step after a checkpoint
    optimizer_theirs.load_state_dict(ours_state)


def test_clip_and_step_leaves_other_optimizers_to_torch():
    ours, theirs = memory_net(1), memory_net(1)
    optimizer_ours = torch.optim.RMSprop(ours.parameters(), lr=1e-3, momentum=0.9)
    optimizer_theirs = torch.optim.RMSprop(theirs.parameters(), lr=1e-3, momentum=0.9)
    assert not plain_rmsprop(optimizer_ours)
    for step in range(2):
        give_gradients(ours, step, 1.0)
        give_gradients(theirs, step, 1.0)
        clip_and_step(optimizer_ours, list(ours.parameters()), 0.5)
        nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, foreach=True)
        optimizer_theirs.step()
    for mine, torchs in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(mine, torchs)


@pytest.mark.parametrize("count", [1, 2])
def test_fold_in_halves_is_the_one_pass_fold(count, restore_threads):
    net = memory_net(2)
    net.body[1].running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(2))
    weight, bias, gamma = (p.detach().numpy() for p in (net.body[0].weight, net.body[0].bias,
                                                       net.body[1].weight))
    scale = gamma / np.sqrt(net.body[1].running_var.numpy() + net.body[1].eps)
    with limit_threads(count):
        jobs = threads.helper().jobs
        folded, shifted = fold_batch_norm(net.body[0], net.body[1])
        assert threads.helper().jobs - jobs == count - 1
    assert np.array_equal(folded, weight.T * scale)
    assert folded.shape == weight.shape[::-1]
    assert folded.T.flags.c_contiguous  # stored (out, in): split_matmul's torch layout
    eval_net = copy.deepcopy(net.body).eval()  # and it is still f's eval-mode body
    x = torch.rand(4, weight.shape[1])
    np.testing.assert_allclose(torch.sigmoid(torch.from_numpy(x.numpy() @ folded + shifted)),
                               eval_net(x).detach(), rtol=1e-5, atol=1e-6)


def test_forward_without_a_mask_is_the_forward_with_all_rows_live():
    net = memory_net(3)
    blocks = [tuple(p.detach().clone().unsqueeze(0).requires_grad_()
                    for p in (block[0].weight, block[0].bias, block[1].weight, block[1].bias))
              for block in (net.embed_input, net.embed_output, net.body)]
    pairs = torch.rand(1, 2, 12, 600 + 10 + 8)
    results = []
    for live in (torch.ones(1, 12, dtype=torch.bool), None):
        out, statistics = forward_torch(blocks, pairs, live, net.split_sizes)
        gradients = torch.autograd.grad(out.square().sum(), [p for b in blocks for p in b])
        results.append((out, statistics, gradients))
    (out_mask, stats_mask, grads_mask), (out_none, stats_none, grads_none) = results
    assert torch.equal(out_mask, out_none)
    for (mean_a, var_a), (mean_b, var_b) in zip(stats_mask, stats_none):
        assert torch.equal(mean_a, mean_b) and torch.equal(var_a, var_b)
    for a, b in zip(grads_mask, grads_none):
        assert torch.equal(a, b)
