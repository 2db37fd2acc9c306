"""Learning benchmark: MANN-RL (paper recipe and its switches) beside the ablations, the
baselines and the LSTM peer (trained by backpropagation through time), for one task.

Each variant trains from configs/<task>.yaml for the same wall-clock budget (or epoch count)
and the table reports, per variant: epochs and minutes run, the first epoch from which train
F1 stays >= 0.99, train F1 after 1, 2, 4, 8, 16 and 24 minutes (those within --minutes; nan
where a run ended sooner), and final train / validation F1 and answer accuracy (long-range included) as means over the last 5 epochs. With several seeds
a second table gives each variant's mean and spread (standard deviation) over its seeds.

    python benchmarks/learning.py --task logic --minutes 4 --jobs 2
    python benchmarks/learning.py --task logic --variants paper,no-memory --seeds 0,1
    python benchmarks/learning.py --task logic --variants paper,frozen-memory,frozen-weights,es,pg --seeds 0,1,2 --epochs 20 --minutes 60
    python benchmarks/learning.py --task logic --variants frozen-weights,es,repaired --seeds 0,1,2,3,4 --epochs 30 --paired frozen-weights holdout_distinct=100
    python benchmarks/learning.py --task pos --minutes 8 --jobs 2
    python benchmarks/learning.py --task sentence --minutes 30 --jobs 2
    python benchmarks/learning.py --task logic --variants paper,frozen-weights --seeds 0-4 --epochs 8 --minutes 60 --replicated

``--replicated`` trains each variant's seeds as replicas of one process (``mannrl train CONFIG
seeds=...``, docs/replicas.md) when its agent can be replicated; the others run one process
per seed. A replica's minutes are the shared training time plus its own evaluations.
Runs already finished under --out (either layout) are read, not run again: a table can grow
by seeds across invocations (``--seeds 0,1`` one day, ``--seeds 0-4 --replicated`` later
trains seeds 2-4 as replicas in ``<variant>-s2-4/`` and tabulates all five).

For the sentence tasks the table adds what says whether the memory works: the character
accuracy over the sentences' writing phase (answer_acc_sentence), the share of training
sentences written back exactly (answer_exact_sentence), the share of the one-character
sequences written back (answer_exact_character), and the held-out writing accuracy and
exact share.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym.seed_table import (evaluated_rows, final_metrics, finished, over_seeds,  # noqa: E402
                                   paired, text_table)

POS_VARIANTS: dict[str, list[str]] = {
    "most-frequent-tag": ["agent=most_frequent_tag", "epochs=1"],
    "paper": [],
    "paper+lr-1e-3": ["lr=1e-3"],
    "no-memory": ["agent=no_memory"],
    "no-memory+lr-1e-3": ["agent=no_memory", "lr=1e-3"],
    "frozen-memory": ["agent=frozen_memory"],
    "frozen-weights": ["agent=frozen_weights"],
    "frozen-memory+lr-1e-3": ["agent=frozen_memory", "lr=1e-3"],
    "es": ["agent=es"],  # evolution strategies on f's weights (agents/es_agent.py)
    "repaired": ["agent=repaired", "agent_window=16"],  # actor f along per-unit TD credit
    "lstm": ["agent=lstm", "lr=1e-3", "clipping=1.0"],
}
VARIANTS: dict[str, list[str]] = {
    "paper": [],
    "paper+running-bn-eval": ["bn_statistics=running"],
    "paper+single-softmax": ["double_softmax=false"],
    "paper+detach-target": ["detach_target=true"],
    "paper+reset-memory": ["carry_memory=false"],
    "fixed": ["double_softmax=false", "detach_target=true", "carry_memory=false"],
    "no-memory": ["agent=no_memory"],
    "frozen-memory": ["agent=frozen_memory"],
    "frozen-weights": ["agent=frozen_weights"],  # f's weights frozen, batch-norm statistics live
    "es": ["agent=es"],  # evolution strategies on f's weights (agents/es_agent.py)
    "pg": ["agent=pg"],  # clipped policy gradient, Gaussian memory writes (agents/pg_agent.py)
    "repaired": ["agent=repaired", "agent_window=16"],  # actor f along per-unit TD credit (agents/repaired_agent.py)
    "repaired+explore-4": ["agent=repaired", "agent_window=16", "repaired_explore_units=4"],
    "paper+lr-1e-3": ["lr=1e-3"],
    "paper+memory-lr-1e-3": ["memory_lr=1e-3"],
    "frozen-memory+lr-1e-3": ["agent=frozen_memory", "lr=1e-3"],
    "lstm": ["agent=lstm", "lr=1e-3", "clipping=1.0"],
}
SENTENCE_VARIANTS: dict[str, list[str]] = {
    "memoryless-ceiling": ["agent=most_frequent_tag", "epochs=1"],
    "perfect-memory-ceiling": ["agent=perfect_memory", "epochs=1"],
    "paper": [],
    "no-memory": ["agent=no_memory"],
    "frozen-memory": ["agent=frozen_memory"],
    "frozen-weights": ["agent=frozen_weights"],  # f's weights frozen, batch-norm statistics live
    "es": ["agent=es"],  # evolution strategies on f's weights (agents/es_agent.py)
    "pg": ["agent=pg"],  # clipped policy gradient, Gaussian memory writes (agents/pg_agent.py)
    "repaired": ["agent=repaired", "agent_window=16"],  # actor f along per-unit TD credit (agents/repaired_agent.py)
    "repaired+explore-4": ["agent=repaired", "agent_window=16", "repaired_explore_units=4"],
    "paper+lr-1e-3": ["lr=1e-3"],
    "no-memory+lr-1e-3": ["agent=no_memory", "lr=1e-3"],
    "single-softmax+lr-1e-3": ["double_softmax=false", "lr=1e-3"],
    "lstm": ["agent=lstm", "lr=1e-3", "clipping=1.0"],
}
TASK_VARIANTS = {"logic": VARIANTS, "pos": POS_VARIANTS, "sentence": SENTENCE_VARIANTS,
                 "translate": SENTENCE_VARIANTS}
SENTENCE_KEYS = ["train/f1", "train/answer_acc_sentence", "train/answer_exact_sentence",
                 "train/answer_exact_character", "validation/f1", "validation/answer_acc",
                 "validation/answer_exact"]
KEYS = ["train/f1", "train/answer_acc", "train/long_range_acc", "validation/f1",
        "validation/answer_acc", "validation/long_range_acc"]


def run(name: str, overrides: list[str], seed: int, minutes: float, epochs: int, out: Path,
        extra: list[str], config: Path) -> dict:
    run_name = f"{name}-s{seed}"
    run_dir = out / run_name
    if finished(out, name, seed):
        return {"name": name, "seed": seed, "dir": finished(out, name, seed)}
    command = [sys.executable, "-m", "mannrl_gym.cli", "train", str(config),
               f"seed={seed}", f"epochs={epochs}", f"max_minutes={minutes}", "wandb_mode=disabled",
               "progress=false", f"out_dir={out}", f"run_name={run_name}", *overrides, *extra]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return {"name": name, "seed": seed, "dir": run_dir}


def run_replicated(name: str, overrides: list[str], seeds: list[int], minutes: float,
                   epochs: int, out: Path, extra: list[str], config: Path) -> list[dict]:
    """The ``seeds`` of one variant not yet finished in ``out`` (either layout, see
    ``finished``) as replicas of one process (``out/<name>-s<first>-<last>/seed<s>``)."""
    missing = [seed for seed in seeds if finished(out, name, seed) is None]
    if missing:
        command = [sys.executable, "-m", "mannrl_gym.cli", "train", str(config),
                   f"seeds={','.join(map(str, missing))}", f"epochs={epochs}",
                   f"max_minutes={minutes}", "wandb_mode=disabled", "progress=false",
                   f"out_dir={out}", f"run_name={name}-s{missing[0]}-{missing[-1]}",
                   *overrides, *extra]
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return [{"name": name, "seed": seed, "dir": finished(out, name, seed)} for seed in seeds]


def replicable(overrides: list[str], extra: list[str]) -> bool:
    from mannrl_gym.replicas import agents as replica_agents
    agents = [o.split("=", 1)[1] for o in overrides + extra if o.startswith("agent=")]
    return replica_agents.replicable(agents[-1] if agents else "mannrl")


def row_for(result: dict, keys: list[str], budgets: tuple[int, ...]) -> dict:
    rows = evaluated_rows(result["dir"])
    summary = json.loads((result["dir"] / "summary.json").read_text())
    last = rows[-1]
    stable = summary.get("train/f1 >= 0.99 from")
    out = {"variant": result["name"], "seed": result["seed"], "epochs": last["epoch"],
           "minutes": last["minutes"],
           "f1>=0.99 from": f"ep {stable['epoch']} ({stable['minutes']:.1f} min)" if stable else "never",
           "max train/f1": max(r["train/f1"] for r in rows)}
    for budget in budgets:  # F1 against wall-clock minutes, where the run lasted that long
        within = [r for r in rows if r["minutes"] <= budget]
        reached = within and last["minutes"] >= budget
        out[f"f1@{budget}min"] = within[-1]["train/f1"] if reached else float("nan")
    out.update(final_metrics(rows, keys))  # means over the last 5 evaluations
    return out


def print_table(rows: list[dict]) -> None:
    print(text_table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="wall-clock budget per run")
    parser.add_argument("--epochs", type=int, default=512, help="epoch cap per run")
    parser.add_argument("--task", choices=tuple(TASK_VARIANTS), default="logic")
    parser.add_argument("--seeds", default="0", help="e.g. 0,1,2 or 0-4")
    parser.add_argument("--replicated", action="store_true",
                        help="each variant's seeds as replicas of one process (where its agent "
                             "can be replicated)")
    parser.add_argument("--variants", help="comma-separated names (default: all of the task's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one core each)")
    parser.add_argument("--out", help="default: benchmarks/results/<task>")
    parser.add_argument("--paired", metavar="VARIANT",
                        help="with several seeds: also each variant minus VARIANT, seed by seed")
    parser.add_argument("extra", nargs="*", help="key=value overrides for every variant")
    args = parser.parse_args()
    variants = TASK_VARIANTS[args.task]
    names = [n.strip() for n in args.variants.split(",")] if args.variants else list(variants)
    unknown = [n for n in names if n not in variants]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(variants)}")
    out = Path(args.out or ROOT / "benchmarks/results" / args.task)
    config = ROOT / "configs" / f"{args.task}.yaml"
    out.mkdir(parents=True, exist_ok=True)
    from mannrl_gym.replicas.spec import parse_seeds
    seeds = parse_seeds(args.seeds, source="--seeds")
    together = [n for n in names if args.replicated and replicable(variants[n], args.extra)]
    jobs = [(n, variants[n], s) for n in names if n not in together for s in seeds]
    tic = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        grouped = list(pool.map(lambda n: run_replicated(n, variants[n], seeds, args.minutes,
                                                         args.epochs, out, args.extra, config),
                                together))
        results = list(pool.map(lambda j: run(j[0], j[1], j[2], args.minutes, args.epochs, out,
                                              args.extra, config), jobs))
    results = [r for group in grouped for r in group] + results
    print(f"{args.task} learning benchmark: {args.minutes} min or {args.epochs} epochs per run, "
          f"{args.jobs} parallel, {time.time() - tic:.0f} s in all; means over the last 5 "
          f"evaluations" + (f"; replicated: {', '.join(together)}" if together else "") + "\n")
    sentences = args.task in ("sentence", "translate")
    keys = SENTENCE_KEYS if sentences else KEYS
    budgets = tuple(budget for budget in ((5, 10, 20, 30, 60) if sentences
                                          else (1, 2, 4, 8, 16, 24)) if budget <= args.minutes)
    rows = [row_for(r, keys, budgets) for r in results]
    print_table(rows)
    if len(seeds) > 1:
        print("\nmean ± standard deviation over seeds\n")
        print_table(over_seeds(rows, ["max train/f1", *keys]))
        if args.paired:
            print(f"\npaired: variant minus {args.paired} on the same seed, mean ± standard "
                  f"deviation over seeds\n")
            print_table(paired(rows, ["max train/f1", *keys], args.paired))


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
