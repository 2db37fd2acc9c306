"""Evolution strategies on the memory-net's weights: the env's reward alone trains f.

No gradient passes through A: each generation the agent tries P perturbed memory-nets side by
side, one per group of the env's B slots, and moves the mean weights toward those whose slots
earned more reward.

Shapes: B slots, state s (B, D), body input x (B, D') (D' = D without embedding), memory M.
Searched weights theta of f's last block, pre = (W x + b - mu) * gamma / sqrt(var + eps) + beta:
    W (M, D'), gamma (M,), beta (M,)   (b is cancelled by batch norm's mean; not searched)

One generation = ``agent_window`` env steps:
    draw eps_k ~ N(0, I) over theta for k < P/2   (P = es_population, even, divides B)
    member i acts with theta + sigma * sign_i * eps_{i // 2}, sign_i = +1 (i even), -1 (i odd)
    slot b belongs to member b % P                (antithetic pairs, B / P slots per member)
    fitness_i = mean of the env's reward (-clamp(A's loss)) over member i's live slot-steps
    u_i = centred rank of fitness_i, in [-0.5, 0.5]          (rank shaping)
    g = sum_i u_i * sign_i * eps_{i // 2} / (P * sigma)     (ascent direction for theta)
    theta <- Adam(-g), lr = es_lr
f's batch-norm running statistics follow the memories on the paper's schedule, as in the
``frozen_weights`` control (``memory_body.PaperStatistics``: every settle + history steps).

A keeps training on every slot (the env does it). ``explore`` acts with the population;
``act``, used for evaluation and prediction, acts with the mean weights. With an embedding
(sentence tasks) the embedding blocks keep their initial weights (their statistics follow).
"""

from __future__ import annotations

import numpy as np
import torch

from mannrl_gym.agents.memory_body import (PaperStatistics, embed_numpy, embedding_affines,
                                           seeded_net, sigmoid)
from mannrl_gym.agents.window import StepWindow
from mannrl_gym.config import Config
from mannrl_gym.envs.core import ObservationLayout
from mannrl_gym.networks import fold_batch_norm
from mannrl_gym.numerics import raise_non_finite
from mannrl_gym.threads import split_matmul


class EvolutionStrategiesAgent:
    """Memory-net f trained by antithetic, rank-shaped evolution strategies on the reward.

    Args:
        layout: the env's observation layout (state size D, memory size M).
        config: es_population, es_sigma, es_lr, agent_window, embed_size; settle, history,
            memory_train_iterations, memory_samples (the statistics' schedule).
        num_slots: B, the env's number of slots (a multiple of es_population).
        seed: draws f's initial weights and every perturbation.
    """

    def __init__(self, layout: ObservationLayout, config: Config, num_slots: int, seed: int) -> None:
        self.config, self.layout, self.num_slots = config, layout, num_slots
        self.population = config.es_population
        if self.population > num_slots or num_slots % self.population:
            raise ValueError(f"es_population={self.population} must divide the env's "
                             f"{num_slots} slots (batch_size)")
        self.net, self.searched = seeded_net(layout, config, seed)  # theta: W, gamma, beta
        self.adam = torch.optim.Adam(self.searched, lr=config.es_lr)
        self.generator = torch.Generator().manual_seed(seed + 2)
        member = np.arange(num_slots) % self.population
        self.slot_sign = np.where(member % 2 == 0, 1.0, -1.0).astype(np.float32)  # (B,)
        self.slot_pair = member // 2  # (B,) which noise direction a slot uses
        self.slot_member = member
        self.statistics = PaperStatistics(self.net, config, num_slots, layout.size, seed + 3)
        self.window = StepWindow(config.agent_window, {
            "reward": ((num_slots,), torch.float32),
            "valid": ((num_slots,), torch.bool)})
        self.generations = 0
        self.noise = self._draw_noise()
        self._cache: dict | None = None

    def start_epoch(self, epoch: int) -> None:
        """Nothing changes per epoch: es_lr and es_sigma stay constant."""

    # -- acting ------------------------------------------------------------------------
    def act(self, observation: np.ndarray) -> np.ndarray:
        """Next memory (B, M) in [0, 1] from the mean weights (evaluation, prediction)."""
        cache = self._acting()
        x = embed_numpy(cache["embed"], self.layout, np.asarray(observation, dtype=np.float32))
        weight, bias = cache["folded"]
        return sigmoid(split_matmul(x, weight) + bias)

    def explore(self, observation: np.ndarray) -> np.ndarray:
        """Next memory (B, M): slot b acts with its member's perturbed weights (training)."""
        cache = self._acting()
        x = embed_numpy(cache["embed"], self.layout, np.asarray(observation, dtype=np.float32))
        sigma = self.config.es_sigma
        centred = x @ cache["weight_t"] + cache["shift"]  # W x + b - mu, (B, M)
        centred += sigma * np.einsum("bd,bmd->bm", x, cache["slot_dw"])
        return sigmoid(centred * (cache["gain"] + sigma * cache["slot_dgamma"]) * cache["inv_std"]
                       + cache["beta"] + sigma * cache["slot_dbeta"])

    @torch.no_grad()
    def _acting(self) -> dict:
        """NumPy copies of the mean weights and each slot's signed noise, rebuilt after updates."""
        if self._cache is None:
            linear, norm = self.net.body[0], self.net.body[1]
            d_weight, d_gamma, d_beta = (n.numpy() for n in self.noise)
            sign = self.slot_sign[:, None]
            self._cache = {
                "embed": embedding_affines(self.net),
                "folded": fold_batch_norm(linear, norm),
                "weight_t": linear.weight.detach().T.contiguous().numpy(),
                "shift": (linear.bias - norm.running_mean).numpy(),
                "inv_std": (1.0 / torch.sqrt(norm.running_var + norm.eps)).numpy(),
                "gain": norm.weight.detach().numpy().copy(), "beta": norm.bias.detach().numpy().copy(),
                "slot_dw": d_weight[self.slot_pair] * self.slot_sign[:, None, None],  # (B, M, D')
                "slot_dgamma": d_gamma[self.slot_pair] * sign, "slot_dbeta": d_beta[self.slot_pair] * sign}
        return self._cache

    def _draw_noise(self) -> list[torch.Tensor]:
        """One direction per antithetic pair: [(P/2, M, D'), (P/2, M), (P/2, M)]."""
        pairs = self.population // 2
        return [torch.randn((pairs, *p.shape), generator=self.generator) for p in self.searched]

    # -- learning ----------------------------------------------------------------------
    def observe(self, observation: np.ndarray, reward: np.ndarray, info: dict) -> dict | None:
        """Record the step's reward; at the end of a generation update theta. Returns the
        generation's statistics after an update, else None."""
        if self.statistics.observe(observation, info["valid"]):
            self._cache = None
        self.window.push(reward=reward, valid=info["valid"])
        if not self.window.full:
            return None
        stats = self.learn()
        self.window.clear()
        return stats

    def learn(self) -> dict:
        """One ES step from the window's rewards; then fresh noise."""
        reward, valid = self.window["reward"], self.window["valid"]
        members = torch.from_numpy(self.slot_member)
        per_member_sum = torch.zeros(self.population).index_add_(0, members, reward.sum(0))
        per_member_steps = torch.zeros(self.population).index_add_(0, members,
                                                                   valid.sum(0).float())
        fitness = per_member_sum / per_member_steps.clamp(min=1)  # mean reward per live step
        ranks = torch.empty(self.population)
        ranks[fitness.argsort()] = torch.arange(self.population, dtype=torch.float32)
        shaped = ranks / (self.population - 1) - 0.5  # (P,) in [-0.5, 0.5]
        pair_weight = shaped[0::2] - shaped[1::2]  # (P/2,): + member minus its - twin
        scale = 1.0 / (self.population * self.config.es_sigma)
        self.adam.zero_grad(set_to_none=True)
        for param, noise in zip(self.searched, self.noise):
            ascent = torch.tensordot(pair_weight, noise, dims=1) * scale
            param.grad = -ascent  # Adam minimises
        self.adam.step()
        if any(not bool(torch.isfinite(p).all()) for p in self.searched):
            raise_non_finite("memory-net", f"at ES generation {self.generations + 1}",
                             "a searched weight", self.net)
        self.generations += 1
        self.noise = self._draw_noise()
        self._cache = None
        return {"memory_loss": float(-fitness.mean()),  # mean clamped loss of the population
                "fitness_spread": float(fitness.std())}

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "adam": self.adam.state_dict(),
                "generator": self.generator.get_state(), "window": self.window.state_dict(),
                "statistics": self.statistics.state_dict(),
                "noise": [n.clone() for n in self.noise], "generations": self.generations}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.adam.load_state_dict(state["adam"])
        self.generator.set_state(state["generator"])
        self.window.load_state_dict(state["window"])
        self.statistics.load_state_dict(state["statistics"])
        self.noise = [n.clone() for n in state["noise"]]
        self.generations = int(state["generations"])
        self._cache = None
