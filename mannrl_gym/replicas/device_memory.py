"""K memory-nets of one replicated run on a torch device: act, the replay and the paper's
update of the replicas due together (``device=cuda``; see ``mannrl_gym.replicas.device``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from mannrl_gym.agents.mannrl_agent import MannRLAgent
from mannrl_gym.agents.memory_update import (clip_rmsprop_torch, forward_torch, loss_torch,
                                             memory_blocks, running_statistics_torch)
from mannrl_gym.networks import BN_EPS, BN_MOMENTUM
from mannrl_gym.numerics import raise_first_bad
from mannrl_gym.replicas.spec import device_refusal


class DeviceMemoryNets:
    """K memory-nets f (``MannRLAgent``: sigmoid(BN(W s + b)), the input and output parts of
    s embedded first where f has embeddings), their RMSprop state and replays on a device;
    ``act`` and the paper's update of a group of replicas. Shapes: states (K, B, D),
    memories (K, B, M)."""

    def __init__(self, agents: Sequence[MannRLAgent], replays: Sequence[torch.Tensor],
                 device: torch.device) -> None:
        self.agents, self.replays, self.device = list(agents), replays, device
        first = self.agents[0]
        configs = [agent.config for agent in self.agents]
        refusal = device_refusal(configs[0].memory_optimizer)
        if refusal is not None:
            raise ValueError(refusal)
        for key in ("settle", "history", "memory_train_iterations", "memory_samples"):
            if len({getattr(c, key) for c in configs}) != 1:
                raise ValueError(f"on a device the replicas must share '{key}'")
        cfg = configs[0]
        self.settle, self.history = cfg.settle, cfg.history
        self.iterations, self.samples = cfg.memory_train_iterations, cfg.memory_samples
        self.cycle = cfg.settle + cfg.history
        self.detach_target, self.carry_memory = cfg.detach_target, cfg.carry_memory
        self.learns, self.update_weights = first.learns, first.update_weights
        self.split = first.net.split_sizes if first.net.embed_input is not None else None
        # (size, shape) of each parameter of each linear + BN block, in parameter order
        self._blocks = [[(p.numel(), p.shape) for p in block.parameters()]
                        for block in memory_blocks(first.net)]
        group = first.optimizer.param_groups[0]
        self.alpha, self.eps = group["alpha"], group["eps"]

    # -- copies ------------------------------------------------------------------------------
    def upload(self) -> None:
        to, agents = self.device, self.agents
        params = [list(agent.net.parameters()) for agent in agents]
        self.flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in row])
                                 for row in params]).to(to)  # (K, P_f)
        squares = []
        for agent, row in zip(agents, params):  # RMSprop's square averages (zeros before any)
            state = agent.optimizer.state
            squares.append(torch.cat([state[p]["square_avg"].reshape(-1) if state.get(p)
                                      else torch.zeros(p.numel()) for p in row]))
        self.square = torch.stack(squares).to(to)
        norms = [[block[1] for block in memory_blocks(agent.net)] for agent in agents]
        self.running = [(torch.stack([row[layer].running_mean for row in norms]).to(to),
                         torch.stack([row[layer].running_var for row in norms]).to(to))
                        for layer in range(len(self._blocks))]  # each BN's (K, O) statistics
        self.batches = torch.tensor([[int(n.num_batches_tracked) for n in row] for row in norms],
                                    device=to)  # (K, layers)
        self.lr = torch.tensor([a.optimizer.param_groups[0]["lr"] for a in agents], device=to)
        self.clipping = torch.tensor([a.config.memory_clipping for a in agents], device=to)
        self.gamma = torch.tensor([a.config.gamma for a in agents], device=to)
        self.states, self.rewards, self.usable, self.valid = (
            torch.cat([stack, stack[:, :1]], dim=1).to(to) for stack in self.replays)
        self.phase = torch.tensor([a.cycle.step_in_cycle for a in agents], device=to)
        self.phase0 = np.array([a.cycle.step_in_cycle for a in agents])
        self.replica_index = torch.arange(len(agents), device=to)
        self.optimizer_steps = torch.zeros(len(agents), dtype=torch.int64, device=to)
        self.loss_sum = torch.zeros(len(agents), dtype=torch.float64, device=to)
        self.update_count = np.zeros(len(agents), dtype=np.int64)
        self.bad = torch.zeros(len(agents), dtype=torch.bool, device=to)
        self.folded = [(torch.empty((len(agents), shapes[0][1][1], shapes[0][1][0]), device=to),
                        torch.empty((len(agents), 1, shapes[0][1][0]), device=to))
                       for shapes in self._blocks]  # each block's (W' (K, I, O), b' (K, 1, O))
        self.fold()

    def download(self, steps: int) -> None:
        flat, square = self.flat.cpu(), self.square.cpu()
        running = [(mean.cpu(), var.cpu()) for mean, var in self.running]
        batches, optimizer_steps = self.batches.cpu(), self.optimizer_steps.cpu().numpy()
        for k, agent in enumerate(self.agents):
            state, offset = agent.optimizer.state, 0
            with torch.no_grad():
                for p in agent.net.parameters():
                    p.copy_(flat[k, offset:offset + p.numel()].view_as(p))
                    if optimizer_steps[k]:  # RMSprop's state, created as torch's first step would
                        if not state.get(p):
                            state[p] = {"step": torch.tensor(0.0),
                                        "square_avg": torch.zeros_like(p)}
                        state[p]["square_avg"].copy_(square[k, offset:offset + p.numel()]
                                                     .view_as(p))
                        state[p]["step"] += int(optimizer_steps[k])
                    offset += p.numel()
                for layer, block in enumerate(memory_blocks(agent.net)):
                    norm = block[1]
                    norm.running_mean.copy_(running[layer][0][k])
                    norm.running_var.copy_(running[layer][1][k])
                    norm.num_batches_tracked.fill_(int(batches[k, layer]))
            agent.took_updates(int(self.update_count[k]),
                               int((self.phase0[k] + steps) % self.cycle))
        for stack, mine in zip(self.replays, (self.states, self.rewards, self.usable, self.valid)):
            stack.copy_(mine[:, :self.history])

    def check_finite(self) -> None:
        raise_first_bad(self.bad, "memory-net", "the SmoothL1 loss",
                        [agent.net for agent in self.agents])

    # -- the network ---------------------------------------------------------------------------
    def _views(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Each block's (W (R, O, I), b (R, O), gamma (R, O), beta (R, O)) of flat rows
        (R, P_f), in ``memory_blocks``' order."""
        blocks, offset = [], 0
        for shapes in self._blocks:
            views = []
            for size, shape in shapes:
                views.append(flat[:, offset:offset + size].unflatten(1, shape))
                offset += size
            blocks.append(tuple(views))
        return blocks

    def fold(self) -> None:
        """Each f in eval mode as affine maps: per block (W' (K, I, O), b' (K, 1, O)), written
        into the same buffers each time (a captured graph reads them)."""
        for (w, b, gamma, beta), (mean, var), (folded_w, folded_b) in zip(
                self._views(self.flat), self.running, self.folded):
            scale = gamma * torch.rsqrt(var + BN_EPS)
            folded_w.copy_((w * scale.unsqueeze(2)).transpose(1, 2))
            folded_b.copy_(((b - mean) * scale + beta).unsqueeze(1))

    def act(self, states: torch.Tensor) -> torch.Tensor:
        """f in eval mode: states (K, B, D) -> memories (K, B, M)."""
        if self.split is not None:
            (w_in, b_in), (w_out, b_out) = self.folded[:2]
            memory, features, output = states.split(list(self.split), dim=2)
            states = torch.cat([memory, torch.relu(torch.baddbmm(b_in, features, w_in)),
                                torch.relu(torch.baddbmm(b_out, output, w_out))], dim=2)
        weight, bias = self.folded[-1]
        return torch.sigmoid(torch.baddbmm(bias, states, weight))

    # -- the replay ----------------------------------------------------------------------------
    def record(self, states: torch.Tensor, rewards: torch.Tensor, usable: torch.Tensor) -> None:
        """Count one step of every replica's cycle, keeping its batch-state after the settle
        steps (row ``history``, never read, takes the settle steps' writes)."""
        row = torch.where(self.phase >= self.settle, self.phase - self.settle,
                          torch.full_like(self.phase, self.history))
        self.states[self.replica_index, row] = states
        self.rewards[self.replica_index, row] = rewards
        self.usable[self.replica_index, row] = usable
        self.valid[self.replica_index, row] = torch.ones_like(usable)  # a fast step: all live
        self.phase.add_(1).remainder_(self.cycle)

    def draw_samples(self, steps: int) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """The updates due in the next ``steps`` steps, grouped by cycle phase: for each step
        offset i at which some replicas are due, (their indices (G,), their sampled replay
        rows (updates, iterations, G, samples) drawn now, in order, from each replica's own
        generator: the draws the CPU run makes)."""
        groups: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        first_due = (self.cycle - 1 - self.phase0) % self.cycle  # step offset of the 1st update
        for offset in np.unique(first_due):
            if offset >= steps:
                continue
            members = np.flatnonzero(first_due == offset)
            updates = len(range(offset, steps, self.cycle))
            drawn = torch.empty((updates, self.iterations, len(members), self.samples),
                                dtype=torch.int64)
            for j, k in enumerate(members):
                generator = self.agents[k].generator
                for u in range(updates):
                    for it in range(self.iterations):
                        drawn[u, it, j] = torch.randperm(self.history - 1,
                                                         generator=generator)[:self.samples]
            self.update_count[members] += updates
            groups[int(offset)] = (torch.as_tensor(members, device=self.device),
                                   drawn.to(self.device))
        return groups

    # -- the update ----------------------------------------------------------------------------
    def update(self, members: torch.Tensor, drawn: torch.Tensor) -> None:
        """One update of the replicas ``members`` (G,): ``iterations`` rounds on the pairs
        ``drawn`` (iterations, G, samples), as ``NumpyMemoryUpdate.iteration`` per replica."""
        group = members.shape[0]
        losses = torch.zeros(group, dtype=torch.float64, device=self.device)
        counted = torch.zeros(group, dtype=torch.int64, device=self.device)
        gamma, rows = self.gamma[members].view(group, 1, 1), members.view(group, 1)
        for it in range(self.iterations):
            k = drawn[it]  # (G, samples)
            both = torch.stack([k, k + 1], dim=1)  # (G, 2, samples)
            slots = self.states.shape[2]
            index = (both.unsqueeze(3) * slots  # (G, 2, R): rows of the replicas' states
                     + torch.arange(slots, device=self.device)).flatten(2)
            distinct = self.states[members].flatten(1, 2)  # (G, history * B, D)
            live = (self.valid[rows, k] & self.valid[rows, k + 1]).flatten(1)  # (G, R)
            reward = self.rewards[rows, k + 1].flatten(1)
            usable = self.usable[rows, k + 1].flatten(1) & live
            live_rows = live.sum(dim=1)
            usable_rows = usable.sum(dim=1)
            ok = (live_rows >= 2) & (usable_rows > 0)  # batch norm needs 2 rows
            flat = self.flat[members].requires_grad_(self.update_weights)
            with torch.set_grad_enabled(self.update_weights):
                out, statistics = forward_torch(self._views(flat), distinct, live, self.split,
                                                index)
                loss = loss_torch(out, reward, usable, gamma, self.detach_target)  # (G,)
            if self.update_weights:
                (grad,) = torch.autograd.grad(loss.sum(), flat)
                flat = flat.detach()
                self._rmsprop(members, flat, grad, ok)
            loss = loss.detach()
            self.bad[members] |= ok & ~torch.isfinite(loss)
            losses += torch.where(ok, loss, torch.zeros_like(loss)).double()
            counted += ok
            # the running statistics move only for a replica whose round ran
            keep = ok.unsqueeze(1)
            for (running_mean, running_var), batch in zip(self.running, statistics):
                mean, var = running_statistics_torch(
                    (running_mean[members], running_var[members]), batch, live_rows)
                running_mean[members] = torch.where(keep, mean, running_mean[members])
                running_var[members] = torch.where(keep, var, running_var[members])
            self.batches[members] += 2 * keep
        # an update with no round that ran has a NaN loss, as on the CPU
        mean_loss = torch.where(counted > 0, losses / counted.clamp(min=1),
                                torch.full_like(losses, float("nan")))
        self.loss_sum[members] += mean_loss

    def _rmsprop(self, members: torch.Tensor, flat: torch.Tensor, grad: torch.Tensor,
                 ok: torch.Tensor) -> None:
        """Clip each replica's gradient by its norm, then plain RMSprop (torch's defaults);
        only the replicas whose round ran (``ok``) change."""
        stepped, square = clip_rmsprop_torch(flat, grad, self.square[members], self.lr[members],
                                             self.clipping[members], self.alpha, self.eps)
        keep = ok.unsqueeze(1)
        self.square[members] = torch.where(keep, square, self.square[members])
        self.flat[members] = torch.where(keep, stepped, flat)
        self.optimizer_steps[members] += ok
