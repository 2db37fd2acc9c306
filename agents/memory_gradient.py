"""The gradient of A's loss with respect to the memory A read, in NumPy (A in eval mode).

A = ActionNet (mannrl_gym.networks): [embed: linear, BN, relu], (linear, BN, relu) x L, linear,
[softmax]. In eval mode each linear + BN pair is one affine map (``fold_batch_norm``), so the
backward to the memory columns is a few products per step; ``tests/test_reward_grad.py``
checks it against autograd. Used by ``reward_grad_agent`` at every env step, where torch's
per-call overhead on 16 rows would cost several times the env's own step.
"""

from __future__ import annotations

import numpy as np

from mannrl_gym.networks import ActionNet, fold_batch_norm
from mannrl_gym.supervised import softmax_cross_entropy


def loss_memory_gradient(net: ActionNet, double_softmax: bool, features: np.ndarray,
                         memory: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A's cross-entropy per row (R,), its gradient in the memory (R, M)) for input features
    (R, F), memories (R, M) and targets (R,) int; ``double_softmax``: A's output
    probabilities are the cross-entropy's input (the reference's quirk), else its logits."""
    if net.embed is not None:
        weight, bias = fold_batch_norm(net.embed[0], net.embed[1])
        features = np.maximum(features @ weight + bias, 0)
    hidden = np.concatenate([features, memory], axis=1)
    maps, active = [], []
    for linear, norm in net.hidden_blocks:
        weight, bias = fold_batch_norm(linear, norm)  # (in, out), (out,)
        pre = hidden @ weight + bias
        maps.append(weight)
        active.append(pre > 0)
        hidden = np.maximum(pre, 0)
    w_out = net.output_layer.weight.detach().numpy()
    logits = hidden @ w_out.T + net.output_layer.bias.detach().numpy()
    probs, d_scores, scores, log_total = softmax_cross_entropy(logits, double_softmax)
    rows = np.arange(targets.shape[0])
    loss = log_total[:, 0] - scores[rows, targets]
    d_scores[rows, targets] -= 1.0  # d loss / d scores
    if double_softmax:  # back through A's own softmax
        d_scores = probs * (d_scores - (d_scores * probs).sum(axis=1, keepdims=True))
    d_hidden = d_scores @ w_out
    for weight, on in zip(reversed(maps), reversed(active)):
        d_hidden = (d_hidden * on) @ weight.T
    return loss, d_hidden[:, -memory.shape[1]:]
