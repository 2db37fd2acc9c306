"""The long runs of batched steps of a replicated pass, on a torch device (``device=cuda``).

A replicated pass (``ReplicatedExperiment.run_epoch``) is mostly "fast" steps: every slot of
every replica reads a sequence. ``DevicePass.run`` takes such a run of steps [first, last]
and does all of it on the device, with no host round trip per step:

* act: each replica's memory-net in eval mode, folded into one affine map, (K, B, D) @
  (K, D, M);
* the env's step: A's K networks trained by one batched step (``DeviceLearners``, the same
  arithmetic as ``StackedLearners.train_step``: batch-norm blocks, the output softmax and
  cross-entropy, per-replica gradient-norm clipping, Adam with each replica's step count);
* the replay: each replica's batch-state written into its row of (K, history + 1, B, D)
  buffers (row ``history`` takes the settle steps' writes and is never read);
* the memory-net updates (``DeviceMemoryNets``): replicas whose cycles are in the same phase
  update together, with the replay pairs drawn beforehand on the host from each replica's own
  generator (the same draws as the CPU run), batch statistics over each replica's live rows
  (masks, not filtering), autograd for the gradient, per-replica clipping and RMSprop.

On CUDA the stretch's first memory cycle runs eagerly (the warm-up), then one graph per
step of the cycle is captured (step i's replicas due for an update are those of phase
i % cycle) and replayed: one launch per step instead of a few hundred (``_capture``).

Before the run everything is copied to the device (``upload``), after it back into the
ordinary CPU objects (``download``), so the steps before and after (a pass's staggered start
and its tail), evaluation and checkpoints run the single-run code unchanged. Non-finite
values are looked for once, at the end of the run.

The CPU default (``device=cpu``) is the NumPy path, which matches single runs exactly; on a
device the arithmetic is the same but float rounding differs (``tests/test_device.py``
compares a pass on torch's CPU device with the NumPy pass).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Callable, Sequence

import numpy as np
import torch

from mannrl_gym.agents.mannrl_agent import MannRLAgent
from mannrl_gym.numerics import raise_non_finite
from mannrl_gym.supervised import (ADAM_EPS, BETA1, BETA2, BN_EPS, BN_MOMENTUM, ActionLearner,
                                   LearnerStorage)

# a run of fast steps shorter than this stays on the host (copying costs more than it saves)
MIN_DEVICE_STEPS = 64


def check_device(name: str) -> torch.device:
    """The torch device ``name`` names ('cuda', 'cuda:1', 'mps', 'cpu'); ValueError saying why
    when it is not usable here."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"'{name}' is not a torch device ({error})") from None
    if device.type == "cuda" and not torch.backends.cuda.is_built():
        raise ValueError(f"'{name}' asked for, but this torch ({torch.__version__}) is built "
                         f"without CUDA; install a CUDA build of torch (docs/replicas.md, "
                         f"'On a GPU')")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"'{name}' asked for, but torch finds no CUDA device here "
                         f"(torch.cuda.is_available() is False)")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"'{name}' asked for, but torch sees {torch.cuda.device_count()} "
                         f"CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"'{name}' asked for, but torch.backends.mps.is_available() is False")
    return device


def _param_slices(net: torch.nn.Module) -> dict[int, tuple[int, torch.Size]]:
    """id(parameter) -> (offset, shape) in the learner's flat parameter row, in bind order."""
    slices, offset = {}, 0
    for p in net.parameters():
        slices[id(p)] = (offset, p.shape)
        offset += p.numel()
    return slices


def raise_first_bad(bad: torch.Tensor, network: str, quantity: str,
                    nets: Sequence[torch.nn.Module]) -> None:
    """``raise_non_finite`` for the first replica flagged in ``bad`` (K,) bool, if any (one
    host read per stretch: the device does not stop at the step it happened)."""
    flagged = np.flatnonzero(bad.cpu().numpy())
    if flagged.size:
        k = int(flagged[0])
        raise_non_finite(network, f"of replica {k} during the device run", quantity, nets[k])


def _row_view(stack: torch.Tensor, offset: int, shape: torch.Size) -> torch.Tensor:
    """The (K, *shape) view of columns [offset, offset + numel) of a (K, N) stack."""
    return stack[:, offset:offset + shape.numel()].unflatten(1, shape)


class DeviceLearners:
    """K action networks (no input embedding) of one shape, their Adam state and batch-norm
    statistics on a device, and their batched training step. Shapes: features (K, B, F),
    memory (K, B, M), targets (K, B) int64."""

    def __init__(self, learners: Sequence[ActionLearner], storage: LearnerStorage,
                 device: torch.device) -> None:
        self.learners, self.storage, self.device = list(learners), storage, device
        first = self.learners[0]
        if first.embed is not None:
            raise ValueError("the device path does not support A's input embedding (embed_size)")
        self.double_softmax = first.double_softmax
        params = _param_slices(first.net)
        self._blocks = [tuple(params[id(p)] for p in (lin.weight, lin.bias, bn.weight, bn.bias))
                        for lin, bn in first.net.hidden_blocks]
        out = first.net.output_layer
        self._out = (params[id(out.weight)], params[id(out.bias)])
        # running statistics: each BN's (running_mean, running_var) in the float buffers' order
        floats = [b for b in first.net.buffers() if b.dtype != torch.int64]
        offsets, offset = {}, 0
        for b in floats:
            offsets[id(b)] = (offset, b.shape)
            offset += b.numel()
        self._statistics = [(offsets[id(bn.running_mean)], offsets[id(bn.running_var)])
                            for _, bn in first.net.hidden_blocks]

    def upload(self) -> None:
        to = self.device
        self.flat = self.storage.flat.to(to)
        self.exp_avg = self.storage.exp_avg.to(to)
        self.exp_avg_sq = self.storage.exp_avg_sq.to(to)
        self.statistics = self.storage.statistics.to(to)
        self.counts = self.storage.counts.to(to)
        self.steps = torch.tensor([[lr.steps] for lr in self.learners], dtype=torch.float64,
                                  device=to)
        self.lr = torch.tensor([[lr.lr] for lr in self.learners], device=to)
        self.clipping = torch.tensor([lr.clipping for lr in self.learners], device=to)
        self.trained = 0
        self.bad = torch.zeros(len(self.learners), dtype=torch.bool, device=to)

    def download(self) -> None:
        self.storage.flat.copy_(self.flat)
        self.storage.exp_avg.copy_(self.exp_avg)
        self.storage.exp_avg_sq.copy_(self.exp_avg_sq)
        self.storage.statistics.copy_(self.statistics)
        self.storage.counts.copy_(self.counts)
        for learner in self.learners:
            learner.steps += self.trained

    def check_finite(self) -> None:
        raise_first_bad(self.bad, "action network", "the gradient norm",
                        [learner.net for learner in self.learners])

    def train_step(self, features: torch.Tensor, memory: torch.Tensor,
                   targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of every replica; (probabilities (K, B, V), loss (K, B))."""
        flat, rows = self.flat, features.shape[1]
        hidden, caches = torch.cat([features, memory], dim=2), []
        for (w, b, gamma, beta), stats in zip(self._blocks, self._statistics):
            w, b, gamma, beta = (_row_view(flat, *part) for part in (w, b, gamma, beta))
            pre = torch.baddbmm(b.unsqueeze(1), hidden, w.transpose(1, 2))
            mean = pre.mean(dim=1, keepdim=True)
            centred = pre - mean
            var = (centred * centred).mean(dim=1, keepdim=True)  # biased, as batch norm
            inv_std = torch.rsqrt(var + BN_EPS)
            normed = centred * inv_std
            act = torch.addcmul(beta.unsqueeze(1), normed, gamma.unsqueeze(1))
            caches.append((hidden, normed, inv_std, act, w, gamma, mean, var, stats))
            hidden = torch.relu(act)
        w_out, b_out = (_row_view(flat, *part) for part in self._out)
        logits = torch.baddbmm(b_out.unsqueeze(1), hidden, w_out.transpose(1, 2))
        probs = torch.softmax(logits, dim=2)
        scores = probs if self.double_softmax else logits
        log_q = torch.log_softmax(scores, dim=2)
        index = targets.unsqueeze(2)
        loss = -log_q.gather(2, index).squeeze(2)
        d_scores = log_q.exp()
        d_scores.scatter_add_(2, index, torch.full_like(index, -1, dtype=d_scores.dtype))
        if self.double_softmax:  # through the first softmax
            d_scores = probs * (d_scores - (d_scores * probs).sum(dim=2, keepdim=True))
        grads = {self._out[0][0]: d_scores.transpose(1, 2) @ hidden,
                 self._out[1][0]: d_scores.sum(dim=1)}
        d_hidden = d_scores @ w_out
        for depth in range(len(caches) - 1, -1, -1):
            x, normed, inv_std, act, w, gamma, _, _, _ = caches[depth]
            parts = self._blocks[depth]
            d_act = d_hidden * (act > 0)
            grads[parts[2][0]] = (d_act * normed).sum(dim=1)
            grads[parts[3][0]] = d_act.sum(dim=1)
            d_normed = d_act * gamma.unsqueeze(1)
            d_pre = (d_normed - d_normed.mean(dim=1, keepdim=True)
                     - normed * (d_normed * normed).mean(dim=1, keepdim=True)) * inv_std
            grads[parts[0][0]] = d_pre.transpose(1, 2) @ x
            grads[parts[1][0]] = d_pre.sum(dim=1)
            if depth > 0:
                d_hidden = d_pre @ w
        grad = torch.cat([grads[offset].flatten(1) for offset in sorted(grads)], dim=1)
        # clip_grad_norm_ per replica, folding in the 1/B of the mean
        norms = torch.linalg.vector_norm(grad, dim=1) / rows
        self.bad |= ~torch.isfinite(norms)
        scale = torch.clamp(self.clipping / (norms + 1e-6), max=1.0) / rows
        grad *= scale.unsqueeze(1)
        self._adam(grad)
        for _, _, _, _, _, _, mean, var, stats in caches:  # batch norm's running averages
            (mean_at, shape), (var_at, _) = stats
            running_mean = self.statistics[:, mean_at:mean_at + shape.numel()]
            running_var = self.statistics[:, var_at:var_at + shape.numel()]
            running_mean.mul_(1 - BN_MOMENTUM).add_(mean.squeeze(1), alpha=BN_MOMENTUM)
            running_var.mul_(1 - BN_MOMENTUM).add_(var.squeeze(1),
                                                   alpha=BN_MOMENTUM * rows / (rows - 1))
        self.counts += 1
        self.trained += 1  # eager calls; ``DevicePass.run`` sets it for replayed graphs
        return probs, loss

    def _adam(self, grad: torch.Tensor) -> None:
        """torch.optim.Adam's step on every row, each with its own step count and lr."""
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - BETA1)
        self.exp_avg_sq.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
        step_size = (self.lr / (1 - BETA1 ** self.steps)).float()
        root = torch.sqrt(1 - BETA2 ** self.steps).float()
        denom = self.exp_avg_sq.sqrt().div_(root).add_(ADAM_EPS)
        self.flat.addcdiv_(self.exp_avg * step_size, denom, value=-1.0)


class DeviceMemoryNets:
    """K memory-nets f(s) = sigmoid(BN(W s + b)) (``MannRLAgent`` without embeddings), their
    RMSprop state and replays on a device; ``act`` and the paper's update of a group of
    replicas. Shapes: states (K, B, D), memories (K, B, M)."""

    def __init__(self, agents: Sequence[MannRLAgent], replays: Sequence[torch.Tensor],
                 device: torch.device) -> None:
        self.agents, self.replays, self.device = list(agents), replays, device
        first = self.agents[0]
        if first.net.embed_input is not None:
            raise ValueError("the device path does not support the memory-net's embeddings "
                             "(embed_size)")
        configs = [agent.config for agent in self.agents]
        for key in ("settle", "history", "memory_train_iterations", "memory_samples"):
            if len({getattr(c, key) for c in configs}) != 1:
                raise ValueError(f"on a device the replicas must share '{key}'")
        if any(c.memory_optimizer != "rmsprop" for c in configs):
            raise ValueError("the device path trains the memory-net with RMSprop only "
                             "(memory_optimizer: rmsprop)")
        cfg = configs[0]
        self.settle, self.history = cfg.settle, cfg.history
        self.iterations, self.samples = cfg.memory_train_iterations, cfg.memory_samples
        self.cycle = cfg.settle + cfg.history
        self.detach_target, self.carry_memory = cfg.detach_target, cfg.carry_memory
        self.learns, self.update_weights = first.learns, first.update_weights
        update = first._numpy_update
        self._sizes = [p.numel() for p in update.params]
        self._shapes = [p.shape for p in update.params]
        group = first.optimizer.param_groups[0]
        self.alpha, self.eps = group["alpha"], group["eps"]

    # -- copies ------------------------------------------------------------------------------
    def upload(self) -> None:
        to, agents = self.device, self.agents
        updates = [agent._numpy_update for agent in agents]
        self.flat = torch.stack([u._flat for u in updates]).to(to)  # (K, P_f)
        self.square = torch.stack([u._square_flat if u.rmsprop_state(create=False)
                                   else torch.zeros_like(u._square_flat) for u in updates]).to(to)
        self.running_mean = torch.stack([torch.from_numpy(u.running_mean) for u in updates]).to(to)
        self.running_var = torch.stack([torch.from_numpy(u.running_var) for u in updates]).to(to)
        self.batches = torch.tensor([int(u.batches_tracked[0]) for u in updates], device=to)
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
        memory, state = self.running_mean.shape[1], self._shapes[0][1]
        self.folded_w = torch.empty((len(agents), state, memory), device=to)
        self.folded_b = torch.empty((len(agents), 1, memory), device=to)
        self.fold()

    def download(self, steps: int) -> None:
        flat, square = self.flat.cpu(), self.square.cpu()
        running_mean, running_var = self.running_mean.cpu(), self.running_var.cpu()
        batches, optimizer_steps = self.batches.cpu().numpy(), self.optimizer_steps.cpu().numpy()
        for k, agent in enumerate(self.agents):
            update = agent._numpy_update
            update._flat.copy_(flat[k])
            update.running_mean[:] = running_mean[k].numpy()
            update.running_var[:] = running_var[k].numpy()
            update.batches_tracked[0] = batches[k]
            if optimizer_steps[k]:
                update.rmsprop_state(create=True)
                update._square_flat.copy_(square[k])
                update.count_steps(int(optimizer_steps[k]))
            agent.updates += int(self.update_count[k])
            phase = int((self.phase0[k] + steps) % self.cycle)
            agent.cycle.step_in_cycle = phase
            agent.replay.size = max(0, phase - self.settle)
            agent._acting = None
        for stack, mine in zip(self.replays, (self.states, self.rewards, self.usable, self.valid)):
            stack.copy_(mine[:, :self.history])

    def check_finite(self) -> None:
        raise_first_bad(self.bad, "memory-net", "the SmoothL1 loss",
                        [agent.net for agent in self.agents])

    # -- the network ---------------------------------------------------------------------------
    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """(W (R, M, D), b (R, M), gamma (R, M), beta (R, M)) of flat rows (R, P_f)."""
        views, offset = [], 0
        for size, shape in zip(self._sizes, self._shapes):
            views.append(flat[:, offset:offset + size].unflatten(1, shape))
            offset += size
        return views

    def fold(self) -> None:
        """Each f in eval mode as one affine map: (W' (K, D, M), b' (K, 1, M)), written into
        the same buffers each time (a captured graph reads them)."""
        w, b, gamma, beta = self._views(self.flat)
        scale = gamma * torch.rsqrt(self.running_var + BN_EPS)
        self.folded_w.copy_((w * scale.unsqueeze(2)).transpose(1, 2))
        self.folded_b.copy_(((b - self.running_mean) * scale + beta).unsqueeze(1))

    def act(self, states: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.baddbmm(self.folded_b, states, self.folded_w))

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
            pairs = self.states[members.view(group, 1, 1), both].flatten(2, 3)  # (G, 2, R, D)
            live = (self.valid[rows, k] & self.valid[rows, k + 1]).flatten(1)  # (G, R)
            reward = self.rewards[rows, k + 1].flatten(1)
            usable = self.usable[rows, k + 1].flatten(1) & live
            live_rows = live.sum(dim=1)
            usable_rows = usable.sum(dim=1)
            ok = (live_rows >= 2) & (usable_rows > 0)  # batch norm needs 2 rows
            mask = live.to(pairs.dtype).view(group, 1, -1, 1)
            count = live_rows.clamp(min=2).to(pairs.dtype).view(group, 1, 1, 1)
            flat = self.flat[members].requires_grad_(self.update_weights)
            with torch.set_grad_enabled(self.update_weights):
                w, b, g, beta = self._views(flat)
                pre = torch.matmul(pairs, w.transpose(1, 2).unsqueeze(1)) + b.view(group, 1, 1, -1)
                mean = (pre * mask).sum(dim=2, keepdim=True) / count
                centred = pre - mean
                var = (centred * centred * mask).sum(dim=2, keepdim=True) / count
                normed = centred * torch.rsqrt(var + BN_EPS)
                out = torch.sigmoid(normed * g.view(group, 1, 1, -1) + beta.view(group, 1, 1, -1))
                memory, next_memory = out[:, 0], out[:, 1]
                if self.detach_target:
                    next_memory = next_memory.detach()
                diff = memory - (next_memory * gamma + reward.unsqueeze(2))
                size = diff.abs()
                per_row = torch.where(size < 1.0, 0.5 * diff * diff, size - 0.5).sum(dim=2)
                weight = usable.to(per_row.dtype) / (usable_rows.clamp(min=1)
                                                     * diff.shape[2]).unsqueeze(1)
                loss = (per_row * weight).sum(dim=1)  # (G,)
            if self.update_weights:
                (grad,) = torch.autograd.grad(loss.sum(), flat)
                flat = flat.detach()
                self._rmsprop(members, flat, grad, ok)
            loss = loss.detach()
            self.bad[members] |= ok & ~torch.isfinite(loss)
            losses += torch.where(ok, loss, torch.zeros_like(loss)).double()
            counted += ok
            # the running statistics move only for a replica whose round ran
            unbiased = live_rows.to(mean.dtype) / (live_rows.clamp(min=2) - 1)
            running_mean, running_var = self.running_mean[members], self.running_var[members]
            for branch in range(2):
                running_mean = torch.lerp(running_mean, mean[:, branch, 0], BN_MOMENTUM)
                running_var = (running_var * (1 - BN_MOMENTUM)
                               + var[:, branch, 0].detach() * (BN_MOMENTUM * unbiased.unsqueeze(1)))
            keep = ok.unsqueeze(1)
            self.running_mean[members] = torch.where(keep, running_mean.detach(),
                                                     self.running_mean[members])
            self.running_var[members] = torch.where(keep, running_var, self.running_var[members])
            self.batches[members] += 2 * ok
        # an update with no round that ran has a NaN loss, as on the CPU
        mean_loss = torch.where(counted > 0, losses / counted.clamp(min=1),
                                torch.full_like(losses, float("nan")))
        self.loss_sum[members] += mean_loss

    def _rmsprop(self, members: torch.Tensor, flat: torch.Tensor, grad: torch.Tensor,
                 ok: torch.Tensor) -> None:
        """Clip each replica's gradient by its norm, then plain RMSprop (torch's defaults)."""
        norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
        grad = grad * torch.clamp(self.clipping[members].unsqueeze(1) / (norm + 1e-6), max=1.0)
        square = self.square[members] * self.alpha + (1 - self.alpha) * grad * grad
        step = grad / (square.sqrt() + self.eps) * self.lr[members].unsqueeze(1)
        keep = ok.unsqueeze(1)
        self.square[members] = torch.where(keep, square, self.square[members])
        self.flat[members] = torch.where(keep, flat - step, flat)
        self.optimizer_steps[members] += ok


class DevicePass:
    """Runs stretches of fast steps of a ``ReplicatedVectorEnv`` + ``ReplicatedAgents`` pass
    on ``device``; see the module's docstring."""

    def __init__(self, env, agents, device: torch.device) -> None:
        self.env, self.agents, self.device = env, agents, device
        self.learners = DeviceLearners(env.learners.learners, env.learners.storage, device)
        self.memory_nets = (DeviceMemoryNets(agents.agents, agents._replay_stacks, device)
                            if agents.memory_agents else None)
        tables = torch.from_numpy(np.ascontiguousarray(env._tables))
        self.tables = tables.to(device)
        self.clamp = torch.from_numpy(env._clamp).to(device)  # (K, 1)
        self.replica_index = torch.arange(env.num_replicas, device=device)
        self.graphs = True  # on CUDA, replay captured graphs (see ``run``)
        self.steps_run = 0  # steps run on the device so far (all passes)
        self.seconds = 0.0  # wall time of those steps, copies in and out included

    def stretches(self) -> list[tuple[int, int]]:
        """The runs [first, last] of fast steps (>= MIN_DEVICE_STEPS) of the current pass."""
        fast = np.asarray(self.env._fast, bool).copy()
        fast[0] = False  # step 0 is the reset
        edges = np.flatnonzero(np.diff(np.concatenate([[0], fast.astype(np.int8), [0]])))
        return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])
                if b - a >= MIN_DEVICE_STEPS]

    def run(self, observation: np.ndarray, first: int, last: int,
            tick: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Steps ``first`` .. ``last`` of the pass, from ``observation`` (K * B, D) of step
        first - 1; (the observation of step ``last``, loss summed over each replica's rows
        (K,)). Leaves the env at step ``last``.

        The first cycle of steps runs eagerly; on CUDA the rest replays one captured graph
        per step of the cycle (``graphs``), else runs eagerly too."""
        tic = time.perf_counter()
        env, to = self.env, self.device
        replicas, slots = env.num_replicas, env.slots
        steps = last - first + 1
        rows = env._rows
        # every tensor a step reads or writes lives through the stretch (a graph replays it)
        self._inputs, self._targets, self._starts = (
            torch.tensor(rows[name][first:last + 1], device=to)
            for name in ("inputs", "targets", "start"))
        self._start_memory = self._has_start = None
        if env._start_memory is not None:  # carry_memory=False: new sequences start from it
            self._start_memory = torch.from_numpy(env._start_memory).to(to)  # (K, 1, M)
            self._has_start = torch.from_numpy(env._has_start).to(to).view(replicas, 1, 1)
        memory_nets = self.memory_nets
        learning = memory_nets is not None and memory_nets.learns
        self.learners.upload()
        groups: dict[int, tuple] = {}
        if memory_nets is not None:
            memory_nets.upload()
            for offset, (members, drawn) in (memory_nets.draw_samples(steps) if learning
                                             else {}).items():
                groups[offset] = (members, drawn, torch.zeros(1, dtype=torch.int64, device=to))
        self._learning = learning
        self._state = torch.from_numpy(observation).to(to).view(replicas, slots, -1).clone()
        self._loss_sum = torch.zeros(replicas, dtype=torch.float64, device=to)
        self._cursor = torch.zeros(1, dtype=torch.int64, device=to)
        cycle = memory_nets.cycle if memory_nets is not None else 1
        graphs = None
        eager = steps
        if self.graphs and to.type == "cuda" and steps >= 3 * cycle:
            eager = cycle  # one whole cycle (every group's update) warms up on a side stream
        side = torch.cuda.Stream(to) if eager < steps else None
        if side is not None:  # after the copies in
            side.wait_stream(torch.cuda.current_stream(to))
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            for i in range(eager):
                self._step(groups.get(i % cycle))
                if tick is not None and i % 512 == 511:
                    tick(512)
        if side is not None:
            torch.cuda.current_stream(to).wait_stream(side)
            graphs = self._capture(groups, cycle, side)
        if graphs is None:
            for i in range(eager, steps):
                self._step(groups.get(i % cycle))
                if tick is not None and i % 512 == 511:
                    tick(512)
        else:
            for i in range(eager, steps):
                graphs[i % cycle].replay()
                if tick is not None and i % 512 == 511:
                    tick(512)
        observation = self._state.reshape(replicas * slots, -1).cpu().numpy()
        self.learners.trained = steps
        self.learners.download()
        self.learners.check_finite()
        if memory_nets is not None:
            memory_nets.download(steps if learning else 0)
            memory_nets.check_finite()
        env._t = last
        self.steps_run += steps
        self.seconds += time.perf_counter() - tic
        return observation, self._loss_sum.cpu().numpy()

    def _capture(self, groups: dict[int, tuple], cycle: int,
                 stream: torch.cuda.Stream) -> list | None:
        """One CUDA graph per step of the memory cycle (step i replays graph i % cycle: its
        phase's group updates), captured on ``stream`` (the warm-up's) into one memory pool
        (they replay in the order captured); None, after a warning, if capturing fails
        (eager goes on: a capture only records, so nothing has changed)."""
        to = self.device
        try:
            torch.cuda.synchronize(to)
            pool = torch.cuda.graph_pool_handle()
            graphs = []
            with torch.cuda.stream(stream):
                for offset in range(cycle):
                    graph = torch.cuda.CUDAGraph()
                    graph.capture_begin(pool=pool)
                    try:
                        self._step(groups.get(offset))
                    finally:
                        graph.capture_end()
                    graphs.append(graph)
            torch.cuda.current_stream(to).wait_stream(stream)
            return graphs
        except Exception as error:  # noqa: BLE001 (an op that cannot be captured here)
            warnings.warn(f"CUDA graph capture failed, stepping eagerly from now on: {error}")
            self.graphs = False
            return None

    def _step(self, group: tuple | None) -> None:
        """One step of every replica at ``self._cursor``, then the cursor moves on; ``group``
        (members, drawn, done): the replicas whose memory update falls on this step."""
        env, cursor = self.env, self._cursor
        inputs = self._inputs.index_select(0, cursor).squeeze(0)  # (K, B)
        targets = self._targets.index_select(0, cursor).squeeze(0)
        starts = self._starts.index_select(0, cursor).squeeze(0)
        memory_nets = self.memory_nets
        if memory_nets is None:
            memory = torch.zeros((env.num_replicas, env.slots, env.layout.memory_size),
                                 device=self.device)
        else:
            memory = memory_nets.act(self._state)
        if self._start_memory is not None:
            memory = torch.where(starts.unsqueeze(2) & self._has_start, self._start_memory,
                                 memory)
        features = (self.tables[inputs] if self.tables.dim() == 2
                    else self.tables[self.replica_index.view(-1, 1), inputs])
        probs, loss = self.learners.train_step(features, memory, targets)
        reward = -torch.minimum(loss, self.clamp)
        self._state.copy_(torch.cat([memory, features, probs], dim=2))
        self._loss_sum += loss.sum(dim=1)
        if self._learning:
            usable = torch.ones_like(starts) if memory_nets.carry_memory else ~starts
            memory_nets.record(self._state, reward, usable)
            if group is not None:
                members, drawn, done = group
                memory_nets.update(members, drawn.index_select(0, done).squeeze(0))
                done += 1
                memory_nets.fold()
        cursor += 1

    def memory_losses(self) -> tuple[np.ndarray, np.ndarray]:
        """(sum of the per-update mean losses (K,), updates (K,)) of the last ``run``."""
        nets = self.memory_nets
        if nets is None or not nets.learns:
            replicas = self.env.num_replicas
            return np.zeros(replicas), np.zeros(replicas, np.int64)
        return nets.loss_sum.cpu().numpy(), nets.update_count.copy()
