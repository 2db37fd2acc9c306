"""f's gradient clipping and RMSprop step, each large parameter's passes in two halves.

The same arithmetic as ``nn.utils.clip_grad_norm_(params, max_norm, foreach=True)`` and then
``torch.optim.RMSprop.step()`` with torch's defaults (no momentum, not centred, no weight
decay): the same operations in the same order on every element, so the same numbers, bit
for bit (``tests/test_memory_optimizer.py``). What differs is where they run: a parameter of
``threads.SPLIT_ELEMENTS`` elements or more (f's body, 1024 x 1216 on the sentence task) is
stepped as two halves of its rows, one on the helper thread when the run has two threads
(``mannrl_gym.threads.in_halves``). These passes are memory-bound (about 25 MB a step for the
body's weight, gradient and square averages), so a second core halves them. Any other
optimizer is stepped by torch.

RMSprop is also written in ``memory_update``: in NumPy over one flat buffer
(``NumpyMemoryUpdate``, f without embeddings) and over the replica axis
(``clip_rmsprop_torch``, the device path). Those two round differently from torch's own
order, this one does not; folding them into one would change the numbers of runs made with
them, so they stay three for now."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mannrl_gym.threads import SPLIT_ELEMENTS, in_halves


def plain_rmsprop(optimizer: torch.optim.Optimizer) -> bool:
    """``optimizer`` is torch's RMSprop with its defaults (no momentum, not centred, no weight
    decay, not differentiable), which this module (and the NumPy update) can step itself."""
    group = optimizer.param_groups[0]
    return (isinstance(optimizer, torch.optim.RMSprop) and len(optimizer.param_groups) == 1
            and not group["momentum"] and not group["centered"] and not group["weight_decay"]
            and not group["maximize"] and not group.get("differentiable", False))


def rmsprop_state(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict:
    """``param``'s RMSprop state, created as torch creates it at its first step."""
    state = optimizer.state[param]
    if not state:
        scalar = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
        state["step"] = torch.zeros((), dtype=scalar)
        state["square_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    return state


@torch.no_grad()
def clip_and_step(optimizer: torch.optim.Optimizer, params: Sequence[nn.Parameter],
                  max_norm: float) -> None:
    """Scale the gradients of ``params`` to a global norm of at most ``max_norm``, then take
    the optimizer's step (plain RMSprop here, in halves; anything else by torch)."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    grads = [p.grad for p in params]
    total_norm = nn.utils.get_total_norm(grads, foreach=True)
    if not plain_rmsprop(optimizer):
        nn.utils.clip_grads_with_norm_(params, max_norm, total_norm, foreach=True)
        optimizer.step()
        return
    scale = torch.clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
    group = optimizer.param_groups[0]
    lr, alpha, eps = float(group["lr"]), group["alpha"], group["eps"]
    for param, grad in zip(params, grads):
        state = rmsprop_state(optimizer, param)
        state["step"] += 1
        square_avg, value = state["square_avg"], param.detach()

        def rows(low: int, high: int) -> None:
            with torch.no_grad():  # grad mode is per thread: the helper's too
                part = grad[low:high]
                part.mul_(scale)  # the clipping
                square = square_avg[low:high]
                square.mul_(alpha).addcmul_(part, part, value=1 - alpha)
                avg = square.sqrt()
                avg.add_(eps)
                value[low:high].addcdiv_(part, avg, value=-lr)

        length = param.shape[0] if param.dim() else 1
        half = length // 2
        if (param.numel() < SPLIT_ELEMENTS or half == 0
                or not in_halves(lambda: rows(0, half), lambda: rows(half, length))):
            rows(0, length)
