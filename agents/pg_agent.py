"""A stochastic memory policy trained by policy gradient on the env's reward (PPO-style clipping).

No gradient passes through A: the memory-net is a Gaussian policy over pre-sigmoid memory
writes, credited by the reward that follows each write.

Shapes: B slots, state s_t (B, D), memory M, window of W = ``agent_window`` transitions.

Policy:  u_t = pre_f(s_t) + sigma * xi_t,  xi_t ~ N(0, I_M),  m_{t+1} = sigmoid(u_t)
         pre_f = f's output before the sigmoid (batch norm with running statistics);
         log pi(u | s) = sum_j -(u_j - pre_f(s)_j)^2 / (2 sigma^2) + const   (sigma = pg_sigma)
Reward:  r_{t+1} = the env's reward for m_{t+1} (-clamp(A's loss) at step t+1).
Return:  G_t = r_{t+1} + gamma * G_{t+1}, cut where a new sequence (or an idle step) begins:
         a write is credited with what it earns until the end of the sequence it is read in.
         Transitions whose sequence has not ended inside the window are not learned from.
Baseline: V(s) = v . s + c (linear), fitted to G by squared error; advantage
         A_t = G_t - V(s_t), normalised over the window's usable transitions.
Update (every W env steps, ``memory_train_iterations`` Adam steps at lr pg_lr on all usable
         transitions of the window): per memory unit j, ratio_j = pi_new(u_j|s) / pi_old(u_j|s),
         loss = -mean_t sum_j min(ratio_j A_t, clip(ratio_j, 1 - c, 1 + c) A_t)  (c = pg_clip)
         (per-unit clipping: each unit's write is credited on its own noise).
f's batch-norm running statistics follow the memories on the paper's schedule, as in the
``frozen_weights`` control (``memory_body.PaperStatistics``: every settle + history steps).

``explore`` samples (training); ``act`` writes the mean sigmoid(pre_f(s)) (evaluation).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mannrl_gym.agents.memory_body import FoldedNet, PaperStatistics, pre_activation, sigmoid
from mannrl_gym.agents.window import StepWindow
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import MemoryNet, initialize
from mannrl_gym.numerics import raise_non_finite

GRADIENT_CLIP = 1.0  # max gradient norm of f and of the baseline per update


class PolicyGradientAgent:
    """Memory-net f as a Gaussian policy over memory writes, trained by clipped policy gradient.

    Args:
        layout: the env's observation layout (state size D, memory size M).
        config: pg_sigma, pg_lr, pg_clip, agent_window, gamma, memory_train_iterations,
            carry_memory, embed_size; settle, history, memory_samples (the statistics' schedule).
        num_slots: B, the env's number of slots.
        seed: draws f's and the baseline's initial weights and every exploration noise.
    """

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int, seed: int) -> None:
        self.config, self.layout = config, layout
        self.net = MemoryNet(layout.memory_size, layout.input_dim, layout.num_outputs,
                             config.embed_size)
        self.baseline = nn.Linear(layout.size, 1)
        generator = torch.Generator().manual_seed(seed + 1)
        initialize(self.net, generator)
        initialize(self.baseline, generator)
        self.net.eval()
        self.policy_adam = torch.optim.Adam(self.net.parameters(), lr=config.pg_lr)
        self.baseline_adam = torch.optim.Adam(self.baseline.parameters(), lr=config.pg_lr)
        self.generator = torch.Generator().manual_seed(seed + 2)
        self.statistics = PaperStatistics(self.net, config, num_slots, layout.size, seed + 3)
        self.window = StepWindow(config.agent_window, {
            "state": ((num_slots, layout.size), torch.float32),
            "noise": ((num_slots, layout.memory_size), torch.float32),
            "reward": ((num_slots,), torch.float32),
            "start": ((num_slots,), torch.bool),  # the reward's step begins a sequence
            "valid": ((num_slots,), torch.bool),  # the reward's step is live
            "state_valid": ((num_slots,), torch.bool)})
        self.updates = 0
        self.folded = FoldedNet(self.net, layout)  # pre_f in NumPy for acting
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._last_observed: tuple[np.ndarray, np.ndarray] | None = None

    def start_epoch(self, epoch: int) -> None:
        """Nothing changes per epoch: pg_lr and pg_sigma stay constant."""

    # -- acting ------------------------------------------------------------------------
    def act(self, observation: np.ndarray) -> np.ndarray:
        """The mean write sigmoid(pre_f(s)), (B, M) (evaluation, prediction)."""
        return sigmoid(self.folded.pre(observation))

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """A sampled write sigmoid(pre_f(s) + sigma xi), (B, M) (training)."""
        noise = torch.randn((observation.shape[0], self.layout.memory_size),
                            generator=self.generator).numpy()
        known = self._last_observed is not None and self._last_observed[0] is observation
        state_valid = self._last_observed[1] if known else np.zeros(observation.shape[0], bool)
        self._pending = (observation, noise, state_valid)  # a reset's state: validity unknown
        return sigmoid(self.folded.pre(observation) + self.config.pg_sigma * noise)

    # -- learning ----------------------------------------------------------------------
    def observe(self, observation: np.ndarray, reward: np.ndarray, info: dict) -> dict | None:
        """Store the transition that ends in ``observation``; update when the window is full."""
        if self._pending is not None:
            state, noise, state_valid = self._pending
            self.window.push(state=state, noise=noise, reward=reward, start=info["sequence_start"],
                             valid=info["valid"], state_valid=state_valid)
            self._pending = None
        self._last_observed = (observation, np.asarray(info["valid"], dtype=bool))
        if self.statistics.observe(observation, self._last_observed[1]):
            self.folded.stale()
        if not self.window.full:
            return None
        stats = self.learn()
        self.window.clear()
        return stats

    def returns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(G (W, B), complete (W, B) bool): returns to the end of each write's sequence."""
        reward, valid = self.window["reward"], self.window["valid"]
        same_sequence = valid & ~self.window["start"] & self.window["state_valid"]  # t+1 goes on t's
        total = torch.zeros_like(reward)
        complete = torch.zeros_like(valid)
        running = torch.zeros(reward.shape[1])
        done = torch.zeros(reward.shape[1], dtype=torch.bool)  # a later sequence end is seen
        for t in range(reward.shape[0] - 1, -1, -1):  # W batched steps, once per update
            if t + 1 < reward.shape[0]:
                carry = same_sequence[t + 1]
                running = torch.where(carry, running, torch.zeros(()))
                done = torch.where(carry, done, torch.ones((), dtype=torch.bool))
            running = reward[t] + self.config.gamma * running
            total[t], complete[t] = running, done
        return total, complete

    def learn(self) -> dict:
        """Fit the baseline, then ``memory_train_iterations`` clipped policy-gradient steps."""
        cfg, dim = self.config, self.layout.size
        total, complete = self.returns()
        usable = complete & self.window["valid"] & self.window["state_valid"]
        if not cfg.carry_memory:  # the env replaces the write that starts a sequence
            usable &= ~self.window["start"]
        usable = usable.reshape(-1)
        states = self.window["state"].reshape(-1, dim)
        stats = {"memory_loss": float("nan")}
        noise = self.window["noise"].reshape(-1, self.layout.memory_size)
        if int(usable.sum()) >= 2:
            stats = self._update(states[usable], noise[usable], total.reshape(-1)[usable])
        self.updates += 1
        self.folded.stale()
        return stats

    def _update(self, states: torch.Tensor, noise: torch.Tensor, target: torch.Tensor) -> dict:
        cfg = self.config
        value = self.baseline(states).squeeze(1)
        value_loss = nn.functional.mse_loss(value, target)
        self.baseline_adam.zero_grad(set_to_none=True)
        value_loss.backward()
        nn.utils.clip_grad_norm_(self.baseline.parameters(), GRADIENT_CLIP)
        self.baseline_adam.step()
        advantage = target - value.detach()
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        with torch.no_grad():
            pre_old = pre_activation(self.net, states)
        for _ in range(cfg.memory_train_iterations):
            shift = (pre_activation(self.net, states) - pre_old) / cfg.pg_sigma  # (R, M)
            log_ratio = 0.5 * noise ** 2 - 0.5 * (noise - shift) ** 2  # per unit
            ratio = log_ratio.exp()
            clipped = ratio.clamp(1 - cfg.pg_clip, 1 + cfg.pg_clip)
            gain = torch.minimum(ratio * advantage[:, None], clipped * advantage[:, None])
            loss = -gain.sum(1).mean()
            if not bool(torch.isfinite(loss)):
                raise_non_finite("memory-net", f"at policy update {self.updates + 1}",
                                 "the clipped surrogate", self.net)
            self.policy_adam.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), GRADIENT_CLIP)
            self.policy_adam.step()
        return {"memory_loss": float(value_loss.detach())}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "baseline": self.baseline.state_dict(),
                "policy_adam": self.policy_adam.state_dict(),
                "baseline_adam": self.baseline_adam.state_dict(),
                "generator": self.generator.get_state(), "window": self.window.state_dict(),
                "statistics": self.statistics.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.baseline.load_state_dict(state["baseline"])
        self.policy_adam.load_state_dict(state["policy_adam"])
        self.baseline_adam.load_state_dict(state["baseline_adam"])
        self.generator.set_state(state["generator"])
        self.window.load_state_dict(state["window"])
        self.statistics.load_state_dict(state["statistics"])
        self.updates = int(state["updates"])
        self.folded.stale()
