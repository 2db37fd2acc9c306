"""How far the memory reaches: Table 3's memorization against sentence length.

Each band is one ``mannrl compare`` (agents x seeds, same epochs) on a set of 500 sentences of
one length band; the table and figure put the bands side by side: train F1 (the paper's
metric), writing accuracy and the share of sentences written back exactly, mean ± sd over
seeds and each seed's point. A run's figure is, as in ``mannrl compare``, the mean of its
last 5 evaluations. Finished runs under ``--out`` are read, not trained again.

    OMP_NUM_THREADS=1 python benchmarks/length_bands.py --seeds 0-4 --epochs 16 eval_every=2

Bands (source characters after cleaning; ``--bands`` picks some): the 500 shortest texts of
UD English EWT dev + test (1-15 characters), EWT's texts of 17-32 and 33-64 characters, and
PUD's 500 shortest (13-107, the project's long band). Writes ``length_bands.md``,
``length_bands.json`` and ``length_bands.png`` under ``--out``; each band's runs and its own
compare table (``band.md``) under ``--out/<band>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym import checkpoint, compare  # noqa: E402
from mannrl_gym.config import parse_overrides  # noqa: E402
from mannrl_gym.errors import ConfigError, DataError  # noqa: E402
from mannrl_gym.replicas.spec import parse_seeds  # noqa: E402
from mannrl_gym.seed_table import markdown_table  # noqa: E402

# band name -> (config file, keys that select its sentences, what the band holds)
BANDS: dict[str, tuple[str, dict[str, Any], str]] = {
    "ewt-shortest": ("configs/sentence-ewt.yaml", {}, "EWT's 500 shortest"),
    "ewt-17-32": ("configs/sentence-ewt.yaml", {"min_chars": 17, "max_chars": 32},
                  "EWT, 17-32 characters"),
    "ewt-33-64": ("configs/sentence-ewt.yaml", {"min_chars": 33, "max_chars": 64},
                  "EWT, 33-64 characters"),
    "pud-shortest": ("configs/sentence.yaml", {}, "PUD's 500 shortest"),
}
METRICS = (("train/f1", "train F1"), ("train/answer_acc_sentence", "writing acc"),
           ("train/answer_exact_sentence", "exact"))


def source_lengths(run_dir: Path) -> dict[str, float]:
    """min / mean / max source characters of a run's training sentences (its summary)."""
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    return summary["data"]["train_source_chars"]


def run_band(name: str, args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, Any]:
    """Train what is missing of one band's agents x seeds; its compare summary."""
    config, keys, _ = BANDS[name]
    agent_of = compare.parse_agents(args.agents)
    labels = list(agent_of)
    common, own = compare.split_overrides(extra, labels)
    seeds = args.band_seeds.get(name, args.seed_list)
    request = compare.Request(ROOT / config, labels, seeds, Path(args.out) / name,
                              args.epochs, args.control if args.control in labels else None,
                              {**keys, **common}, agent_of, own, name="band")
    return compare.compare(request, say=print)


def band_rows(name: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per agent of one band."""
    lengths = source_lengths(Path(summary["runs"][0]["dir"]))
    rows = []
    for agent, stats in summary["per_agent"].items():
        rows.append({"band": BANDS[name][2],
                     "source chars (min/mean/max)": f"{lengths['min']}/{lengths['mean']}/"
                                                    f"{lengths['max']}",
                     "agent": agent, "seeds": len(summary["seeds"]),
                     **{title: f"{stats[key]['mean']:.3f} ± {stats[key]['sd']:.3f}"
                        for key, title in METRICS}})
    return rows


def figure(results: dict[str, dict[str, Any]], path: Path, epochs: int) -> Path:
    """One panel per metric: x the band's mean source length, a line per agent (mean, sd
    bars), each seed a dot."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.8))
    agents = next(iter(results.values()))["agents"]
    for agent_index, agent in enumerate(agents):
        for ax, (key, title) in zip(axes, METRICS):
            xs, means, sds = [], [], []
            for summary in results.values():
                if agent not in summary["per_agent"]:
                    continue
                x = source_lengths(Path(summary["runs"][0]["dir"]))["mean"]
                stats = summary["per_agent"][agent][key]
                xs.append(x)
                means.append(stats["mean"])
                sds.append(stats["sd"])
                seeds = [r[key] for r in summary["runs"] if r["agent"] == agent]
                ax.scatter([x] * len(seeds), seeds, s=9, alpha=0.45, color=f"C{agent_index}")
            ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, color=f"C{agent_index}",
                        label=agent)
            ax.set_xscale("log")
            ax.set_xlabel("mean source length of the band (characters)")
            ax.set_title(title)
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"Table 3 memorization by sentence length, {epochs} epochs a run")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="mannrl,frozen_weights,lstm")
    parser.add_argument("--control", default="frozen_weights")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--bands", default=",".join(BANDS),
                        help=f"comma-separated, from {', '.join(BANDS)}")
    parser.add_argument("--band-seeds", default="",
                        help="other seeds for some bands, e.g. ewt-33-64=0-2;pud-shortest=0-2")
    parser.add_argument("--out", default="benchmarks/results/length-bands")
    args, extra = parser.parse_known_args(argv)
    try:
        args.seed_list = parse_seeds(args.seeds, source="--seeds")
        band_seeds = {}
        for item in filter(None, (i.strip() for i in args.band_seeds.split(";"))):
            band, _, seeds = item.partition("=")
            band_seeds[band.strip()] = parse_seeds(seeds, source="--band-seeds")
        args.band_seeds = band_seeds
        bands = [b.strip() for b in args.bands.split(",") if b.strip()]
        unknown = [b for b in [*bands, *args.band_seeds] if b not in BANDS]
        if unknown:
            raise ConfigError(f"command line: --bands has unknown band(s) {unknown}; "
                              f"choose from {', '.join(BANDS)}")
        overrides = parse_overrides(extra)
        results = {band: run_band(band, args, overrides) for band in bands}
    except (ConfigError, DataError) as error:
        print(f"length_bands: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    rows = [row for band, summary in results.items() for row in band_rows(band, summary)]
    text = (f"Table 3 memorization by length band, {args.epochs} epochs a run, seeds "
            f"{args.seeds} (a band's own: its seeds column); a run's figure is its mean over its last 5 evaluations; mean ± sd "
            f"over seeds\n\n{markdown_table(rows)}\n")
    checkpoint.atomic_write_text(out / "length_bands.md", text)
    checkpoint.atomic_write_text(out / "length_bands.json", json.dumps(
        {band: {"rows": [r for r in rows if r["band"] == BANDS[band][2]],
                "runs": summary["runs"]} for band, summary in results.items()}, indent=2))
    figure(results, out / "length_bands.png", args.epochs)
    print(text)
    print(f"written: {out / 'length_bands.md'}, length_bands.json, length_bands.png")
    return 0


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
