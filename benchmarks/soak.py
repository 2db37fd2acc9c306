"""Soak benchmark: train Logic for many epochs and show that memory use stays flat.

Prints the process's resident memory after every epoch and the growth between the first
and the last quarter of the run. The usual learning benchmark runs a few epochs per variant;
the default here is ten times that.

    python benchmarks/soak.py [--epochs 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mannrl_gym import trainer  # noqa: E402
from mannrl_gym.config import load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def resident_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    samples: list[tuple[int, float, float]] = []
    tic = time.time()

    class Probe(trainer.Tracker):  # called once per epoch by the trainer
        def log(self, row):
            samples.append((row["epoch"], time.time() - tic, resident_mib()))
            super().log(row)

    trainer.Tracker = Probe
    with tempfile.TemporaryDirectory() as out:
        config = load(ROOT / "configs/logic.yaml", {"epochs": args.epochs, "wandb_mode": "disabled",
                                                     "progress": False, "out_dir": out})
        trainer.train(config)
    print(f"\nSoak: {args.epochs} epochs of Logic (Table 1)\n")
    print(f"{'epoch':>5} {'seconds':>8} {'RSS MiB':>8}")
    for epoch, seconds, rss in samples:
        print(f"{epoch:5d} {seconds:8.1f} {rss:8.1f}")
    quarter = max(1, len(samples) // 4)
    first = sum(s[2] for s in samples[:quarter]) / quarter
    last = sum(s[2] for s in samples[-quarter:]) / quarter
    print(f"\nRSS first quarter {first:.1f} MiB, last quarter {last:.1f} MiB, "
          f"growth {last - first:+.1f} MiB ({(last - first) / first * 100:+.1f}%)")


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
