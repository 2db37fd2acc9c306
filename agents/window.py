"""A window of consecutive env steps over all B slots, for agents that update once per window."""

from __future__ import annotations

import numpy as np
import torch


class StepWindow:
    """``capacity`` steps of named per-slot arrays, e.g. ``{"reward": (B,), "state": (B, D)}``.

    Each field is a torch tensor (capacity, *shape) with a NumPy view for cheap writes;
    ``push`` appends one step, ``full`` says when an update is due, ``clear`` starts over.
    """

    def __init__(self, capacity: int, fields: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
        self.data = {name: torch.zeros((capacity, *shape), dtype=dtype)
                     for name, (shape, dtype) in fields.items()}
        self._arrays = {name: tensor.numpy() for name, tensor in self.data.items()}
        self.capacity, self.size = capacity, 0

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    def push(self, **arrays: np.ndarray) -> None:
        """Append one step: one array per field (every field, shapes as declared)."""
        if self.full:
            raise RuntimeError("step window full: clear() it after the update")
        for name, view in self._arrays.items():
            view[self.size] = arrays[name]
        self.size += 1

    def clear(self) -> None:
        self.size = 0

    def __getitem__(self, name: str) -> torch.Tensor:
        """The filled part of field ``name``: (size, *shape)."""
        return self.data[name][:self.size]

    def state_dict(self) -> dict:
        return {"size": self.size, **{name: t.clone() for name, t in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, tensor in self.data.items():
            tensor.copy_(state[name])
        self.size = int(state["size"])
