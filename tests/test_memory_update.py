"""The memory-net update's two backends (``agents/memory_update.py``): the host's NumPy round
(``NumpyMemoryUpdate``) and the torch round over a leading group axis (``forward_torch``,
``loss_torch``, ``running_statistics_torch``, ``clip_rmsprop_torch``: the device path's, and a
single run's with embeddings at G = 1) fed the same inputs, every output and updated
parameter compared directly.

The bias before batch norm: batch norm removes it, so its true gradient is 0 and both
backends compute rounding noise (compared within 1e-6 of each other). RMSprop divides each
gradient by its own size, so that noise takes a step of up to about lr / sqrt(1 - alpha) =
10 lr in either direction: after the step, b is compared within that bound; it changes no
output (the memories and the other parameters are compared tightly).
"""

import numpy as np
import pytest
import torch

from mannrl_gym.agents.memory_update import (GroupLinear, NumpyMemoryUpdate, clip_rmsprop_torch,
                                             forward_torch, loss_torch,
                                             running_statistics_torch)
from mannrl_gym.networks import MemoryNet, initialize

M, F, V, R = 6, 5, 4, 24
LR, CLIPPING = 1e-2, 0.5


def numpy_side(seed: int):
    net = MemoryNet(M, F, V)
    initialize(net, torch.Generator().manual_seed(seed))
    # running statistics away from their defaults, so their update is compared too
    net.body[1].running_mean.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(seed))
    net.body[1].running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.RMSprop(net.parameters(), lr=LR)
    return net, NumpyMemoryUpdate(net, optimizer), optimizer


@pytest.mark.parametrize("detach_target", [False, True])
def test_numpy_and_torch_rounds_agree_on_every_output_and_parameter(detach_target):
    rng = np.random.default_rng(0)
    gamma = 0.9
    groups = [numpy_side(seed) for seed in (3, 4)]  # G = 2 groups of different weights
    pairs = rng.random((2, 2, R, M + F + V), dtype=np.float32)  # (G, 2, R, D)
    reward = -rng.random((2, R), dtype=np.float32) * 2
    live = np.ones((2, R), bool)
    live[1, ::5] = False  # group 1: idle rows enter no statistic (masked, not filtered)
    usable = live & (rng.random((2, R)) > 0.3)
    flat0 = torch.stack([update.flat.clone() for _, update, _ in groups])
    running0 = tuple(torch.stack([torch.from_numpy(getattr(update, name).copy())
                                  for _, update, _ in groups])
                     for name in ("running_mean", "running_var"))

    # NumPy: each group alone, on its live rows only (as the replay filters them)
    outs, losses, grads = [], [], []
    for g, (_, update, _) in enumerate(groups):
        out, loss = update.loss_and_gradient(pairs[g][:, live[g]], reward[g][live[g]],
                                             usable[g][live[g]], gamma, detach_target)
        outs.append(out)
        losses.append(loss)
        grads.append(update.grad_flat.copy())
        update.clip_and_step(CLIPPING)

    # torch: both groups in one call
    sizes = [p.numel() for p in groups[0][1].params]
    shapes = [p.shape for p in groups[0][1].params]
    flat = flat0.clone().requires_grad_(True)
    views = [part.unflatten(1, shape) for part, shape in zip(flat.split(sizes, dim=1), shapes)]
    out_t, ((mean, var),) = forward_torch([tuple(views)], torch.from_numpy(pairs),
                                          torch.from_numpy(live))
    loss_t = loss_torch(out_t, torch.from_numpy(reward), torch.from_numpy(usable),
                        torch.full((2, 1, 1), gamma), detach_target)
    (grad_t,) = torch.autograd.grad(loss_t.sum(), flat)
    stepped, square = clip_rmsprop_torch(flat0, grad_t, torch.zeros_like(flat0),
                                         torch.full((2,), LR), torch.full((2,), CLIPPING),
                                         alpha=0.99, eps=1e-8)
    running = running_statistics_torch(running0, (mean, var), torch.from_numpy(live.sum(1)))

    bias = slice(sizes[0], sizes[0] + sizes[1])
    others = np.r_[0:sizes[0], sizes[0] + sizes[1]:sum(sizes)]
    for g, (_, update, optimizer) in enumerate(groups):
        assert losses[g] == pytest.approx(float(loss_t[g].detach()), rel=1e-6)
        np.testing.assert_allclose(outs[g], out_t[g][:, live[g]].detach().numpy(), atol=1e-6)
        np.testing.assert_allclose(grads[g], grad_t[g].numpy(), rtol=1e-4, atol=1e-6)
        assert np.abs(grads[g][others]).max() > 1e-3  # a real gradient, not noise
        assert np.abs(grads[g][bias]).max() < 1e-6  # b's: rounding noise on both sides
        new = update.flat.numpy()
        np.testing.assert_allclose(new[others], stepped[g].numpy()[others], rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(new[bias], stepped[g].numpy()[bias], rtol=0, atol=20 * LR)
        assert not np.allclose(new[others], flat0[g].numpy()[others])  # it moved
        np.testing.assert_allclose(update.square_flat.numpy()[others], square[g].numpy()[others],
                                   rtol=1e-4, atol=1e-12)
        np.testing.assert_allclose(update.running_mean, running[0][g].numpy(), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(update.running_var, running[1][g].numpy(), rtol=1e-5,
                                   atol=1e-6)
        assert not np.allclose(update.running_var, running0[1][g].numpy())  # they moved
        assert float(optimizer.state[update.params[0]]["step"]) == 1


@pytest.mark.parametrize("fixed_width", [0, 3])
def test_group_linear_backward_matches_autograd(fixed_width):
    """``GroupLinear``'s hand-written backward against autograd's of the same product (a
    leading input part without gradient, ``fixed``, as f's memory enters its body)."""
    generator = torch.Generator().manual_seed(0)
    group, rows, size, width = 2, 5, 4, 7
    w = torch.randn(group, size, width, generator=generator, requires_grad=True)
    b = torch.randn(group, size, generator=generator, requires_grad=True)
    x = torch.randn(group, 2, rows, width - fixed_width, generator=generator, requires_grad=True)
    fixed = torch.randn(group, 2, rows, fixed_width, generator=generator) if fixed_width else None
    d_out = torch.randn(group, 2, rows, size, generator=generator)
    out = GroupLinear.apply(w, b, x, fixed)
    mine = torch.autograd.grad(out, (w, b, x), d_out)
    full = x if fixed is None else torch.cat([fixed, x], dim=3)
    plain = torch.matmul(full, w.transpose(1, 2).unsqueeze(1)) + b.view(group, 1, 1, size)
    theirs = torch.autograd.grad(plain, (w, b, x), d_out)
    torch.testing.assert_close(out, plain)
    for got, expected in zip(mine, theirs):
        assert float(expected.abs().max()) > 0.1  # a real gradient
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("embedded", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_forward_on_distinct_states_is_the_forward_on_their_pairs(embedded, masked):
    """``forward_torch`` on a replay's distinct states (G, U, D) and an index of the pairs'
    rows against the same on the pairs gathered (G, 2, R, D): memories, batch statistics and
    every parameter's gradient, for G = 2 groups; U = 12 < 2R = 16, so each stored state's
    product runs once; and with more distinct states than rows, the gathered path."""
    generator = torch.Generator().manual_seed(3)
    net = MemoryNet(M, F, V, embed_size=3 if embedded else None)
    initialize(net, generator)
    blocks = ([net.embed_input, net.embed_output] if embedded else []) + [net.body]
    split = net.split_sizes if embedded else None
    group, rows = 2, 8
    width = M + F + V if embedded else net.body[0].weight.shape[1]
    for distinct_count in (12, 40):
        states = torch.rand(group, distinct_count, width, generator=generator)
        index = torch.randint(0, distinct_count, (group, 2, rows), generator=generator)
        live = (torch.rand(group, rows, generator=generator) > 0.3) if masked else None
        results = []
        for use_index in (True, False):
            params = [tuple(torch.stack([p.detach()] * group).requires_grad_()
                            for p in (block[0].weight, block[0].bias, block[1].weight,
                                      block[1].bias)) for block in blocks]
            if use_index:
                out, statistics = forward_torch(params, states, live, split, index)
            else:
                pairs = states[torch.arange(group).view(group, 1, 1), index]
                out, statistics = forward_torch(params, pairs, live, split)
            weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(4))
            grads = torch.autograd.grad((out * weights).sum(), [p for b in params for p in b])
            results.append((out, [s for pair in statistics for s in pair], grads))
        (out_i, stats_i, grads_i), (out_p, stats_p, grads_p) = results
        torch.testing.assert_close(out_i, out_p, rtol=1e-5, atol=1e-6)
        for mine, theirs in zip(stats_i + list(grads_i), stats_p + list(grads_p)):
            torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
        assert float(grads_p[-4].abs().max()) > 1e-3  # the body's weight: a real gradient
