"""The paper's agent repaired as reinforcement learning: an actor-critic on the env's reward.

The paper regresses f's own memory units toward gamma * f(s') - loss: f plays value function
and policy at once, the bootstrap is not detached, there is no target network, the step size
barely moves the weights, and every unit gets the same scalar. Here each of these is repaired,
and still no gradient passes through A (the memory-net learns from the reward alone):

* f is the actor (the policy: state -> next memory); a separate critic learns from rewards
  the value of a write by the paper's TD regression (SmoothL1), with a **detached bootstrap**
  from a **target network** (a Polyak copy of the critic);
* **per-unit credit**: the critic's value is V(s) plus one credit c_j(s) per memory unit for
  writing more than f does into unit j; f moves each unit's write along its own credit;
* learning rates at which the weights move (``repaired_actor_lr``, ``repaired_critic_lr``).

Shapes: B slots, state s (B, D), memory M, replay of R transitions, minibatch N.

Acting:   u = pre_f(s) + sigma * xi,  xi ~ N(0, I_M),  m' = sigmoid(u)   (``explore``, training)
          (with ``repaired_explore_units`` k > 0, xi is zero but on k random units per slot)
          m' = sigmoid(pre_f(s))                                          (``act``, evaluation)
          pre_f = f's output before the sigmoid, batch norm as an affine map (running statistics)
Replay:   every live transition (s, m', r, s'') of the last ``REPLAY_ROWS`` (r: the env's reward
          for m', -clamp(A's loss); s'': the next state, which holds m')
Critic:   [V(s), c(s)] = MLP(s) (1 + M outputs);  Q(s, m) = V(s) + sum_j c_j(s) (m_j - f(s)_j)
          (Q is linear in the write around f's own write, so dQ/dm_j = c_j(s))
Update:   every ``agent_window`` env steps, ``memory_train_iterations`` times on N sampled rows:
          y = r + g * Vbar(s'')                 (no gradient; Qbar(s'', f(s'')) = Vbar(s''))
          critic: SmoothL1(Q(s, m'), y)         (Adam, repaired_critic_lr)
          actor:  -mean_N sum_j c_j(s) f(s)_j   in f's weights only, c held fixed
                                                (Adam, repaired_actor_lr)
          Vbar, cbar <- (1 - tau) bar + tau online   (tau = repaired_tau)
f's batch-norm running statistics follow the memories on the paper's schedule, as in the
``frozen_weights`` control (``memory_body.PaperStatistics``), so this agent differs from that
control only in what the reward does to the weights.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from mannrl_gym.agents.memory_body import FoldedNet, PaperStatistics, pre_activation, sigmoid
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import MemoryNet, initialize
from mannrl_gym.numerics import raise_non_finite

REPLAY_ROWS = 16_384  # transitions kept (about 1,000 env steps of 16 slots)
MINIBATCH = 256  # transitions per update
CRITIC_HIDDEN = 128  # width of the critic's two hidden layers
GRADIENT_CLIP = 1.0  # max gradient norm of actor and critic per update


class TransitionReplay:
    """Ring buffer of the last ``capacity`` live transitions (s, m', r, s''), as tensors."""

    def __init__(self, capacity: int, state_dim: int, memory_size: int) -> None:
        self.data = {"state": torch.zeros(capacity, state_dim),
                     "memory": torch.zeros(capacity, memory_size),
                     "reward": torch.zeros(capacity),
                     "next_state": torch.zeros(capacity, state_dim)}
        self.capacity, self.size, self.cursor = capacity, 0, 0

    def push(self, rows: dict[str, np.ndarray]) -> None:
        """Append k rows at once (every field (k, ...)); the oldest are overwritten."""
        count = len(rows["reward"])
        where = (self.cursor + torch.arange(count)) % self.capacity
        for name, tensor in self.data.items():
            tensor[where] = torch.as_tensor(rows[name], dtype=torch.float32)
        self.cursor = (self.cursor + count) % self.capacity
        self.size = min(self.capacity, self.size + count)

    def sample(self, count: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        picks = torch.randint(0, self.size, (count,), generator=generator)
        return {name: tensor[picks] for name, tensor in self.data.items()}

    def state_dict(self) -> dict:
        return {"size": self.size, "cursor": self.cursor,
                **{name: t[:self.size].clone() for name, t in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.size, self.cursor = int(state["size"]), int(state["cursor"])
        for name, tensor in self.data.items():
            tensor[:self.size] = state[name]


class RepairedAgent:
    """Memory-net f as a deterministic actor, each unit trained along its own TD-learnt credit.

    Args:
        layout: the env's observation layout (state size D, memory size M).
        config: repaired_sigma, repaired_actor_lr, repaired_critic_lr, repaired_tau,
            repaired_gamma, agent_window, memory_train_iterations, embed_size; settle, history,
            memory_samples (the statistics' schedule).
        num_slots: B, the env's number of slots.
        seed: draws f's and the critic's initial weights, exploration and replay sampling.
    """

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int, seed: int) -> None:
        self.config, self.layout = config, layout
        self.net = MemoryNet(layout.memory_size, layout.input_dim, layout.num_outputs,
                             config.embed_size)
        self.critic = nn.Sequential(nn.Linear(layout.size, CRITIC_HIDDEN), nn.ReLU(),
                                    nn.Linear(CRITIC_HIDDEN, CRITIC_HIDDEN), nn.ReLU(),
                                    nn.Linear(CRITIC_HIDDEN, 1 + layout.memory_size))
        generator = torch.Generator().manual_seed(seed + 1)
        initialize(self.net, generator)
        with torch.no_grad():
            initialize(self.critic, generator)
        self.net.eval()  # batch norm from running statistics; PaperStatistics moves them
        self.target_critic = copy.deepcopy(self.critic)
        for p in self.target_critic.parameters():
            p.requires_grad_(False)
        self.actor_adam = torch.optim.Adam(self.net.parameters(), lr=config.repaired_actor_lr)
        self.critic_adam = torch.optim.Adam(self.critic.parameters(), lr=config.repaired_critic_lr)
        self.generator = torch.Generator().manual_seed(seed + 2)
        self.statistics = PaperStatistics(self.net, config, num_slots, layout.size, seed + 3)
        self.replay = TransitionReplay(REPLAY_ROWS, layout.size, layout.memory_size)
        self.steps, self.updates = 0, 0
        self.folded = FoldedNet(self.net, layout)  # pre_f in NumPy for acting
        self._pending: tuple[np.ndarray, np.ndarray] | None = None  # (s, m') awaiting its reward

    def start_epoch(self, epoch: int) -> None:
        """Nothing changes per epoch: the step sizes, tau and sigma stay constant."""

    # -- acting ------------------------------------------------------------------------
    def act(self, observation: np.ndarray) -> np.ndarray:
        """The deterministic write sigmoid(pre_f(s)), (B, M) (evaluation, prediction)."""
        return sigmoid(self.folded.pre(observation))

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """A noisy write sigmoid(pre_f(s) + sigma xi), (B, M) (training); remembered with s."""
        shape = (observation.shape[0], self.layout.memory_size)
        noise = torch.randn(shape, generator=self.generator)
        if self.config.repaired_explore_units:  # only k units per slot explore; A sees less noise
            units = torch.rand(shape, generator=self.generator).argsort(dim=1)
            noise *= torch.zeros(shape).scatter_(1, units[:, :self.config.repaired_explore_units],
                                                 1.0)
        noise = noise.numpy()
        memory = sigmoid(self.folded.pre(observation) + self.config.repaired_sigma * noise)
        self._pending = (np.asarray(observation, dtype=np.float32), memory.astype(np.float32))
        return memory

    # -- learning ----------------------------------------------------------------------
    def observe(self, observation: np.ndarray, reward: np.ndarray, info: dict) -> dict | None:
        """Store the transitions that end in ``observation``; update every ``agent_window``."""
        valid = np.asarray(info["valid"], dtype=bool)
        if self._pending is not None:
            state, memory = self._pending
            live = valid & ~np.asarray(info["sequence_start"], dtype=bool) \
                if not self.config.carry_memory else valid  # a reset memory is not the write
            self.replay.push({"state": state[live], "memory": memory[live],
                              "reward": np.asarray(reward, dtype=np.float32)[live],
                              "next_state": np.asarray(observation, dtype=np.float32)[live]})
            self._pending = None
        if self.statistics.observe(observation, valid):
            self.folded.stale()
        self.steps += 1
        if self.steps % self.config.agent_window or self.replay.size < MINIBATCH:
            return None
        return self.learn()

    def learn(self) -> dict:
        """``memory_train_iterations`` critic and actor steps on sampled transitions."""
        cfg = self.config
        critic_losses = []
        for _ in range(cfg.memory_train_iterations):
            batch = self.replay.sample(MINIBATCH, self.generator)
            with torch.no_grad():  # the detached bootstrap, from the target critic
                target = batch["reward"] + cfg.repaired_gamma * self.target_critic(
                    batch["next_state"])[:, 0]  # Qbar(s'', f(s'')) = Vbar(s'')
                mean_write = torch.sigmoid(pre_activation(self.net, batch["state"]))
            value, credit = self.critic(batch["state"]).split([1, self.layout.memory_size], 1)
            q = value[:, 0] + (credit * (batch["memory"] - mean_write)).sum(1)
            critic_loss = nn.functional.smooth_l1_loss(q, target)
            self._step(self.critic_adam, self.critic, critic_loss, "the critic's TD loss")
            # per-unit credit c_j(s) = dQ/dm_j moves f's write of unit j; the critic stays
            credit = credit.detach()
            write = torch.sigmoid(pre_activation(self.net, batch["state"]))
            actor_loss = -(credit * write).sum(1).mean()
            self._step(self.actor_adam, self.net, actor_loss, "the actor's loss")
            critic_losses.append(float(critic_loss.detach()))
        self._polyak()
        self.updates += 1
        self.folded.stale()
        return {"memory_loss": sum(critic_losses) / len(critic_losses)}

    def _step(self, optimizer: torch.optim.Optimizer, module: nn.Module, loss: torch.Tensor,
              what: str) -> None:
        if not bool(torch.isfinite(loss)):
            raise_non_finite("memory-net", f"at update {self.updates + 1}", what, module)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), GRADIENT_CLIP)
        optimizer.step()

    @torch.no_grad()
    def _polyak(self) -> None:
        tau = self.config.repaired_tau
        for target, online in zip(self.target_critic.parameters(), self.critic.parameters()):
            target.lerp_(online, tau)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "critic": self.critic.state_dict(),
                "target_critic": self.target_critic.state_dict(),
                "actor_adam": self.actor_adam.state_dict(),
                "critic_adam": self.critic_adam.state_dict(),
                "generator": self.generator.get_state(), "replay": self.replay.state_dict(),
                "statistics": self.statistics.state_dict(), "steps": self.steps,
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for name in ("net", "critic", "target_critic", "actor_adam", "critic_adam",
                     "replay", "statistics"):
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state["generator"])
        self.steps, self.updates = int(state["steps"]), int(state["updates"])
        self.folded.stale()
        self._pending = None
