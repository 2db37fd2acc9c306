"""The hand-written training step of A equals autograd + clip_grad_norm_ + torch.optim.Adam."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from mannrl_gym.supervised import ActionLearner


def reference_step(net, optimizer, features, memory, targets, clipping):
    net.train()
    scores = net(torch.from_numpy(features), torch.from_numpy(memory))
    rows = nn.functional.cross_entropy(scores, torch.from_numpy(targets), reduction="none")
    optimizer.zero_grad()
    rows.mean().backward()
    nn.utils.clip_grad_norm_(net.parameters(), clipping)
    optimizer.step()
    return scores.detach(), rows.detach()


@pytest.mark.parametrize("double_softmax", [True, False])
@pytest.mark.parametrize("clipping", [0.01, 100.0])
@pytest.mark.parametrize("hidden_layers,embed_size", [(1, None), (2, 12)])
def test_manual_step_matches_autograd(double_softmax, clipping, hidden_layers, embed_size):
    learner = ActionLearner(11, 48, 64, 11, lr=1e-3, clipping=clipping,
                            double_softmax=double_softmax, seed=3, hidden_layers=hidden_layers,
                            embed_size=embed_size)
    linears_before_norm = {f"{name}.bias" for name, module in learner.net.named_modules()
                           if isinstance(module, nn.Linear) and name != f"body.{3 * hidden_layers}"}
    net = copy.deepcopy(learner.net)
    for p in net.parameters():  # detach the copy from the shared flat buffer
        p.data = p.data.clone()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        features = np.eye(11, dtype=np.float32)[rng.integers(0, 11, 16)]
        memory = rng.random((16, 48), dtype=np.float32)
        targets = rng.integers(0, 11, 16)
        probs, loss = learner.train_step(features, memory, targets)
        ref_scores, ref_loss = reference_step(net, optimizer, features, memory, targets, clipping)
        ref_probs = ref_scores if double_softmax else ref_scores.softmax(1)
        np.testing.assert_allclose(probs, ref_probs.numpy(), atol=1e-5)
        np.testing.assert_allclose(loss, ref_loss.numpy(), atol=1e-5)
    for (name, mine), theirs in zip(learner.net.state_dict().items(), net.state_dict().values()):
        if name in linears_before_norm:
            # batch norm cancels this bias: its true gradient is 0 and both implementations
            # see only rounding noise, which Adam scales up to full steps. Compare its size.
            assert abs(float(mine.abs().mean()) - float(theirs.abs().mean())) < 0.01
            continue
        # the running mean averages pre-activations, which include that noisy bias
        atol = 2e-3 if name.endswith("running_mean") else 2e-5
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=atol, err_msg=name)


@pytest.mark.parametrize("hidden_layers,embed_size", [(1, None), (2, 6)])
def test_evaluate_matches_module_in_eval_mode(hidden_layers, embed_size):
    learner = ActionLearner(11, 8, 16, 5, lr=1e-3, clipping=1.0, double_softmax=False, seed=1,
                            hidden_layers=hidden_layers, embed_size=embed_size)
    rng = np.random.default_rng(1)
    for _ in range(3):  # move the running statistics away from their initial values
        learner.train_step(rng.random((8, 11), dtype=np.float32),
                           rng.random((8, 8), dtype=np.float32), rng.integers(0, 5, 8))
    features, memory = rng.random((4, 11), dtype=np.float32), rng.random((4, 8), dtype=np.float32)
    probs, _ = learner.evaluate(features, memory, np.zeros(4, dtype=np.int64))
    learner.net.eval()
    with torch.no_grad():
        expected = learner.net(torch.from_numpy(features), torch.from_numpy(memory)).softmax(1)
    np.testing.assert_allclose(probs, expected.numpy(), atol=1e-5)


def test_single_rows_are_gathered_until_a_batch():
    learner = ActionLearner(3, 2, 4, 3, lr=1e-2, clipping=1.0, double_softmax=True, seed=0,
                            min_batch=4, gather_small=True)
    before = learner.flat.clone()
    one = (np.eye(3, dtype=np.float32)[:1], np.zeros((1, 2), np.float32), np.array([1]))
    for _ in range(3):
        learner.train_step(*one)
    assert torch.equal(learner.flat, before)  # three rows: nothing learned yet
    learner.train_step(*one)
    assert not torch.equal(learner.flat, before)  # the fourth completes a batch


def test_single_rows_are_only_evaluated_without_gathering():
    learner = ActionLearner(3, 2, 4, 3, lr=1e-2, clipping=1.0, double_softmax=True, seed=0)
    before = learner.flat.clone()
    for _ in range(40):
        learner.train_step(np.eye(3, dtype=np.float32)[:1], np.zeros((1, 2), np.float32),
                           np.array([1]))
    assert torch.equal(learner.flat, before)


def test_moments_taken_under_batch_statistics_reproduce_the_batch_for_deep_networks():
    """Precise BN for several layers: summing every layer's moments while each normalises by
    the batch's own statistics gives running statistics under which eval mode reproduces that
    batch; with stale upstream statistics the deeper layers would be off."""
    learner = ActionLearner(11, 8, 16, 5, lr=1e-3, clipping=1.0, double_softmax=False, seed=2,
                            hidden_layers=2, embed_size=6)
    rng = np.random.default_rng(2)
    for block in learner.blocks:  # stale statistics, far from the data's
        block.running_var[:] = 1e-6
    features = np.eye(11, dtype=np.float32)[rng.integers(0, 11, 4096)]
    memory = rng.random((4096, 8), dtype=np.float32)
    targets = rng.integers(0, 5, 4096)
    learner.eval_batch_statistics = True
    batch_probs, _ = learner.evaluate(features, memory, targets)
    learner.start_moments()
    learner.evaluate(features, memory, targets)
    learner.eval_batch_statistics = False
    learner.use_moments()
    probs, _ = learner.evaluate(features, memory, targets)
    np.testing.assert_allclose(probs, batch_probs, atol=1e-3)
