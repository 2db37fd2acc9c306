"""Experience replay of the last ``history`` batch-states, as the paper's agent keeps it."""

from __future__ import annotations

import numpy as np
import torch


class BatchStateReplay:
    """A fixed buffer of up to ``capacity`` consecutive env steps, each a batch of B states.

    Row k holds the state s_k (B, D), the reward that arrived with it (B,), whether the slot
    was reading a sequence (``valid``, (B,) bool: idle slots enter no network) and whether the
    transition s_{k-1} -> s_k may be learned from (``usable``, (B,) bool). Pairs (k, k + 1) are
    sampled.
    """

    def __init__(self, capacity: int, num_slots: int, state_dim: int) -> None:
        self.states = torch.zeros(capacity, num_slots, state_dim)
        self.rewards = torch.zeros(capacity, num_slots)
        self.usable = torch.zeros(capacity, num_slots, dtype=torch.bool)
        self.valid = torch.zeros(capacity, num_slots, dtype=torch.bool)
        self._arrays = (self.states.numpy(), self.rewards.numpy(), self.usable.numpy(),
                        self.valid.numpy())
        self.size = 0

    def bind(self, states: torch.Tensor, rewards: torch.Tensor, usable: torch.Tensor,
             valid: torch.Tensor) -> None:
        """Keep the buffer in these tensors (shapes as the fields; e.g. row k of K replicas'
        stacked buffers, which one indexed assignment then fills for all), contents copied."""
        for mine, theirs in zip((self.states, self.rewards, self.usable, self.valid),
                                (states, rewards, usable, valid)):
            theirs.copy_(mine)
        self.states, self.rewards, self.usable, self.valid = states, rewards, usable, valid
        self._arrays = (states.numpy(), rewards.numpy(), usable.numpy(), valid.numpy())

    def next_row(self) -> int:
        """Count one more stored step; its row. Raise if full (the owner clears the buffer
        after each memory update)."""
        if self.size == self.states.shape[0]:
            raise RuntimeError("replay buffer full: clear() it after training")
        self.size += 1
        return self.size - 1

    def push(self, state: np.ndarray, reward: np.ndarray, usable: np.ndarray,
             valid: np.ndarray) -> None:
        """Append one step (NumPy arrays (B, D), (B,), (B,), (B,)); raise if full."""
        row = self.next_row()
        states, rewards, usables, valids = self._arrays
        states[row] = state
        rewards[row] = reward
        usables[row] = usable
        valids[row] = valid

    def clear(self) -> None:
        self.size = 0

    def sample_pairs(self, count: int, generator: torch.Generator):
        """``count`` distinct pairs (k, k+1), flattened over slots, less the rows where either
        state is idle (R <= count*B rows).

        Returns (s_k (R, D), s_{k+1} (R, D), reward_{k+1} (R,), usable (R,) bool).
        """
        states, index, reward, usable = self.sample_pair_rows(count, generator)
        return states[index[0]], states[index[1]], reward, usable

    def sample_pair_rows(self, count: int, generator: torch.Generator):
        """``sample_pairs``'s draws as rows of the stored states, each state once however
        many pairs hold it: (states (size * B, D), index (2, R) long: the rows of s_k and of
        s_{k+1}, reward_{k+1} (R,), usable (R,) bool)."""
        k = torch.randperm(self.size - 1, generator=generator)[:count]
        slots = self.states.shape[1]
        live = (self.valid[k] & self.valid[k + 1]).reshape(-1)
        first = (k.unsqueeze(1) * slots + torch.arange(slots)).reshape(-1)[live]
        return (self.states[:self.size].reshape(-1, self.states.shape[2]),
                torch.stack([first, first + slots]),
                self.rewards[k + 1].reshape(-1)[live], self.usable[k + 1].reshape(-1)[live])

    def sample_pair_stack(self, count: int, generator: torch.Generator):
        """``sample_pairs`` as NumPy arrays (the same draws from ``generator``), both states
        of each pair in one array: (pairs (2, R, D): s_k and s_{k+1}, reward_{k+1} (R,),
        usable (R,) bool)."""
        k = torch.randperm(self.size - 1, generator=generator)[:count].numpy()
        states, rewards, usable, valid = self._arrays
        both = np.stack([k, k + 1])
        pairs = states[both].reshape(2, -1, states.shape[2])
        reward, next_usable = rewards[k + 1].reshape(-1), usable[k + 1].reshape(-1)
        live = valid[both].all(axis=0).reshape(-1)
        if live.all():
            return pairs, reward, next_usable
        return pairs[:, live], reward[live], next_usable[live]

    def state_dict(self) -> dict:
        return {"states": self.states.clone(), "rewards": self.rewards.clone(),
                "usable": self.usable.clone(), "valid": self.valid.clone(), "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        self.states.copy_(state["states"])
        self.rewards.copy_(state["rewards"])
        self.usable.copy_(state["usable"])
        self.valid.copy_(state.get("valid", state["usable"]))  # checkpoints before 'valid'
        self.size = int(state["size"])


class ReplayCycle:
    """The paper's memory-update schedule, counted in env steps, with the replay it fills.

    A cycle is ``settle + history`` steps: for ``settle`` steps nothing is kept, for
    ``history`` steps each batch-state is pushed; then an update is due (``record`` returns
    True) and the owner calls ``restart`` after it. The paper's agent trains f at each due
    update; the reward-trained agents (es, pg) refresh f's batch-norm statistics there
    (``memory_body.PaperStatistics``), so both keep them on one schedule.
    """

    def __init__(self, settle: int, history: int, num_slots: int, state_dim: int) -> None:
        self.settle, self.history = settle, history
        self.replay = BatchStateReplay(history, num_slots, state_dim)
        self.step_in_cycle = 0

    def record(self, state: np.ndarray, reward: np.ndarray, usable: np.ndarray,
               valid: np.ndarray) -> bool:
        """Count one step, keeping it once the settle steps are over (arrays as
        ``BatchStateReplay.push``); True when the update is due."""
        if self.step_in_cycle >= self.settle:
            self.replay.push(state, reward, usable, valid)
        self.step_in_cycle += 1
        return self.due

    def count(self) -> int | None:
        """``record`` without the arrays: count one step; the replay row its batch-state goes
        to (the caller writes it), or None during the settle steps."""
        row = self.replay.next_row() if self.step_in_cycle >= self.settle else None
        self.step_in_cycle += 1
        return row

    @property
    def due(self) -> bool:
        """The cycle's steps are all counted: the update is due."""
        return self.step_in_cycle >= self.settle + self.history

    def resume_at(self, step_in_cycle: int) -> None:
        """Continue from ``step_in_cycle`` with the replay rows of that step already written
        (by whoever stepped the cycle elsewhere: the device path)."""
        self.step_in_cycle = step_in_cycle
        self.replay.size = max(0, step_in_cycle - self.settle)

    def restart(self) -> None:
        """After the update: empty the replay, count the next cycle from zero."""
        self.replay.clear()
        self.step_in_cycle = 0

    def state_dict(self) -> dict:
        return {"replay": self.replay.state_dict(), "step_in_cycle": self.step_in_cycle}

    def load_state_dict(self, state: dict) -> None:
        self.replay.load_state_dict(state["replay"])
        self.step_in_cycle = int(state["step_in_cycle"])
