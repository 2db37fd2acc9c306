"""Keep the finished runs of a table: copy each one's config.yaml, metrics.jsonl and
summary.json from where it trained into this folder, as ``<agent>-s<seed>/``.

    python results/keep.py RUNS/pg-2048 results/pg-2048

A run trained alone (``RUNS/pg-2048/mannrl-s0``) and a replica of runs trained together
(``RUNS/pg-2048/mannrl-s0-2/seed1``: compare's two layouts) are kept alike; a run not finished
(no summary.json yet, or stopped by max_minutes before its epochs) is left, and named. A
resumed run's resumes.jsonl (the keys each resume changed) is kept with it. A kept run is
never overwritten by another: a run of the same name whose files differ stops the copy with
both named.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from mannrl_gym.seed_table import epochs_short

FILES = ("config.yaml", "metrics.jsonl", "summary.json")
WHERE_RESUMED = "resumes.jsonl"  # a resumed run's: kept with it
SAME_RUN = ("config.yaml", "metrics.jsonl")  # a kept summary.json may say more (data_sha256)


def table_runs(source: Path) -> dict[str, Path]:
    """``<agent>-s<seed>`` -> run directory, for every run under ``source`` (finished or
    not)."""
    runs = {}
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        if (folder / "metrics.jsonl").is_file() and re.fullmatch(r".+-s\d+", folder.name):
            runs[folder.name] = folder
        if not re.fullmatch(r".+-s\d+-\d+", folder.name):  # not compare's replicas
            continue
        label = re.sub(r"-s\d+-\d+$", "", folder.name)
        for replica in sorted(folder.glob("seed*")):
            if (replica / "metrics.jsonl").is_file() and re.fullmatch(r"seed\d+", replica.name):
                runs[f"{label}-s{replica.name[4:]}"] = replica
    return runs


def unfinished(run: Path) -> str | None:
    """Why ``run`` is not kept yet (None: it trained all its epochs)."""
    if not (run / "summary.json").is_file():
        return "not finished"
    short = epochs_short(run)
    return f"stopped by max_minutes at epoch {short[0]} of {short[1]}" if short else None


def keep(source: Path, kept: Path, say=print) -> list[str]:
    """Copy the finished runs under ``source`` not yet in ``kept``; return their names
    (``say`` names the runs left)."""
    copied = []
    for name, run in table_runs(source).items():
        if why := unfinished(run):
            say(f"left {name} ({run}): {why}")
            continue
        target = kept / name
        files = FILES + ((WHERE_RESUMED,) if (run / WHERE_RESUMED).is_file() else ())
        if target.is_dir():
            differ = [f for f in SAME_RUN if (target / f).read_bytes() != (run / f).read_bytes()]
            if differ:
                sys.exit(f"keep.py: {target} holds another run than {run} ({', '.join(differ)} "
                         f"differ); remove one of them")
            if (run / WHERE_RESUMED).is_file() and not (target / WHERE_RESUMED).is_file():
                shutil.copy2(run / WHERE_RESUMED, target / WHERE_RESUMED)  # kept before it was
            continue
        target.mkdir(parents=True)
        for file in files:
            shutil.copy2(run / file, target / file)
        copied.append(name)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the table's --out, where its runs trained")
    parser.add_argument("kept", type=Path, help="this folder's table, e.g. results/pg-2048")
    args = parser.parse_args()
    if not args.source.is_dir():
        sys.exit(f"keep.py: {args.source}: not a folder")
    if not table_runs(args.source):
        sys.exit(f"keep.py: {args.source}: holds no run of a table (`mannrl compare --out`: "
                 f"<agent>-s<seed>/ or <agent>-s<a>-<b>/seed<seed>/)")
    copied = keep(args.source, args.kept)
    print(f"kept {len(copied)} run(s) in {args.kept}: {', '.join(copied) or 'none new'}")


if __name__ == "__main__":
    main()
