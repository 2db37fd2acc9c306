"""benchmarks/learning.py finds finished runs of either layout, so a seeds table can grow
across invocations (seeds 0-1 as single runs, 2-4 as replicas) and be tabulated together."""

import importlib.util
import json
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"
_spec = importlib.util.spec_from_file_location("learning_benchmark", _path)
learning = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(learning)
finished, over_seeds, row_for = learning.finished, learning.over_seeds, learning.row_for


def _run(directory, train_f1):
    directory.mkdir(parents=True)
    rows = [{"epoch": e, "minutes": e / 10, "train/f1": train_f1} for e in range(1, 6)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (directory / "summary.json").write_text("{}")


def test_finished_reads_single_runs_and_replicas(tmp_path):
    _run(tmp_path / "paper-s0", 0.90)              # a single run
    _run(tmp_path / "paper-s2-4" / "seed3", 0.94)  # a replica of a replicated run
    _run(tmp_path / "paper+lr-1e-3-s2-4" / "seed2", 0.5)  # another variant's replica
    (tmp_path / "paper-s2-4" / "seed4").mkdir()    # started, never finished
    assert finished(tmp_path, "paper", 0) == tmp_path / "paper-s0"
    assert finished(tmp_path, "paper", 3) == tmp_path / "paper-s2-4" / "seed3"
    assert finished(tmp_path, "paper", 2) is None
    assert finished(tmp_path, "paper", 4) is None
    assert finished(tmp_path, "paper+lr-1e-3", 2) == tmp_path / "paper+lr-1e-3-s2-4" / "seed2"
    _run(tmp_path / "paper-slow-s0-1" / "seed1", 0.5)  # "paper-slow", not a run of "paper"
    assert finished(tmp_path, "paper", 1) is None
    assert finished(tmp_path, "paper-slow", 1) == tmp_path / "paper-slow-s0-1" / "seed1"


def test_seeds_of_both_layouts_in_one_table(tmp_path):
    _run(tmp_path / "paper-s0", 0.90)
    _run(tmp_path / "paper-s2-4" / "seed3", 0.94)
    rows = [row_for({"name": "paper", "seed": s, "dir": finished(tmp_path, "paper", s)},
                    ["train/f1"], (1,)) for s in (0, 3)]
    (table,) = over_seeds(rows, ["train/f1"])
    assert table["seeds"] == 2 and table["train/f1"] == "0.920 ± 0.028"
