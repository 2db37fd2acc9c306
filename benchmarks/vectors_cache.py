"""Word-vector loading: first load (parse the text, write the binary cache) against reloads.

Writes a synthetic GloVe-format file of --words words x --dim values (the timing depends on
the file's size, not on what the numbers mean), then loads --request words from it.

    python benchmarks/vectors_cache.py [--words 120000] [--dim 300] [--request 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym.vectors import load_vectors  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--words", type=int, default=120_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--request", type=int, default=20_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.txt"
        with path.open("w") as handle:
            for start in range(0, args.words, 10_000):
                block = rng.standard_normal((min(10_000, args.words - start), args.dim))
                handle.writelines(f"w{start + i} " + " ".join(f"{x:.5f}" for x in row) + "\n"
                                  for i, row in enumerate(block))
        wanted = [f"w{i}" for i in rng.choice(args.words, args.request, replace=False)]
        rows = []
        for label in ("first load (parse + write cache)", "reload (binary cache)", "reload again"):
            tic = time.perf_counter()
            table, missing = load_vectors(path, wanted, cache_dir=Path(folder) / "cache")
            rows.append((label, time.perf_counter() - tic))
        size = path.stat().st_size / 2**20
    print(f"vectors file: {args.words} words x {args.dim} values ({size:.0f} MiB text); "
          f"{args.request} words requested, {len(missing)} missing\n")
    for label, seconds in rows:
        print(f"{label:34s} {seconds:7.2f} s")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
