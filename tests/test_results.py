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
    folders = {p.name for p in (ROOT / "results").iterdir()
               if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders <= set(TABLES), f"folders without arguments in tables.yaml: {folders - set(TABLES)}"
    for name, arguments in TABLES.items():
        assert "--out" not in arguments, f"{name}: its folder is its --out"
        assert "--epochs" in arguments, f"{name}: its epochs say when a run is finished"


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"the tables' data not at {SHARED_DATA}")
@pytest.mark.parametrize("name", sorted(TABLES))
def test_kept_runs_are_finished_with_their_tables_config(name, capsys, monkeypatch):
    folder = ROOT / "results" / name
    kept = sorted(p for p in folder.glob("*-s*") if p.is_dir()) if folder.is_dir() else []
    for run in kept:  # a checkpoint or wandb folder beside them is ignored by git
        assert {"config.yaml", "metrics.jsonl", "summary.json"} <= {f.name for f in
                                                                   run.iterdir()}, run
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


def test_keep_copies_finished_runs_alone_or_replicated_and_overwrites_none(tmp_path):
    import runpy

    keep = runpy.run_path(str(ROOT / "results" / "keep.py"))["keep"]
    source, kept = tmp_path / "runs", tmp_path / "kept"
    for run in ("mannrl-s0", "mannrl-s1", "no_memory-s0-1/seed0", "no_memory-s0-1/seed1",
                "rep/seed0"):  # a replicated `mannrl train` run, not a table's: not kept
        (source / run).mkdir(parents=True)
        for name in ("config.yaml", "metrics.jsonl", "checkpoint.pt"):
            (source / run / name).write_text(f"{run} {name}")
        if run != "mannrl-s1":  # not finished
            (source / run / "summary.json").write_text("{}")
    assert keep(source, kept) == ["mannrl-s0", "no_memory-s0", "no_memory-s1"]
    assert sorted(f.name for f in (kept / "no_memory-s1").iterdir()) == [
        "config.yaml", "metrics.jsonl", "summary.json"]
    assert (kept / "no_memory-s1" / "config.yaml").read_text() == \
        "no_memory-s0-1/seed1 config.yaml"
    assert keep(source, kept) == []  # kept already: nothing new
    (source / "mannrl-s0" / "resumes.jsonl").write_text('{"changed": {"lr": [1e-4, 5e-4]}}')
    assert keep(source, kept) == [] and (kept / "mannrl-s0" / "resumes.jsonl").is_file()
    short = source / "frozen_weights-s0"  # max_minutes stopped it at epoch 1 of 3
    short.mkdir()
    (short / "config.yaml").write_text("epochs: 3\n")
    (short / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (short / "summary.json").write_text('{"epochs": 1}')
    said = []
    assert keep(source, kept, said.append) == []
    assert f"left frozen_weights-s0 ({short}): stopped by max_minutes at epoch 1 of 3" in said
    assert f"left mannrl-s1 ({source / 'mannrl-s1'}): not finished" in said
    (source / "mannrl-s0" / "metrics.jsonl").write_text("another run")
    with pytest.raises(SystemExit, match="holds another run"):
        keep(source, kept)
