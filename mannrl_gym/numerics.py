"""Numerical health: stop at the first NaN or infinity and say where it is."""

from __future__ import annotations

import torch


class NumericalError(RuntimeError):
    """A network produced NaN or infinity. Training stops; the last checkpoint stays intact."""


def non_finite_tensors(module: torch.nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``module`` that hold NaN or infinity."""
    named = list(module.named_parameters()) + list(module.named_buffers())
    return [name for name, tensor in named
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def raise_non_finite(what: str, when: str, quantity: str, module: torch.nn.Module) -> None:
    """Raise NumericalError: ``{what}: {quantity} is NaN or infinite {when}; tensors ...``."""
    bad = non_finite_tensors(module)
    where = f"; non-finite tensors: {', '.join(bad)}" if bad else ""
    raise NumericalError(f"{what}: {quantity} is NaN or infinite {when}{where}")
