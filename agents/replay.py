"""Experience replay of the last ``history`` batch-states, as the paper's agent keeps it."""

from __future__ import annotations

import numpy as np
import torch


class BatchStateReplay:
    """A fixed buffer of up to ``capacity`` consecutive env steps, each a batch of B states.

    Row k holds the state s_k (B, D), the reward that arrived with it (B,) and whether the
    transition s_{k-1} -> s_k may be learned from (B,) bool. Pairs (k, k + 1) are sampled.
    """

    def __init__(self, capacity: int, num_slots: int, state_dim: int) -> None:
        self.states = torch.zeros(capacity, num_slots, state_dim)
        self.rewards = torch.zeros(capacity, num_slots)
        self.usable = torch.zeros(capacity, num_slots, dtype=torch.bool)
        self._arrays = (self.states.numpy(), self.rewards.numpy(), self.usable.numpy())
        self.size = 0

    def push(self, state: np.ndarray, reward: np.ndarray, usable: np.ndarray) -> None:
        """Append one step (NumPy arrays (B, D), (B,), (B,)); raise if full.

        The owner clears the buffer after each memory update.
        """
        if self.size == self.states.shape[0]:
            raise RuntimeError("replay buffer full: clear() it after training")
        states, rewards, usables = self._arrays
        states[self.size] = state
        rewards[self.size] = reward
        usables[self.size] = usable
        self.size += 1

    def clear(self) -> None:
        self.size = 0

    def sample_pairs(self, count: int, generator: torch.Generator):
        """``count`` distinct pairs (k, k+1), flattened over slots.

        Returns (s_k (count*B, D), s_{k+1} (count*B, D), reward_{k+1} (count*B,), mask (count*B,)).
        """
        k = torch.randperm(self.size - 1, generator=generator)[:count]
        dim = self.states.shape[2]
        return (self.states[k].reshape(-1, dim), self.states[k + 1].reshape(-1, dim),
                self.rewards[k + 1].reshape(-1), self.usable[k + 1].reshape(-1))

    def state_dict(self) -> dict:
        return {"states": self.states.clone(), "rewards": self.rewards.clone(),
                "usable": self.usable.clone(), "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        self.states.copy_(state["states"])
        self.rewards.copy_(state["rewards"])
        self.usable.copy_(state["usable"])
        self.size = int(state["size"])
