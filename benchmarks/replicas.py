"""Replica throughput on Logic (Table 1, B = 16): K seeds trained in one process, stepped
together (``mannrl_gym.replicas``), beside K single runs one after another and beside K
single-run processes two at a time. One table, one run.

Every figure is replica-steps/s of the training loop (``run_epoch``: env, agent, memory
updates; evaluation and start-up excluded), summed over the replicas, over ``--epochs`` whole
passes (Logic: 6,220 steps per pass and replica on the default split).

  replicated K      ReplicatedExperiment.run_epoch over K seeds (0..K-1) in this process
  sequential K      K single runs (MannRLExperiment.run_epoch) back to back: their rate does
                    not depend on K, so the single runs of seeds 0 and 1 are measured here and
                    their mean stands for every K (extrapolated, not run K times)
  processes K       K single-run processes of seeds 0..K-1, two at a time (this machine has 2
                    cores); each reports its own loop time, a pair lasts as long as its slower
                    one, and the pairs run back to back (measured, K = 2, 4, 8)

    OMP_NUM_THREADS=1 python benchmarks/replicas.py [--replicas 1,2,4,8,16,32] [--agent mannrl]

On a GPU (``device=cuda``, ``mannrl_gym.replicas.device``), the replicated rows run there and
the NumPy path's replicated rows (``--cpu-replicas``) and the sequential rate are measured on
this machine's CPU in the same run, so the ratios compare rows of one run:

    OMP_NUM_THREADS=1 python benchmarks/replicas.py --device cuda --replicas 8,64,256,1024 \
        --cpu-replicas 8 --processes "" --shared-data

  --shared-data   every replica reads seed 0's Logic data (as sweep points do), each with its
                  own seed for its networks and data order: building 1,024 data sets would
                  take longer than the measurement; the steps are the same work
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.config import Config  # noqa: E402
from mannrl_gym.experiments import MannRLExperiment  # noqa: E402
from mannrl_gym.replicas.experiment import ReplicatedExperiment  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402


def base_config(agent: str) -> Config:
    return Config(agent=agent, wandb_mode="disabled", progress=False).validate()


def timed_epochs(experiment, epochs: int, steps_of) -> tuple[int, float, float]:
    """(replica-steps, wall seconds, CPU seconds) of ``epochs`` training passes of
    ``experiment``; ``steps_of(experiment)``: the replica-steps of its last pass."""
    steps, seconds, cpu = 0, 0.0, 0.0
    for epoch in range(epochs):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        experiment.run_epoch(epoch, "speed")
        seconds += time.perf_counter() - tic
        cpu += time.process_time() - cpu_tic
        steps += steps_of(experiment)
    return steps, seconds, cpu


def single_run(config: Config, epochs: int) -> tuple[int, float, float]:
    """(steps, wall seconds, CPU seconds) of ``epochs`` passes of one single run."""
    return timed_epochs(MannRLExperiment(config, build_task(config)), epochs,
                        lambda e: e.env.steps_per_pass - 1)


def replicated(base: Config, count: int, epochs: int, device: str | None = None,
               shared_data: bool = False, graphs: bool = True) -> tuple[float, float, str]:
    """Replica-steps per wall second and per CPU second of ``count`` seeds stepped together
    (on ``device``'s path when given), and where a device pass's time went."""
    configs = [replace(base, seed=seed) for seed in range(count)]
    tasks = [build_task(configs[0])] * count if shared_data else [build_task(c) for c in configs]
    experiment = ReplicatedExperiment(configs, tasks, device)
    if experiment.device_pass is not None:
        experiment.device_pass.graphs = graphs
    steps, seconds, cpu = timed_epochs(experiment, epochs,
                                       lambda e: int((e.env.lengths - 1).sum()))
    split = ""
    if experiment.device_pass is not None:
        on_device = experiment.device_pass
        split = (f"{on_device.steps_run / (epochs * (experiment.env.steps_per_pass - 1)):.3f} "
                 f"{1e3 * on_device.seconds / max(1, on_device.steps_run):.2f} ms "
                 f"{on_device.seconds / seconds:.2f}"
                 f"{', graphs' if on_device.graphs and device.startswith('cuda') else ''}")
    return steps / seconds, steps / cpu, split


def warm_up(device: str) -> None:
    """One short pass on ``device`` (its context, kernels and allocator start up here)."""
    configs = [replace(base_config("mannrl"), seed=seed, num_sequences=300) for seed in (0, 1)]
    ReplicatedExperiment(configs, [build_task(c) for c in configs], device).run_epoch(0, "warm")


def device_table(args, base: Config) -> None:
    """Replicated rows on ``args.device`` beside the NumPy path's rows and sequential single
    runs on this machine's CPU, all measured in this run."""
    import torch

    load_before = os.getloadavg()
    singles = [single_run(replace(base, seed=seed), args.epochs) for seed in (0, 1)]
    sequential = sum(s for s, _, _ in singles) / sum(t for _, t, _ in singles)
    rows = []
    for count in [int(k) for k in args.cpu_replicas.split(",") if k]:
        rows.append((count, "cpu (NumPy)", replicated(base, count, args.epochs,
                                                      shared_data=args.shared_data)[0], "", ""))
        print(f"  cpu K={count}: {rows[-1][2]:.0f} replica-steps/s", file=sys.stderr, flush=True)
    warm_up(args.device)
    runs = [(int(k), False) for k in args.eager_replicas.split(",") if k]
    runs += [(int(k), True) for k in args.replicas.split(",")]
    for count, graphs in runs:
        torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
        rate, _, split = replicated(base, count, args.epochs, args.device, args.shared_data,
                                    graphs)
        memory = (f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
                  if torch.cuda.is_available() else "")
        path = args.device if graphs else f"{args.device} eager"
        rows.append((count, path, rate, memory, split))
        print(f"  {path} K={count}: {rate:.0f} replica-steps/s ({split})", file=sys.stderr,
              flush=True)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else args.device
    print(f"Replicas on Logic (Table 1, B={base.batch_size}, agent={args.agent}), "
          f"{args.epochs} pass(es) per figure, torch {torch.__version__}, device {name}, "
          f"{os.cpu_count()} CPU cores, 1 thread; 1-min load average {load_before[0]:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after; data "
          f"{'shared (seed 0)' if args.shared_data else 'one set per seed'}")
    print(f"sequential: single runs of seeds 0 and 1 on the CPU ({sequential:.0f} steps/s), "
          f"standing for K runs back to back. Wall-clock replica-steps/s of the training "
          f"loop (evaluation and start-up excluded; each pass's data layout included). "
          f"On the device: the share of the pass's steps run there, the wall time per such "
          f"step (copies in and out included), the share of the pass's wall time spent there "
          f"('graphs': after each stretch's first memory cycle the steps replay captured CUDA "
          f"graphs; 'eager' rows launch every kernel from Python); the rest is host work per replica (each pass's data layout, the steps at its "
          f"staggered start and its tail)\n")
    print(f"{'K':>5s} {'path':>12s} {'replica-steps/s':>16s} {'x sequential':>13s} "
          f"{'x cpu K=8':>10s} {'peak GPU memory':>16s} {'on device: steps, per step, time':>34s}")
    cpu8 = next((row[2] for row in rows if row[1].startswith("cpu") and row[0] == 8), None)
    for count, path, rate, memory, split in rows:
        versus = f"{rate / cpu8:10.1f}" if cpu8 else f"{'-':>10s}"
        print(f"{count:5d} {path:>12s} {rate:16.0f} {rate / sequential:13.1f} {versus} "
              f"{memory:>16s} {split:>34s}")


def processes(agent: str, count: int, epochs: int) -> float:
    """Replica-steps/s of ``count`` single-run processes, two at a time."""
    steps, seconds = 0, 0.0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for first in range(0, count, 2):
        pair = [subprocess.Popen([sys.executable, __file__, "--worker", str(seed), "--agent",
                                  agent, "--epochs", str(epochs)], stdout=subprocess.PIPE,
                                 env=env, text=True) for seed in range(first, min(first + 2, count))]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in pair]
        steps += sum(r["steps"] for r in results)
        seconds += max(r["seconds"] for r in results)
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--replicas", default="1,2,4,8,16,32")
    parser.add_argument("--processes", default="2,4,8", help="K for the processes column")
    parser.add_argument("--agent", default="mannrl")
    parser.add_argument("--epochs", type=int, default=1, help="passes per measurement")
    parser.add_argument("--device", help="run the replicated rows on this torch device "
                                          "(cuda, cuda:N); see the docstring")
    parser.add_argument("--cpu-replicas", default="8",
                        help="with --device: K for the NumPy path's rows on the CPU")
    parser.add_argument("--eager-replicas", default="",
                        help="with --device: K for rows stepped eagerly (no CUDA graphs)")
    parser.add_argument("--shared-data", action="store_true",
                        help="every replica reads seed 0's data (see the docstring)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device:
        from mannrl_gym.replicas.device import check_device

        try:  # before the CPU rows' minutes, not after them
            check_device(args.device)
        except ValueError as error:
            parser.error(f"--device: {error}")
    torch.set_num_threads(1)
    threadpool_limits(limits=1)  # BLAS threads thrash on small matrices
    base = base_config(args.agent)
    if args.worker is not None:
        steps, seconds, _ = single_run(replace(base, seed=args.worker), args.epochs)
        print(json.dumps({"steps": steps, "seconds": seconds}))
        return
    if args.device:
        device_table(args, base)
        return
    load_before = os.getloadavg()
    singles = [single_run(replace(base, seed=seed), args.epochs) for seed in (0, 1)]
    sequential = sum(s for s, _, _ in singles) / sum(t for _, t, _ in singles)
    sequential_cpu = sum(s for s, _, _ in singles) / sum(c for _, _, c in singles)
    counts = [int(k) for k in args.replicas.split(",")]
    process_counts = {int(k) for k in args.processes.split(",") if k}
    rows = []
    for count in counts:
        rate, rate_cpu, _ = replicated(base, count, args.epochs)
        separate = processes(args.agent, count, args.epochs) if count in process_counts else None
        rows.append((count, rate, rate_cpu, separate))
        print(f"  K={count}: {rate:.0f} replica-steps/s", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    print(f"Replicas on Logic (Table 1, B={base.batch_size}, agent={args.agent}), "
          f"{args.epochs} pass(es) per figure, torch {torch.__version__}, 1 thread, "
          f"{os.cpu_count()} cores; 1-min load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print(f"sequential: single runs of seeds 0 and 1 measured ({sequential:.0f} steps/s), "
          f"the same rate stands for K runs back to back. Wall-clock replica-steps/s; 'cpu' "
          f"columns: per CPU-second of this process (less sensitive to other load)\n")
    print(f"{'K':>3s} {'replicated':>11s} {'sequential':>11s} {'x seq':>6s} "
          f"{'processes (2 at a time)':>24s} {'x proc':>7s} {'repl cpu':>9s} {'seq cpu':>8s} "
          f"{'x seq cpu':>9s}")
    for count, rate, rate_cpu, separate in rows:
        proc = f"{separate:24.0f} {rate / separate:7.2f}" if separate else f"{'-':>24s} {'-':>7s}"
        print(f"{count:3d} {rate:11.0f} {sequential:11.0f} {rate / sequential:6.2f} {proc} "
              f"{rate_cpu:9.0f} {sequential_cpu:8.0f} {rate_cpu / sequential_cpu:9.2f}")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
