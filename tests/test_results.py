"""The kept runs of the long tables (results/): each finished, at its table's epochs, with
the config its table's `mannrl compare` arguments give."""

import re
import shlex

import pytest
import yaml

from mannrl_gym import cli

from conftest import ROOT, SHARED_DATA

TABLES = yaml.safe_load((ROOT / "results" / "tables.yaml").read_text())
STATUS_ROW = re.compile(r"^\| (\S+) \| (\d+) \| ([^|]+) \| (\d+) \|")


def test_every_kept_run_folder_belongs_to_a_table():
    folders = {p.name for p in (ROOT / "results").iterdir() if p.is_dir()}
    assert folders <= set(TABLES), f"folders without arguments in tables.yaml: {folders - set(TABLES)}"
    for name, arguments in TABLES.items():
        assert "--out" not in arguments, f"{name}: its folder is its --out"
        assert "--epochs" in arguments, f"{name}: its epochs say when a run is finished"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the tables' data not at {SHARED_DATA}")
@pytest.mark.parametrize("name", sorted(TABLES))
def test_kept_runs_are_finished_with_their_tables_config(name, capsys, monkeypatch):
    folder = ROOT / "results" / name
    kept = sorted(p for p in folder.glob("*-s*") if p.is_dir()) if folder.is_dir() else []
    for run in kept:
        assert sorted(f.name for f in run.iterdir()) == ["config.yaml", "metrics.jsonl",
                                                         "summary.json"], run
    monkeypatch.chdir(ROOT)  # the configs' data paths are relative to the repository
    arguments = shlex.split(TABLES[name])
    assert cli.main(["compare", *arguments, "--out", f"results/{name}", "--status"]) == 0
    status = capsys.readouterr().out
    epochs = arguments[arguments.index("--epochs") + 1]
    rows = {f"{m[1]}-s{m[2]}": (m[3].strip(), m[4])
            for m in map(STATUS_ROW.match, status.splitlines()) if m and m[2].isdigit()}
    for run in kept:
        assert rows[run.name] == ("finished", epochs), (run.name, status)
    assert "other config" not in status
