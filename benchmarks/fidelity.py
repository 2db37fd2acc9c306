"""Fidelity benchmark: do we learn Logic (Table 1) at least as well as the paper's own code, at
equal epochs?

Training-set answer accuracy (the `=` steps, the part that needs memory), mean over epoch
windows, for each configuration over several seeds, beside the reference implementation's
figures (quoted: measured on this kind of machine on 2026-11-26, one thread each, seeds 13 and
14 of its own Logic recipe). Also printed: train F1, held-out answer accuracy and F1 over the
last window, and how far each run is from the project's goal (held-out answer accuracy and F1
>= 0.99 for good, within 2 minutes).

    python benchmarks/fidelity.py --seeds 0,1,2 --jobs 2
    python benchmarks/fidelity.py --rows reference-like,defaults --epochs 40

The row "before-fix" is our code before the fix (commit f0028d6: static batching, idle rows
in f's batch statistics, cold-start evaluation), run from a checkout of that commit into the
same results folder, and only summarised here (``--before``):

    git worktree add ../before f0028d6 && cd ../before && python3 bootstrap.py test --co -q
    for s in 0 1 2; do .venv/bin/python -m mannrl_gym.cli train configs/logic.yaml seed=$s \
      epochs=40 holdout=random bn_statistics=running wandb_mode=disabled progress=false \
      out_dir=$OLDPWD/benchmarks/results/fidelity run_name=before-fix-s$s; done

Rows:
  reference-like   holdout=random bn_statistics=running, the reference's quirks on (the
                   configs/logic.yaml defaults), refill batching as the reference
  defaults         configs/logic.yaml as it is (distinct holdout, recalibrated evaluation)
  reference-like+static-batching
                   as reference-like, but sequence k goes to slot k % B (our batching before
                   2026-11-26): a long idle tail each pass, now kept out of every network
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learning import print_table, run  # noqa: E402

REFERENCE_LIKE = ["holdout=random", "bn_statistics=running"]
ROWS: dict[str, list[str]] = {
    "reference-like": REFERENCE_LIKE,
    "defaults": [],
    "reference-like+static-batching": [*REFERENCE_LIKE, "batching=static"],
}
# The reference implementation (its own code, Logic, Table 1 recipe), measured 2026-11-26:
# train answer accuracy per epoch window; seed 14 ran 27 epochs.
REFERENCE = {
    "reference implementation (2026-11-26)": {
        "seeds": "13 / 14", "11-20": "0.876 / 0.850", "21-30": "0.884 / 0.848 (21-27)",
        "31-40": "0.880 / -", "train f1 31-40": "0.988 / 0.986 (21-27)"},
}
WINDOWS = ((11, 20), (21, 30), (31, 40))
GOAL = 0.99


def window_mean(rows: list[dict], key: str, first: int, last: int) -> float:
    values = [r[key] for r in rows if first <= r["epoch"] <= last and r.get(key) is not None]
    return sum(values) / len(values) if values else float("nan")


def minutes_to_goal(rows: list[dict]) -> float | None:
    """Minutes at the first epoch from which held-out answer accuracy and F1 stay >= GOAL."""
    found = None
    for r in rows:
        ok = all((r.get(k) or 0) >= GOAL for k in ("validation/answer_acc", "validation/f1"))
        found = (found or r["minutes"]) if ok else None
    return found


def spread(values: list[float]) -> str:
    """'a / b / c (mean +- sd)' over seeds."""
    shown = " / ".join(f"{v:.3f}" for v in values)
    if len(values) < 2:
        return shown
    return f"{shown}  ({statistics.mean(values):.3f} +- {statistics.stdev(values):.3f})"


def summarize_row(name: str, runs: list[dict]) -> dict:
    per_seed = [[json.loads(line) for line in (r["dir"] / "metrics.jsonl").read_text().splitlines()]
                for r in runs]
    last_window = WINDOWS[-1]
    out = {"row": name, "seeds": " / ".join(str(r["seed"]) for r in runs)}
    for first, last in WINDOWS:
        out[f"{first}-{last}"] = spread([window_mean(rows, "train/answer_acc", first, last)
                                         for rows in per_seed])
    out[f"train f1 {last_window[0]}-{last_window[1]}"] = spread(
        [window_mean(rows, "train/f1", *last_window) for rows in per_seed])
    out["held-out answer"] = spread([window_mean(rows, "validation/answer_acc", *last_window)
                                     for rows in per_seed])
    out["held-out f1"] = spread([window_mean(rows, "validation/f1", *last_window)
                                 for rows in per_seed])
    goal = [minutes_to_goal(rows) for rows in per_seed]
    out["goal (min)"] = " / ".join("never" if g is None else f"{g:.1f}" for g in goal)
    out["min/run"] = f"{statistics.mean(rows[-1]['minutes'] for rows in per_seed):.1f}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rows", help=f"comma-separated, from {list(ROWS)} (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one core each)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/fidelity"))
    parser.add_argument("--before", action="store_true",
                        help="also summarise the before-fix-s<seed> runs (see above)")
    parser.add_argument("extra", nargs="*", help="key=value overrides for every row")
    args = parser.parse_args()
    names = args.rows.split(",") if args.rows else list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, s) for n in names for s in seeds]
    tic = time.time()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(
            lambda job: run(job[0], ROWS[job[0]], job[1], 1e9, args.epochs, out, args.extra,
                            ROOT / "configs/logic.yaml"), jobs))
    print(f"Logic fidelity: train answer accuracy by epoch window, {args.epochs} epochs per run, "
          f"{len(seeds)} seeds per row, {args.jobs} parallel, {time.time() - tic:.0f} s in all\n")
    rows = [{"row": name, **values} for name, values in REFERENCE.items()]
    if args.before:
        before = [{"name": "before-fix", "seed": s, "dir": out / f"before-fix-s{s}"} for s in seeds]
        missing = [str(r["dir"]) for r in before if not (r["dir"] / "summary.json").exists()]
        if missing:
            parser.error(f"--before: no finished runs at {missing} (see the docstring)")
        rows.append(summarize_row("before-fix (f0028d6, reference-like)", before))
    rows += [summarize_row(name, [r for r in results if r["name"] == name]) for name in names]
    columns = list(rows[-1])
    print_table([{c: row.get(c, "") for c in columns} for row in rows])


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
