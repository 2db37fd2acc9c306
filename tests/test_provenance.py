"""Which code trained a run (``mannrl_gym.provenance``): kept in the checkpoint, listed in
summary.json, and a resume on another version says so."""

import json

import pytest
import yaml

from mannrl_gym import checkpoint, compare, provenance
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


def test_a_data_file_edited_after_the_run_began_stops_resume_predict_and_compare(tmp_path,
                                                                                capsys):
    """The sha256 of each data file is kept; a file edited since stops a resume (it would
    train on other sentences), predict and plot (another vocabulary: a size mismatch) and a
    compare that reuses the run (a table over other data), each in one line."""
    from mannrl_gym import cli
    from mannrl_gym.config import ConfigError
    from test_sentence_env import ENGLISH, sentence_config

    english = tmp_path / "tiny.en"
    english.write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    run = train(sentence_config((str(english),), tmp_path, epochs=1, run_name="mannrl-s0"))
    digest = provenance.data_sha256(sentence_config((str(english),), tmp_path))["data_path"]
    assert checkpoint.load(run / "checkpoint.pt")["data_sha256"] == {"data_path": digest}
    assert json.loads((run / "summary.json").read_text())["data_sha256"] == {"data_path": digest}
    metrics = (run / "metrics.jsonl").read_bytes()

    english.write_text("\n".join(reversed(ENGLISH)) + "\nQuiz? Jazz!\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run), "epochs=2"]) == 2
    said = capsys.readouterr().err
    assert f"data_path {english} has changed since the run read it" in said
    assert "a resume would train on other data" in said and "Traceback" not in said
    assert (run / "metrics.jsonl").read_bytes() == metrics  # nothing trained
    assert cli.main(["predict", str(run), "Hi."]) == 2
    assert "another vocabulary" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="the table would mix runs on other data"):
        compare.finished_run(tmp_path / "runs", "mannrl", 0, sentence_config(
            (str(english),), tmp_path, epochs=1))
    request = compare.Request(tmp_path / "c.yaml", ["mannrl"], [0], tmp_path / "runs", 1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(
        sentence_config((str(english),), tmp_path, epochs=1).to_dict()))
    (row,) = compare.status(request)  # --status says so too, where training would stop
    assert row["state"] == "finished" and any("other bytes" in c for c in row["changed"])

    english.write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")  # restored: it goes on
    assert cli.main(["train", "--resume", str(run), "epochs=2"]) == 0
    assert checkpoint.load(run / "checkpoint.pt")["epoch"] == 2
    moved = english.rename(tmp_path / "moved.en")  # the same bytes elsewhere: the same data
    assert cli.main(["train", "--resume", str(run), "epochs=3", f"data_path={moved}"]) == 0
    (tmp_path / "other.en").write_text("\n".join(ENGLISH[1:]) + "\n", encoding="utf-8")
    assert cli.main(["train", "--resume", str(run), "epochs=4",
                     f"data_path={tmp_path / 'other.en'}"]) == 2
    said = capsys.readouterr().err  # other bytes at the new place: not the data moved
    assert f"key 'data_path' '{tmp_path / 'other.en'}' does not hold the bytes the run read " \
           f"at '{moved}'" in said and "a resume would train on other data" in said


def test_a_finished_run_read_back_with_its_data_elsewhere_is_the_same_run(tmp_path):
    """A table's runs read on another machine name their files at the paths they had there:
    the same bytes (the sha256 kept in summary.json) make them the same data; without the
    sha256, or with other bytes, the run is another config's."""
    import shutil

    from mannrl_gym.config import ConfigError
    from test_sentence_env import ENGLISH, sentence_config

    here = tmp_path / "here"
    here.mkdir()
    (here / "tiny.en").write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    run = train(sentence_config((str(here / "tiny.en"),), tmp_path, epochs=1,
                                run_name="mannrl-s0"))
    moved = tmp_path / "elsewhere"
    shutil.move(here, moved)
    config = sentence_config((str(moved / "tiny.en"),), tmp_path, epochs=1)
    assert compare.finished_run(tmp_path / "runs", "mannrl", 0, config) == run
    (moved / "tiny.en").write_text("\n".join(ENGLISH[::-1]) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="with another config .data_path"):
        compare.finished_run(tmp_path / "runs", "mannrl", 0, config)  # other bytes
    (moved / "tiny.en").write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    assert compare.finished_run(tmp_path / "runs", "mannrl", 0, config) == run
    summary = json.loads((run / "summary.json").read_text())
    del summary["data_sha256"]  # a run from before the sha256 was kept: its path decides
    (run / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ConfigError, match="with another config .data_path"):
        compare.finished_run(tmp_path / "runs", "mannrl", 0, config)
    assert yaml.safe_load((run / "config.yaml").read_text())["data_path"] == str(
        here / "tiny.en")


def test_a_large_files_sha256_is_read_once_and_kept_on_disk(tmp_path, monkeypatch):
    """A file at or above DIGEST_CACHE_FROM keeps its sha256 on disk by its path, size and
    time: another process reads the digest, not the file (a 5 GB vectors file)."""
    import hashlib
    import os

    monkeypatch.setattr(provenance, "DIGEST_CACHE", tmp_path / "cache")
    monkeypatch.setattr(provenance, "DIGEST_CACHE_FROM", 4)
    data = tmp_path / "vectors.txt"
    data.write_bytes(b"word 0.1 0.2\n")
    first = provenance.file_sha256(data)
    assert first == hashlib.sha256(b"word 0.1 0.2\n").hexdigest()
    assert len(list((tmp_path / "cache").iterdir())) == 1
    stamp = os.stat(data)
    data.write_bytes(b"word 0.3 0.4\n")  # the same size and, set back, the same time
    os.utime(data, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    provenance._sha256.cache_clear()  # as a new process
    assert provenance.file_sha256(data) == first  # read from the disk cache
    os.utime(data, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))  # touched: hashed anew
    assert provenance.file_sha256(data) == hashlib.sha256(b"word 0.3 0.4\n").hexdigest()
