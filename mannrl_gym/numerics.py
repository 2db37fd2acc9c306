"""Numerical health: stop at the first NaN or infinity and say where it is."""

from __future__ import annotations

from typing import Sequence

import numpy as np
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


def raise_first_bad(bad: torch.Tensor, network: str, quantity: str,
                    nets: Sequence[torch.nn.Module]) -> None:
    """``raise_non_finite`` for the first replica flagged in ``bad`` (K,) bool, if any (one
    host read per stretch: the device does not stop at the step it happened)."""
    flagged = np.flatnonzero(bad.cpu().numpy())
    if flagged.size:
        k = int(flagged[0])
        raise_non_finite(network, f"of replica {k} during the device run", quantity, nets[k])
