"""The figures of ``mannrl compare``, drawn from its summary (``compare.summarise``).

``<name>.png``         each run's figure (its mean over its last evaluations) per agent, one
                       line per seed across the agents, each agent's mean a bar.
``<name>-curves.png``  the figure metric at every evaluated epoch: per agent the mean over its
                       seeds (line) and their lowest to highest (band), so how the seeds
                       spread shows at every epoch, not only at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mannrl_gym.figure_backend import pyplot
from mannrl_gym.seed_table import evaluated_rows


def _title(summary: dict[str, Any]) -> str:
    epochs, seeds = summary["epochs"], len(summary["seeds"])
    return (f"{summary['task']}, {epochs} epoch{'s' if epochs != 1 else ''}, "
            f"{seeds} seed{'s' if seeds != 1 else ''}")


def _metric_title(summary: dict[str, Any]) -> str:
    return next(m["title"] for m in summary["metrics"] if m["key"] == summary["figure_metric"])


def final_values(summary: dict[str, Any], path: Path) -> Path:
    """The figure metric per seed per agent (lines join one seed across agents) and each
    agent's mean."""
    plt = pyplot()
    agents, runs, key = summary["agents"], summary["runs"], summary["figure_metric"]
    fig, ax = plt.subplots(figsize=(1.6 * len(agents) + 3.5, 4.2))
    for seed in summary["seeds"]:
        values = [next(r[key] for r in runs if r["agent"] == a and r["seed"] == seed)
                  for a in agents]
        ax.plot(range(len(agents)), values, marker="o", alpha=0.6, label=f"seed {seed}")
    means = [summary["per_agent"][a][key]["mean"] for a in agents]
    ax.scatter(range(len(agents)), means, marker="_", s=900, color="black", zorder=3,
               label="mean")
    ax.set_xticks(range(len(agents)), agents)
    ax.set_ylabel(_metric_title(summary))
    ax.set_title(_title(summary))
    ax.set_xlim(-0.5, len(agents) - 0.5)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def curves(summary: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per agent, the figure metric at each epoch that all its seeds evaluated: ``epochs``,
    and over seeds ``mean``, ``low`` and ``high`` (each a list, one value per epoch)."""
    key, out = summary["figure_metric"], {}
    for agent in summary["agents"]:
        per_seed = [{r["epoch"]: r[key] for r in evaluated_rows(Path(run["dir"]))
                     if r.get(key) is not None}
                    for run in summary["runs"] if run["agent"] == agent]
        epochs = sorted(set.intersection(*(set(values) for values in per_seed)))
        table = np.array([[values[e] for e in epochs] for values in per_seed], dtype=float)
        out[agent] = {"epochs": epochs,
                      "mean": table.mean(axis=0).tolist() if epochs else [],
                      "low": table.min(axis=0).tolist() if epochs else [],
                      "high": table.max(axis=0).tolist() if epochs else []}
    return out


def curves_figure(summary: dict[str, Any], path: Path) -> Path:
    """``curves(summary)`` drawn: a line per agent (its seeds' mean), its band the seeds'
    lowest to highest."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for agent, curve in summary["curves"].items():
        line, = ax.plot(curve["epochs"], curve["mean"], label=agent,
                        marker="." if len(curve["epochs"]) < 40 else None)
        ax.fill_between(curve["epochs"], curve["low"], curve["high"], alpha=0.2,
                        color=line.get_color(), linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{_metric_title(summary)} (mean; band: lowest to highest seed)")
    ax.set_title(_title(summary))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
