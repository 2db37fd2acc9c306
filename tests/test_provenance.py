"""Which code trained a run (``mannrl_gym.provenance``): kept in the checkpoint, listed in
summary.json, and a resume on another version says so."""

import json

from mannrl_gym import checkpoint, provenance
from mannrl_gym.trainer import train

from conftest import small_config


def test_code_version_names_this_checkout():
    version = provenance.code_version()
    assert version.startswith(provenance.__version__)
    if (provenance.CHECKOUT / ".git").exists():
        assert "+g" in version  # the commit, from git


def test_a_resume_on_other_code_is_recorded_and_said(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    train(small_config(out_dir=str(tmp_path), run_name="run", epochs=1), run_dir=run)
    first = provenance.code_version()
    state = checkpoint.load(run / "checkpoint.pt")
    assert state["code_versions"] == [first]
    assert json.loads((run / "summary.json").read_text())["code_versions"] == [first]
    capsys.readouterr()
    monkeypatch.setattr(provenance, "code_version", lambda: "9.9.9+gother")
    train(small_config(out_dir=str(tmp_path), run_name="run", epochs=2), run_dir=run, resume=True)
    said = capsys.readouterr().out
    assert "resuming on mannrl-gym 9.9.9+gother" in said and first in said
    state = checkpoint.load(run / "checkpoint.pt")
    assert state["code_versions"] == [first, "9.9.9+gother"]
    assert json.loads((run / "summary.json").read_text())["code_versions"] == [first,
                                                                               "9.9.9+gother"]
    resumes = [json.loads(line) for line in (run / "resumes.jsonl").read_text().splitlines()]
    assert resumes[-1]["code"] == "9.9.9+gother"
    # the same code again: nothing to say, nothing added
    train(small_config(out_dir=str(tmp_path), run_name="run", epochs=3), run_dir=run, resume=True)
    assert "resuming on" not in capsys.readouterr().out
    assert checkpoint.load(run / "checkpoint.pt")["code_versions"] == [
        first, "9.9.9+gother"]
