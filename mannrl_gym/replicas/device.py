"""The long runs of batched steps of a replicated pass, on a torch device (``device=cuda``).

A replicated pass (``ReplicatedExperiment.run_epoch``) is mostly "fast" steps: every slot of
every replica reads a sequence. ``DevicePass.run`` takes such a run of steps [first, last]
and does all of it on the device, with no host round trip per step:

* act: each replica's memory-net in eval mode, folded into affine maps, (K, B, D) @
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

Modules: ``device_action`` (A's K networks), ``device_memory`` (the K memory-nets and
replays), this one (the stretch, the device check).

The CPU default (``device=cpu``) is the NumPy path, which matches single runs exactly; on a
device the arithmetic is the same but float rounding differs (``tests/test_device.py``
compares a pass on torch's CPU device, ``device=torch-cpu``, with the NumPy pass;
``tests/test_device_arithmetic.py`` each function's two backends).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Callable

import numpy as np
import torch

from mannrl_gym.replicas.device_action import DeviceLearners
from mannrl_gym.replicas.device_memory import DeviceMemoryNets

# a run of fast steps shorter than this stays on the host (copying costs more than it saves)
MIN_DEVICE_STEPS = 64


def check_device(name: str) -> torch.device:
    """The torch device ``name`` names ('cuda', 'cuda:1', 'mps', 'cpu'; the config's
    'torch-cpu' is 'cpu'); ValueError saying why when it is not usable here."""
    try:
        device = torch.device("cpu" if name == "torch-cpu" else name)
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


def step_outputs(memory: torch.Tensor, features: torch.Tensor, probs: torch.Tensor,
                 loss: torch.Tensor, reward_clamp: torch.Tensor,
                 output_gate: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``envs.core.step_outputs`` on the device for K stacks (``tests/test_device_arithmetic.py``
    compares the two): (observation [memory | features | gated probabilities] (K, B, D),
    reward -min(loss, clamp) (K, B)); ``reward_clamp`` (K, 1), ``output_gate`` (K, 1, 1) or
    None (A's prediction is not needed on the device)."""
    reward = -torch.minimum(loss, reward_clamp)
    shown = probs if output_gate is None else probs * output_gate
    return torch.cat([memory, features, shown], dim=2), reward


class DevicePass:
    """Runs stretches of fast steps of a ``ReplicatedVectorEnv`` + ``ReplicatedAgents`` pass
    on ``device``; see the module's docstring."""

    def __init__(self, env, agents, device: torch.device) -> None:
        self.env, self.agents, self.device = env, agents, device
        self.learners = DeviceLearners(env.learners.learners, env.learners.storage, device)
        self.memory_nets: DeviceMemoryNets | None = agents.device_nets(device)
        tables = torch.from_numpy(np.ascontiguousarray(env.tables))
        self.tables = tables.to(device)
        self.clamp = torch.from_numpy(env.clamp).to(device)  # (K, 1)
        self.output_gate = (None if env.output_gate is None
                            else torch.from_numpy(env.output_gate).to(device))  # (K, 1, 1)
        self.replica_index = torch.arange(env.num_replicas, device=device)
        self.graphs = True  # on CUDA, replay captured graphs (see ``run``)
        self.steps_run = 0  # steps run on the device so far (all passes)
        self.seconds = 0.0  # wall time of those steps, copies in and out included

    def stretches(self, last_step: int) -> list[tuple[int, int]]:
        """The runs [first, last] of fast steps (>= MIN_DEVICE_STEPS) of the current pass, up
        to ``last_step`` (the caller keeps the pass's final step on the host)."""
        fast = np.asarray(self.env.stacked.fast, bool).copy()
        fast[0] = False  # step 0 is the reset
        fast[last_step + 1:] = False
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
        stacked = env.stacked
        rows = stacked.rows
        # every tensor a step reads or writes lives through the stretch (a graph replays it)
        self._inputs, self._targets, self._starts = (
            torch.tensor(rows[name][first:last + 1], device=to)
            for name in ("inputs", "targets", "start"))
        self._start_memory = self._has_start = None
        if stacked.start_memory is not None:  # carry_memory=False: new sequences start from it
            self._start_memory = torch.from_numpy(stacked.start_memory).to(to)  # (K, 1, M)
            self._has_start = torch.from_numpy(stacked.has_start).to(to).view(replicas, 1, 1)
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
        self.learners.download(steps)
        self.learners.check_finite()
        if memory_nets is not None:
            memory_nets.download(steps if learning else 0)
            memory_nets.check_finite()
        env.seek(last)
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
        observation, reward = step_outputs(memory, features, probs, loss, self.clamp,
                                           self.output_gate)
        self._state.copy_(observation)
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
