"""Keep the finished runs of a table: copy each one's config.yaml, metrics.jsonl and
summary.json from where it trained into this folder, as ``<agent>-s<seed>/``.

    python results/keep.py RUNS/pg-2048 results/pg-2048

A run trained alone (``RUNS/pg-2048/mannrl-s0``) and a replica of runs trained together
(``RUNS/pg-2048/mannrl-s0-2/seed1``, or ``mannrl/seed1``) are kept alike; a run not finished
(no summary.json yet) is left. A kept run is never overwritten by another: a run of the same
name whose files differ stops the copy with both named.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

FILES = ("config.yaml", "metrics.jsonl", "summary.json")
SAME_RUN = ("config.yaml", "metrics.jsonl")  # a kept summary.json may say more (data_sha256)


def finished_runs(source: Path) -> dict[str, Path]:
    """``<agent>-s<seed>`` -> run directory, for every finished run under ``source``."""
    runs = {}
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        if (folder / "summary.json").is_file() and re.fullmatch(r".+-s\d+", folder.name):
            runs[folder.name] = folder
        label = re.sub(r"-s\d+-\d+$", "", folder.name)
        for replica in sorted(folder.glob("seed*")):
            if (replica / "summary.json").is_file() and re.fullmatch(r"seed\d+", replica.name):
                runs[f"{label}-s{replica.name[4:]}"] = replica
    return runs


def keep(source: Path, kept: Path) -> list[str]:
    """Copy the finished runs under ``source`` not yet in ``kept``; return their names."""
    copied = []
    for name, run in finished_runs(source).items():
        target = kept / name
        if target.is_dir():
            differ = [f for f in SAME_RUN if (target / f).read_bytes() != (run / f).read_bytes()]
            if differ:
                sys.exit(f"keep.py: {target} holds another run than {run} ({', '.join(differ)} "
                         f"differ); remove one of them")
            continue
        target.mkdir(parents=True)
        for file in FILES:
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
    copied = keep(args.source, args.kept)
    print(f"kept {len(copied)} run(s) in {args.kept}: {', '.join(copied) or 'none new'}")


if __name__ == "__main__":
    main()
