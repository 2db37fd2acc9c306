"""Speed benchmark for the sentence task (Table 3, B = 16, memory 1024), each part beside its floor.

Rows (milliseconds per batched step, at each thread count asked for):
  env + agent            the trainer's inner loop on the real data (MannRLVectorEnv.step and
                         MannRLAgent act / observe, memory updates included)
  env + no-memory agent  the same loop with the memory held at zeros (A's work and the env)
  A: hand-written step   ActionLearner.train_step (NumPy forward / backward, fused Adam)
  A: plain PyTorch step  the same network and update with nn.Module, autograd, clip_grad_norm_
                         and torch.optim.Adam
  f: act                 the memory-net's forward in eval mode (BN folded into the linears)
  f: update / cycle      one memory update, spread over the settle + history steps of its cycle

The floor of a part is the time of its matrix products alone: each product's FLOPs (counted
from the config's shapes by ``products``) at the rate the BLAS reaches on that very shape,
measured here (the best of NumPy's OpenBLAS and torch's, each with the weight stored either
way: before 2026-12-07 the backend the code used, which made f's act's floor 1.5 times too
high) at each thread count up to the row's, the best of them (N cores can run one thread:
some 16-row products are slower on two). Everything else (elementwise work, Adam, RMSprop,
Python, the env) is above the floor. The rows run as `mannrl train` runs them at that thread
count (``mannrl_gym.threads``: NumPy's BLAS on one thread, A's step and f's update with
torch on one, the larger products of f's act and update in two halves, one on a helper
thread); the floor lets each BLAS use 1 .. N threads of its own pool. Each time is the best
of 5 equal stretches (the quietest stretch of a shared machine), the loops' stretches whole
memory-update cycles timed in their steady state (after the reset the batch fills row by row:
on PUD the first 150 steps have fewer live rows, and their updates fewer sampled rows, so
they cost up to 1.8 times less; before 2026-12-06 22:00 the loops were timed from the
reset, and short runs such as ``--steps 300`` read low), elapsed (``--clock wall``)
or the process's CPU time (``--clock cpu``: all its threads' seconds); the ratio is measured
/ floor. The process keeps freed memory as ``mannrl train`` does (``mannrl_gym.allocator``;
``--plain-malloc``: glibc's malloc as it comes), and the loops' minor page faults and
kernel CPU time a step are printed, and what of the work above the floor is the optimizers'
square roots (Adam's over A's parameters every step, RMSprop's over f's once a cycle, each
timed as one ``torch.sqrt`` over as many values: exact optimizers cannot skip them). The
last lines give the cause of the old two-thread step, env + agent against its floor at each
thread count, and the load averages around the run.

    python benchmarks/sentence_speed.py [--steps 1000] [--threads 1,2] [--data pud|pg|PATH]
                                        [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym.agents import make_agent  # noqa: E402
from mannrl_gym.allocator import keep_freed_memory  # noqa: E402
from mannrl_gym.config import Config, load  # noqa: E402
from mannrl_gym.envs import MannRLVectorEnv  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402
from mannrl_gym.threads import limit_threads, one_thread  # noqa: E402

DATA = {"pud": "configs/sentence.yaml", "pg": "configs/sentence-pg.yaml"}
Product = tuple[int, int, int, float]  # (m, k, n, count per step): count x (m, k) @ (k, n)


def products(config: Config, input_dim: int, num_outputs: int) -> dict[str, list[Product]]:
    """The matrix products of each part of one batched step, from the shapes: B = batch_size
    rows, F = input_dim (one-hot characters), V = num_outputs, E = embed_size, M = memory_size,
    H = hidden_size, L = hidden_layers, R = memory_samples * B replayed rows per branch.

    A's step: forward (B rows through F->E, E+M->H, (L-1) x H->H, H->V), the weight gradients
    (the same products transposed) and the input gradients it needs (H->V, the H->H blocks,
    and of the first block only the E embedding columns; none for the one-hot input).
    f's act: B rows through F->E, V->E and M+2E->M. f's update, per cycle of settle + history
    steps: both branches' 2R rows forward through the same three layers, their weight
    gradients, and the input gradient of the embeddings' 2E columns of the body.
    """
    b, f, v, e = config.batch_size, input_dim, num_outputs, config.embed_size
    m, h, layers = config.memory_size, config.hidden_size, config.hidden_layers
    rows = 2 * config.memory_samples * b
    per_cycle = 1.0 / (config.settle + config.history)
    a_forward = [(b, f, e, 1), (b, e + m, h, 1), (b, h, h, layers - 1), (b, h, v, 1)]
    a_weights = [(o, b, i, c) for _, i, o, c in a_forward]
    a_inputs = [(b, h, e, 1), (b, h, h, layers - 1), (b, v, h, 1)]
    f_layers = [(f, e), (v, e), (m + 2 * e, m)]
    return {
        "A: hand-written step": a_forward + a_weights + a_inputs,
        "f: act": [(b, i, o, 1) for i, o in f_layers],
        "f: update / cycle": ([(rows, i, o, per_cycle) for i, o in f_layers]
                              + [(o, rows, i, per_cycle) for i, o in f_layers]
                              + [(rows, m, 2 * e, per_cycle)]),
    }


def update_as_run(config: Config, input_dim: int, num_outputs: int) -> float:
    """FLOPs a step of f's update as ``forward_torch`` runs it: the body's product by f's
    memory (M of its M + 2E inputs) once per stored state (history x B rows), not once per
    sampled pair row (2R), when those are fewer; the rest as ``products`` counts it."""
    b, f, v, e, m = (config.batch_size, input_dim, num_outputs, config.embed_size,
                     config.memory_size)
    rows, stored = 2 * config.memory_samples * b, config.history * b
    memory_rows = min(rows, stored)
    shapes = [(rows, f, e), (rows, v, e), (memory_rows, m, m), (rows, 2 * e, m),  # forward
              (e, rows, f), (e, rows, v), (m, memory_rows, m), (m, rows, 2 * e),  # weights
              (rows, m, 2 * e)]  # the embeddings' input gradient
    return sum(2 * i * k * o for i, k, o in shapes) / (config.settle + config.history)


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
WARMUP_LIMIT = 5000  # steps a loop may take to reach its steady state
clock = CLOCK["wall"]


WARM_CALLS = 5  # calls before ``best_per_call`` times a stretch


def stretch_size(calls: int, stretches: int, multiple: int) -> int:
    """Calls in each of ``best_per_call``'s stretches: ``calls`` shared out, whole
    ``multiple``s, at least one."""
    return max(multiple, calls // stretches // multiple * multiple)


def best_per_call(function: Callable[[int], None], calls: int, stretches: int = 5,
                  multiple: int = 1) -> float:
    """Seconds per call of ``function(i)`` on ``clock``: the best of ``stretches`` equal
    stretches of ``calls`` calls in all, after a short warm-up; each stretch a whole number
    of ``multiple`` calls (a loop's memory-update cycle: every stretch holds as many updates)."""
    for i in range(WARM_CALLS):
        function(i)
    size, best = stretch_size(calls, stretches, multiple), float("inf")
    for s in range(stretches):
        tic = clock()
        for i in range(size):
            function(s * size + i)
        best = min(best, (clock() - tic) / size)
    return best


def blas_seconds(shape: Product) -> float:
    """Seconds of one (m, k) @ (k, n) float32 product at the best rate this machine's BLAS
    libraries reach on it: NumPy's OpenBLAS and torch's, each with the (k, n) operand stored
    as it is and stored transposed (n, k), whichever is fastest (torch by a transposed
    weight: 1.5 times NumPy's rate at 16 x 1216 x 1024, f's act)."""
    m, k, n, _ = shape
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    b_stored_transposed = np.ascontiguousarray(b.T).T
    out = np.empty((m, n), np.float32)
    ta, tout = torch.from_numpy(a), torch.from_numpy(out)
    tb, tbt = torch.from_numpy(b), torch.from_numpy(b_stored_transposed.T).t()
    return min(best_per_call(lambda _: np.matmul(a, b, out=out), 200),
               best_per_call(lambda _: np.matmul(a, b_stored_transposed, out=out), 200),
               best_per_call(lambda _: torch.mm(ta, tb, out=tout), 200),
               best_per_call(lambda _: torch.mm(ta, tbt, out=tout), 200))


def product_seconds(parts: dict[str, list[Product]], threads: int) -> dict[str, list[float]]:
    """Seconds of each part's products, one call each, with torch and every BLAS on
    ``threads``."""
    torch.set_num_threads(threads)
    with threadpool_limits(limits=threads):
        return {name: [blas_seconds(shape) for shape in shapes]
                for name, shapes in parts.items()}


def floors(parts: dict[str, list[Product]], timings: list[dict[str, list[float]]]
           ) -> tuple[dict[str, float], dict[str, float]]:
    """(FLOPs per step, floor seconds per step) of each part: each product at its best time
    among ``timings`` (``product_seconds`` at 1 .. N threads: N cores can run one thread)."""
    flops, seconds = {}, {}
    for name, shapes in parts.items():
        flops[name] = sum(2 * m * k * n * c for m, k, n, c in shapes)
        seconds[name] = sum(c * min(timing[name][i] for timing in timings)
                            for i, (_, _, _, c) in enumerate(shapes))
    return flops, seconds


def two_pools(threads: int, calls: int) -> tuple[float, float]:
    """Seconds per pair of A's first product (16 x 1120 x 256) in NumPy, then in torch on
    ``threads``: (NumPy's BLAS on one thread; on ``threads`` too, as before mannrl_gym.threads).
    Each pool's idle workers spin: two spinning pools on two cores make every parallel call
    wait for a worker pushed off its core."""
    rng = np.random.default_rng(0)
    x, w = rng.random((16, 1120), dtype=np.float32), rng.random((1120, 256), dtype=np.float32)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    torch.set_num_threads(threads)
    times = []
    for blas in (1, threads):
        with threadpool_limits(limits=blas, user_api="blas"):
            times.append(best_per_call(lambda _: (np.matmul(x, w), torch.mm(tx, tw)), calls))
    return times[0], times[1]


def square_root_seconds(count: int, calls: int) -> float:
    """Seconds of one ``torch.sqrt`` over ``count`` float32 values on one thread, the kernel
    Adam's and RMSprop's denominators take (exactly rounded: an exact optimizer has no
    cheaper path)."""
    values, out = torch.rand(count, generator=torch.Generator().manual_seed(0)), torch.empty(count)
    with one_thread():
        return best_per_call(lambda _: torch.sqrt(values, out=out), calls)


def measure(config: Config, steps: int, warmups: dict[str, int],
            faults: dict[str, tuple[float, float]],
            roots: dict[str, tuple[int, float]]) -> dict[str, float]:
    """Seconds per batched step of each row (see the module docstring), the process set to
    its thread count by ``limit_threads`` already; the loops' warm-up steps go in
    ``warmups``, their minor page faults and system CPU seconds a step (while timed) in
    ``faults``, the optimizers' square roots (values, seconds a step) in ``roots``."""
    rows: dict[str, float] = {}
    for agent_name in ("mannrl", "no_memory"):
        config_here = Config(**{**config.to_dict(), "agent": agent_name}).validate()
        task = build_task(config_here)
        env = MannRLVectorEnv(task, config_here, num_envs=config.batch_size)
        agent = make_agent(config_here, env.layout, config.batch_size)
        state = {"observation": env.reset(seed=0)[0], "live": 0}

        def env_step(_: int) -> None:
            observation, reward, _, _, info = env.step(agent.act(state["observation"]))
            agent.observe(observation, reward, info)
            state["observation"], state["live"] = observation, int(info["valid"].sum())
        cycle = config.settle + config.history
        # steady state first: the batch fills row by row after the reset (on PUD about 150
        # steps with fewer than B live rows, and memory updates on fewer than 128 sampled
        # rows, up to 1.8 times cheaper); then two more cycles with every row live
        ramp, full_since = 0, 0
        while full_since < 2 * cycle and ramp < WARMUP_LIMIT:
            env_step(ramp)
            ramp += 1
            full_since = full_since + 1 if state["live"] == config.batch_size else 0
        warmups[agent_name] = ramp
        name = "env + agent" if agent_name == "mannrl" else "env + no-memory agent"
        before = resource.getrusage(resource.RUSAGE_SELF)
        rows[name] = best_per_call(env_step, steps, multiple=cycle)
        after = resource.getrusage(resource.RUSAGE_SELF)
        calls = WARM_CALLS + 5 * stretch_size(steps, 5, cycle)
        faults[name] = ((after.ru_minflt - before.ru_minflt) / calls,
                        (after.ru_stime - before.ru_stime) / calls)
        if agent_name != "mannrl":
            continue
        rng = np.random.default_rng(0)
        features = task.input_table.numpy()[rng.integers(0, task.input_dim, 16)]
        memory = rng.random((16, config.memory_size), dtype=np.float32)
        targets = rng.integers(0, task.num_outputs, 16)
        rows["A: hand-written step"] = best_per_call(
            lambda _: env.learner.train_step(features, memory, targets), steps)
        net = copy.deepcopy(env.learner.net)
        for p in net.parameters():
            p.data = p.data.clone()
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        tensors = [torch.from_numpy(a) for a in (features, memory, targets)]

        def plain_step(_: int) -> None:
            loss = nn.functional.cross_entropy(net(tensors[0], tensors[1]), tensors[2])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), config.clipping)
            optimizer.step()
        net.train()
        rows["A: plain PyTorch step"] = best_per_call(plain_step, steps)
        observation = state["observation"]
        rows["f: act"] = best_per_call(lambda _: agent.act(observation), steps)
        cycle = config.settle + config.history
        agent.replay.clear()  # a full buffer, as at every update
        for _ in range(config.history):
            agent.replay.push(observation, np.zeros(16, np.float32), np.ones(16, bool),
                              np.ones(16, bool))
        rows["f: update / cycle"] = best_per_call(lambda _: agent.learn(),
                                                  max(25, steps // cycle)) / cycle
        # Adam over A's parameters every step, RMSprop over f's once a cycle
        a_count = env.learner.flat.numel()
        f_count = sum(p.numel() for p in agent.net.parameters() if p.requires_grad)
        roots["A's Adam, every step"] = (a_count, square_root_seconds(a_count, steps))
        roots["f's RMSprop, once a cycle"] = (
            f_count, square_root_seconds(f_count, max(25, steps // cycle)) / cycle)
    return rows


PARTS = {"A: hand-written step": "A's step", "f: act": "f's act",
         "f: update / cycle": "f's update"}


def budget(rows: dict[str, float], floor: dict[str, float], target: float = 1.5) -> str:
    """What ``target`` x the floor leaves for everything that is not a product, against what
    that work takes here: each part's measured time less its floor, and the loop's own (the
    env + agent row less the three parts: the env, the replay, the calls between)."""
    allowed = (target - 1.0) * floor["env + agent"]
    above = {label: rows[name] - floor[name] for name, label in PARTS.items()}
    above["env and loop"] = rows["env + agent"] - sum(rows[name] for name in PARTS)
    spent = ", ".join(f"{label} {value * 1e3:.2f}" for label, value in above.items())
    return (f"{target}x the floor leaves {allowed * 1e3:.2f} ms a step for all work that is not "
            f"a product; that work takes {sum(above.values()) * 1e3:.2f} here (ms above each "
            f"part's floor: {spent})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", nargs="+", default=["1,2"],
                        help="thread counts, comma- or space-separated (default 1,2)")
    parser.add_argument("--data", default="pud",
                        help="pud (configs/sentence.yaml's data), pg (configs/sentence-pg."
                             "yaml's: the 500 shortest PostgreSQL messages) or a text file")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="wall: elapsed seconds; cpu: the process's CPU seconds (all its "
                             "threads: on a loaded machine, one thread's cost without the "
                             "waiting)")
    parser.add_argument("--plain-malloc", action="store_true",
                        help="leave glibc's malloc as it comes (returning freed blocks to the "
                             "kernel) instead of keeping them, as `mannrl train` does")
    args = parser.parse_args()
    if not args.plain_malloc:
        keep_freed_memory()
    args.threads = [int(n) for part in args.threads for n in part.split(",") if n]
    global clock
    clock = CLOCK[args.clock]
    config_file = ROOT / DATA.get(args.data, DATA["pud"])
    overrides = {"wandb_mode": "disabled", "data_path": str(ROOT / load(config_file).data_path)}
    if args.data not in DATA:
        overrides["data_path"] = args.data
    config = load(config_file, overrides)
    task = build_task(config)
    parts = products(config, task.input_dim, task.num_outputs)
    print(f"Sentence speed, Table 3 (memory {config.memory_size}, embedding {config.embed_size}, "
          f"A {config.hidden_layers} x {config.hidden_size}), B={config.batch_size}, "
          f"{config.data_path}, F={task.input_dim} V={task.num_outputs}, {args.steps} steps, "
          f"best of 5 stretches, {args.clock} clock, torch {torch.__version__}")
    load_before, summary = os.getloadavg()[0], []
    timings: dict[int, dict[str, list[float]]] = {}
    for threads in args.threads:
        for count in range(1, threads + 1):  # the floor: every BLAS on 1 .. threads
            if count not in timings:
                timings[count] = product_seconds(parts, count)
        flops, floor = floors(parts, [timings[count] for count in range(1, threads + 1)])
        warmups: dict[str, int] = {}
        faults: dict[str, tuple[float, float]] = {}
        roots: dict[str, tuple[int, float]] = {}
        with limit_threads(threads):  # the rows: as `mannrl train` runs (mannrl_gym.threads)
            rows = measure(config, args.steps, warmups, faults, roots)
        flops["env + agent"] = sum(flops.values())
        floor["env + agent"] = sum(floor.values())
        print(f"\n{threads} thread(s)\n{'part':24s} {'MFLOP/step':>10s} {'GFLOP/s':>8s} "
              f"{'floor ms':>9s} {'measured ms':>12s} {'ratio':>6s}")
        for name, seconds in rows.items():
            if name in floor:
                rate = flops[name] / floor[name] / 1e9
                print(f"{name:24s} {flops[name] / 1e6:10.1f} {rate:8.1f} {floor[name] * 1e3:9.3f} "
                      f"{seconds * 1e3:12.3f} {seconds / floor[name]:6.2f}")
            else:
                print(f"{name:24s} {'':10s} {'':8s} {'':9s} {seconds * 1e3:12.3f}")
        cycle = config.settle + config.history
        ramps = ", ".join(f"{count} warm-up steps ({name})" for name, count in warmups.items())
        print(f"the loops timed after {ramps}: every row live for {2 * cycle} steps, stretches "
              f"of whole {cycle}-step cycles")
        print("minor page faults and kernel (system) CPU a step while timed: " + ", ".join(
            f"{name} {count:.1f}, {system * 1e3:.3f} ms" for name, (count, system)
            in faults.items())
              + (" (glibc's malloc as it comes: --plain-malloc)" if args.plain_malloc else
                 " (freed memory kept, as `mannrl train` runs: mannrl_gym.allocator)"))
        if threads > 1:
            one, both = two_pools(threads, max(100, args.steps // 5))
            print(f"the old cause (docs/benchmarks.md): a NumPy and a torch 16 x 1120 x 256 "
                  f"product in turn, torch on {threads} threads: {one * 1e3:.3f} ms a pair with "
                  f"NumPy's BLAS on 1, {both * 1e3:.3f} ms with it on {threads} too")
        print(budget(rows, floor))
        print("of it, the optimizers' square roots (torch.sqrt timed here over as many values, "
              "one thread): " + ", ".join(
                  f"{name} ({count:,} values) {seconds * 1e3:.3f} ms a step"
                  for name, (count, seconds) in roots.items())
              + f", {sum(seconds for _, seconds in roots.values()) * 1e3:.2f} ms a step in all")
        as_run = update_as_run(config, task.input_dim, task.num_outputs)
        print(f"f's update as run here: {as_run / 1e6:.1f} MFLOP a step against the "
              f"{flops['f: update / cycle'] / 1e6:.1f} the floor counts (f's memory part "
              f"multiplied once per stored state)")
        total, base = rows["env + agent"], floor["env + agent"]
        summary.append(f"{threads} thread(s) {total * 1e3:.2f} ms against {base * 1e3:.2f} "
                       f"({total / base:.2f}x)")
    print(f"\nenv + agent against its floor: {'; '.join(summary)}. 1-minute load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} cores)")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
