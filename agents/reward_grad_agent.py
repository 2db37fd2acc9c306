"""The memory-net trained by the reward's gradient through A, one write at a time (no BPTT).

The env's reward is r_{t+1} = -clamp(L_{t+1}), L_{t+1} = A's cross-entropy on the step that
read the memory m_{t+1} = f(s_t) that f wrote. A is differentiable in its memory input, so
dL_{t+1}/dm_{t+1} (B, M) is known exactly; this agent carries it into f's weights through
the one write that made m_{t+1}, the previous memory m_t (part of s_t) held constant:
**no backpropagation through time**, nothing of the past stored but one (B, M, K) array.

Shapes: B slots, state s (B, D), body input x (B, D') (D' = D without embedding; the memory
is x's first M columns), memory M, K = D' + 2. f's last block,
    u = W x + b,  z = gamma * (u - mu) * rho + beta,  m' = sigmoid(z),  rho = 1 / sqrt(var + eps)
(batch norm in eval mode with its running statistics mu, var). Trained: W (M, D'), gamma (M,),
beta (M,) (b is cancelled by batch norm's mean, as in ``es``). Per slot and unit i:
    local_i     = [gamma_i rho_i x (D'), rho_i (u_i - mu_i), 1]       d z_i / d (W_i, gamma_i, beta_i)
    E_{t+1, i}  = sigmoid'(z_i) * (local_i + lambda * gamma_i rho_i W_ii * E_{t, i})
    grad        += sum_b  dL_{t+1}/dm_{t+1} (b, i) * E_{t+1} (b, i)    over the rows A read f's write
``lambda = reward_grad_trace``. With 0 (the default) E is exactly d m_{t+1} / d theta through
one write. With lambda > 0, E also follows each unit's own recurrence (the diagonal of
dm_{t+1}/dm_t; what RTRL's SnAp-1 / e-prop keep, forward in time), discounted by lambda:
still no backward pass through time. Every ``agent_window`` steps Adam (reward_grad_lr)
steps theta along the mean gradient per live row.

A's gradient is taken in eval mode (its running statistics; A's weights as the env's last
step left them), from the loss A is trained on (``double_softmax`` included); rows whose
loss exceeds ``memory_clamp`` get none (the reward is flat there). The env gives the agent
A through ``attach_learner`` (``experiments.MannRLExperiment`` calls it). A row learns only
when the memory A read is the one f wrote for it (not an idle slot's zeros, nor a memory
the env reset at a sequence or pass start); there its trace restarts.

f's batch-norm running statistics follow the memories on the paper's schedule
(``memory_body.PaperStatistics``), as in the ``frozen_weights`` control: the two differ only
by what the gradient does to f's weights. With an embedding (sentence tasks) the embedding
blocks keep their initial weights (their statistics follow).
"""

from __future__ import annotations

import numpy as np
import torch

from mannrl_gym.agents.memory_body import (PaperStatistics, embed_numpy, embedding_affines,
                                           seeded_net, sigmoid)
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.numerics import raise_non_finite
from mannrl_gym.supervised import ActionLearner


class RewardGradientAgent:
    """Memory-net f trained by the gradient of A's loss through the memory it wrote (one write,
    the previous memory held constant: no backpropagation through time).

    Args:
        layout: the env's observation layout (state size D, memory size M).
        config: reward_grad_lr, reward_grad_trace, agent_window, memory_clamp, embed_size;
            settle, history, memory_train_iterations, memory_samples (the statistics' schedule).
        num_slots: B, the env's number of slots.
        seed: draws f's initial weights and the statistics' sampling.
    """

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int, seed: int) -> None:
        self.config, self.layout, self.num_slots = config, layout, num_slots
        self.net, self.trained = seeded_net(layout, config, seed)  # theta: W, gamma, beta
        self.adam = torch.optim.Adam(self.trained, lr=config.reward_grad_lr)
        self.statistics = PaperStatistics(self.net, config, num_slots, layout.size, seed + 3)
        width = self.net.body[0].in_features  # D'
        self.trace = np.zeros((num_slots, layout.memory_size, width + 2), np.float32)  # E_t
        self.written = np.full((num_slots, layout.memory_size), -1.0, np.float32)  # f's last write
        self.gradient = np.zeros((layout.memory_size, width + 2), np.float64)  # summed over rows
        self.rows = 0  # live rows summed into ``gradient``
        self.loss_sum, self.live = 0.0, 0  # A's clamped loss (-reward) on the window's live rows
        self.steps = 0  # steps since the last update
        self.updates = 0
        self.learner: ActionLearner | None = None
        self._cache: dict | None = None

    def attach_learner(self, learner: ActionLearner) -> None:
        """The env's A (``learner.net``), whose loss's gradient in the memory trains f."""
        self.learner = learner

    def start_epoch(self, epoch: int) -> None:
        """Nothing changes per epoch: reward_grad_lr stays constant."""

    # -- acting ------------------------------------------------------------------------
    @torch.no_grad()
    def _acting(self) -> dict:
        """NumPy copies of f's last block in eval mode, rebuilt after updates and statistics."""
        if self._cache is None:
            linear, norm = self.net.body[0], self.net.body[1]
            weight = linear.weight.detach().numpy().copy()
            gain = norm.weight.detach().numpy().copy()
            rho = (1.0 / torch.sqrt(norm.running_var + norm.eps)).numpy()
            memory = np.arange(self.layout.memory_size)
            self._cache = {"embed": embedding_affines(self.net), "weight_t": weight.T.copy(),
                           "shift": (linear.bias - norm.running_mean).numpy(), "rho": rho,
                           "gain": gain, "beta": norm.bias.detach().numpy().copy(),
                           "self_loop": gain * rho * weight[memory, memory]}  # dz_i/dm_i (M,)
        return self._cache

    def _centred(self, observation: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        """(cache, body input x (B, D'), normalised pre-activation (u - mu) * rho (B, M))."""
        cache = self._acting()
        x = embed_numpy(cache["embed"], self.layout, np.asarray(observation, dtype=np.float32))
        return cache, x, (x @ cache["weight_t"] + cache["shift"]) * cache["rho"]

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Next memory (B, M) in [0, 1] for states (B, D): f in eval mode."""
        cache, _, normed = self._centred(observation)
        return sigmoid(normed * cache["gain"] + cache["beta"]).astype(np.float32, copy=False)

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """``act``, keeping the write's trace E_{t+1} (B, M, K) for the gradient to come."""
        cache, x, normed = self._centred(observation)
        memory = sigmoid(normed * cache["gain"] + cache["beta"]).astype(np.float32, copy=False)
        slope = memory * (1.0 - memory)  # sigmoid'(z), (B, M)
        local = np.empty_like(self.trace)
        np.multiply((cache["gain"] * cache["rho"])[None, :, None], x[:, None, :],
                    out=local[:, :, :-2])
        local[:, :, -2] = normed
        local[:, :, -1] = 1.0
        decay = self.config.reward_grad_trace
        if decay > 0:  # the previous trace, where the memory just read was f's own write
            own = (observation[:, self.layout.memory] == self.written).all(axis=1)
            local += (decay * cache["self_loop"])[None, :, None] * self.trace * own[:, None, None]
        local *= slope[:, :, None]
        self.trace, self.written = local, memory
        return memory

    # -- learning ----------------------------------------------------------------------
    def observe(self, observation: np.ndarray, reward: np.ndarray, info: dict) -> dict | None:
        """Add this step's gradient (rows that read f's last write); update every
        ``agent_window`` steps. Returns the update's statistics after an update, else None."""
        if self.learner is None:
            raise RuntimeError("reward_grad needs A: call attach_learner(env.learner) first "
                               "(experiments.MannRLExperiment does)")
        rows = info["valid"] & (observation[:, self.layout.memory] == self.written).all(axis=1)
        if rows.any():
            grad_memory = self._memory_gradient(observation[rows], info["target"][rows])
            self.gradient += np.einsum("bm,bmk->mk", grad_memory, self.trace[rows],
                                       dtype=np.float64)
            self.rows += int(rows.sum())
        self.loss_sum -= float(reward[info["valid"]].sum())
        self.live += int(info["valid"].sum())
        if self.statistics.observe(observation, info["valid"]):
            self._cache = None
        self.steps += 1
        if self.steps < self.config.agent_window:
            return None
        return self.learn()

    def _memory_gradient(self, state: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """dL/dm (R, M) of A's loss on R rows (states (R, D), targets (R,)), A in eval mode;
        zero on rows whose loss exceeds memory_clamp (the reward is flat there)."""
        loss, grad = self.learner.memory_gradient(state[:, self.layout.input],
                                                  state[:, self.layout.memory], targets)
        grad[loss > self.config.memory_clamp] = 0.0
        return grad

    def learn(self) -> dict:
        """One Adam step along the mean gradient per live row; then a fresh sum."""
        scale = 1.0 / max(1, self.rows)
        mean = torch.from_numpy((self.gradient * scale).astype(np.float32))
        self.adam.zero_grad(set_to_none=True)
        self.trained[0].grad = mean[:, :-2].contiguous()
        self.trained[1].grad = mean[:, -2].contiguous()
        self.trained[2].grad = mean[:, -1].contiguous()
        self.adam.step()
        if any(not bool(torch.isfinite(p).all()) for p in self.trained):
            raise_non_finite("memory-net", f"at update {self.updates + 1}", "a trained weight",
                             self.net)
        stats = {"memory_loss": self.loss_sum / max(1, self.live),  # what f minimises
                 "gradient_norm": float(mean.norm())}
        self.gradient[:] = 0.0
        self.rows = self.steps = self.live = 0
        self.loss_sum = 0.0
        self.updates += 1
        self._cache = None
        return stats

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "adam": self.adam.state_dict(),
                "statistics": self.statistics.state_dict(),
                "trace": torch.from_numpy(self.trace.copy()),
                "written": torch.from_numpy(self.written.copy()),
                "gradient": torch.from_numpy(self.gradient.copy()), "rows": self.rows,
                "steps": self.steps, "updates": self.updates, "loss_sum": self.loss_sum,
                "live": self.live}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.adam.load_state_dict(state["adam"])
        self.statistics.load_state_dict(state["statistics"])
        self.trace = state["trace"].numpy().copy()
        self.written = state["written"].numpy().copy()
        self.gradient = state["gradient"].numpy().copy()
        self.rows, self.steps = int(state["rows"]), int(state["steps"])
        self.updates = int(state["updates"])
        self.loss_sum, self.live = float(state["loss_sum"]), int(state["live"])
        self._cache = None
