"""Shared fixtures: a small Logic task and config so env and trainer tests run in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_SILENT", "true")

from mannrl_gym.config import Config, from_mapping  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def small_config(**changes) -> Config:
    """Table 1 with 300 sequences, for speed."""
    base = {"num_sequences": 300, "epochs": 2, "wandb_mode": "disabled", "progress": False,
            "eval_batch_size": 64}
    if changes.get("task", "logic") != "logic":  # a key the task never reads is refused
        del base["num_sequences"]
    return from_mapping({**base, **changes}, source="test")


def for_task(task: str, overrides: list[str]) -> list[str]:
    """Command-line ``overrides`` less the Logic-only ``num_sequences`` when ``task`` is
    another (a key the task never reads is refused)."""
    if task == "logic":
        return overrides
    return [item for item in overrides if not item.startswith("num_sequences=")]


@pytest.fixture
def config() -> Config:
    return small_config()


def learner_batches(steps: int, replicas: int = 3, rows: int = 16, features: int = 11,
                    memory: int = 8, outputs: int = 5, seed: int = 0):
    """``steps`` random (features (K, B, F), memory (K, B, M), targets (K, B)) for A's step."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield (rng.random((replicas, rows, features), dtype=np.float32),
               rng.random((replicas, rows, memory), dtype=np.float32),
               rng.integers(0, outputs, (replicas, rows)))


def pre_norm_biases(net) -> set[str]:
    """Names of the biases of linear layers that feed a batch norm: batch norm removes them,
    so their gradient is rounding noise (tests/test_device_arithmetic.py)."""
    import torch

    names, modules = set(), list(net.named_modules())
    for (name, module), (_, following) in zip(modules, modules[1:]):
        if isinstance(module, torch.nn.Linear) and isinstance(following, torch.nn.BatchNorm1d):
            names.add(f"{name}.bias")
    return names
