"""Tables over seeds from finished run directories: find a run of a name and seed under a
folder (a single run or a replica), read its final metrics, and summarise rows over seeds
(mean ± sample standard deviation) and against a control seed by seed (paired differences).

Shared by ``mannrl compare`` (``mannrl_gym.compare``) and ``benchmarks/learning.py``.
"""

from __future__ import annotations

import glob
import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from mannrl_gym.checkpoint import MetricsLog

LAST_EVALUATIONS = 5  # a run's figure: mean over its last 5 evaluations (single epochs are noisy)


def finished(out: Path, name: str, seed: int) -> Path | None:
    """The finished run of ``name`` and ``seed`` under ``out``: a single run's directory
    (``<name>-s<seed>``) or a replica of a replicated run (``<name>[-s<a>-<b>]/seed<seed>``);
    None when none has written its summary. So a table can grow by seeds across invocations
    and mix runs made either way."""
    return next((d for d in run_places(out, name, seed) if (d / "summary.json").exists()), None)


def epochs_short(run_dir: Path) -> tuple[int, int] | None:
    """(epochs trained, epochs its config asks) of ``run_dir`` (a run with a summary) where it
    stopped short of them (``max_minutes``: such a run has a summary too), else None."""
    summary = json.loads((run_dir / "summary.json").read_text() or "{}")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    wanted = saved.get("epochs") if isinstance(saved, dict) else None
    trained = summary.get("epochs", wanted)
    return (trained, wanted) if isinstance(wanted, int) and trained < wanted else None


def complete(run_dir: Path) -> bool:
    """Whether ``run_dir`` (a run with a summary) trained all its config's epochs."""
    return epochs_short(run_dir) is None


def started(out: Path, name: str, seed: int) -> Path | None:
    """A run of ``name`` and ``seed`` under ``out`` that has metrics but no summary yet (one
    killed part-way, or still going); None when there is none."""
    return next((d for d in run_places(out, name, seed) if (d / "metrics.jsonl").exists()
                 and not (d / "summary.json").exists()), None)


def run_places(out: Path, name: str, seed: int) -> list[Path]:
    """Where a run of ``name`` and ``seed`` may lie under ``out`` (see ``finished``)."""
    replicated = re.compile(rf"{re.escape(name)}-s\d+-\d+")  # not another name's: name-slow-s0-9
    return [out / f"{name}-s{seed}", out / name / f"seed{seed}",
            *sorted(d for d in out.glob(f"{glob.escape(name)}-s*-*/seed{seed}")
                    if replicated.fullmatch(d.parent.name))]


def evaluated_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` that were evaluated (``eval_every``), read as
    training reads them (``checkpoint.MetricsLog``: a cut-off last line is skipped)."""
    return evaluated(MetricsLog(Path(run_dir) / "metrics.jsonl").read())


def evaluated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metrics rows that were evaluated (``eval_every``)."""
    return [r for r in rows if r.get("train/f1") is not None]


def final_metrics(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """Each key's mean over the last LAST_EVALUATIONS evaluated rows (NaN where none has it)."""
    window = rows[-LAST_EVALUATIONS:]
    out = {}
    for key in keys:
        values = [r[key] for r in window if r.get(key) is not None]
        out[key] = sum(values) / len(values) if values else float("nan")
    return out


def spread(values: np.ndarray) -> float:
    """Sample standard deviation (ddof 1); NaN for fewer than two values."""
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def seed_stats(values: Sequence[float]) -> dict[str, float]:
    """``{"mean", "sd", "n"}`` of per-seed values."""
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "sd": spread(array), "n": len(array)}


def paired_stats(values: Sequence[float], control: Sequence[float]) -> dict[str, Any]:
    """Per-seed differences ``values - control`` (same order = same seeds): their mean, sd,
    and on how many seeds the difference is > 0 (ahead), < 0 (behind), = 0 (tied)."""
    gaps = np.asarray(values, dtype=float) - np.asarray(control, dtype=float)
    return {"mean": float(gaps.mean()), "sd": spread(gaps), "n": len(gaps),
            "ahead": int((gaps > 0).sum()), "behind": int((gaps < 0).sum()),
            "tied": int((gaps == 0).sum()), "differences": [float(g) for g in gaps]}


def over_seeds(rows: list[dict], keys: list[str], label: str = "variant") -> list[dict]:
    """One row per ``rows[i][label]``: mean and spread (sample standard deviation) over its
    seeds, as text, with the range of epochs its runs reached."""
    out = []
    for name in dict.fromkeys(r[label] for r in rows):
        mine = [r for r in rows if r[label] == name]
        row = {label: name, "seeds": len(mine),
               "epochs": f"{min(r['epochs'] for r in mine)}-{max(r['epochs'] for r in mine)}"}
        for key in keys:
            stats = seed_stats([r[key] for r in mine])
            row[key] = f"{stats['mean']:.3f} ± {stats['sd']:.3f}"
        out.append(row)
    return out


def paired(rows: list[dict], keys: list[str], reference: str, label: str = "variant") -> list[dict]:
    """One row per ``label`` other than ``reference``: mean ± spread over seeds of (row -
    reference) on the same seed, and on how many seeds the row is ahead."""
    base = {r["seed"]: r for r in rows if r[label] == reference}
    out = []
    for name in dict.fromkeys(r[label] for r in rows if r[label] != reference):
        mine = [r for r in rows if r[label] == name and r["seed"] in base]
        if not mine:
            continue
        row = {label: f"{name} - {reference}", "seeds": len(mine)}
        for key in keys:
            stats = paired_stats([r[key] for r in mine], [base[r["seed"]][key] for r in mine])
            row[key] = f"{stats['mean']:+.3f} ± {stats['sd']:.3f} ({stats['ahead']} ahead)"
        out.append(row)
    return out


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def text_table(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as aligned plain-text columns."""
    columns = list(rows[0].keys())
    widths = {c: max(len(c), *(len(fmt(r[c])) for r in rows)) for c in columns}
    lines = [" | ".join(c.ljust(widths[c]) for c in columns),
             "-+-".join("-" * widths[c] for c in columns)]
    lines += [" | ".join(fmt(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    """``rows`` (dicts with the same keys) as a markdown table."""
    columns = list(rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
