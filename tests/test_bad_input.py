"""Wrong input on purpose (issue 23): each is one line on stderr, exit 2, nothing half-written,
or the right behaviour."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import gymnasium
import pytest
import yaml

import mannrl_gym  # noqa: F401  (registers the ids)
from mannrl_gym import cli
from mannrl_gym.errors import DataError
from mannrl_gym.trainer import train

from conftest import ROOT, for_task, small_config

LOGIC = str(ROOT / "configs/logic.yaml")
QUICK = ["num_sequences=300", "epochs=1", "eval_batch_size=64", "wandb_mode=disabled",
         "progress=false"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A run of one epoch; tests copy it before damaging it."""
    return train(small_config(out_dir=str(tmp_path_factory.mktemp("runs")), run_name="r",
                              epochs=1))


@pytest.fixture
def run_copy(finished_run, tmp_path):
    return shutil.copytree(finished_run, tmp_path / "copy")


def error_line(capsys) -> str:
    """stderr of a command that failed with exit 2: one line, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_too_few_sequences_for_a_validation_split_is_one_line(tmp_path, capsys):
    assert cli.main(["train", LOGIC, *QUICK, "num_sequences=1", f"out_dir={tmp_path}"]) == 2
    assert "num_sequences" in error_line(capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["train", "--resume", "{run}", "epochs=2"], ["plot", "{run}"]])
def test_a_checkpoint_of_garbage_text_is_named_and_plot_writes_nothing(run_copy, capsys, command):
    (run_copy / "checkpoint.pt").write_text("hello world, not a checkpoint\n")
    before = sorted(p.name for p in run_copy.iterdir())
    assert cli.main([part.format(run=run_copy) for part in command]) == 2
    assert "checkpoint.pt: not a checkpoint" in error_line(capsys)
    assert sorted(p.name for p in run_copy.iterdir()) == before  # no curves.png alone


def test_plot_out_a_regular_file_is_refused(run_copy, tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert cli.main(["plot", str(run_copy), "--out", str(target)]) == 2
    assert "is not a directory" in error_line(capsys)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("argv", [["train", "--resume"], ["plot"], ["predict"]])
def test_a_runs_file_given_for_its_folder_names_the_folder(run_copy, capsys, argv):
    name = "metrics.jsonl" if argv == ["plot"] else "checkpoint.pt"
    assert cli.main([*argv, str(run_copy / name)]) == 2
    assert f"a file of a run; give the run's folder: {run_copy}" in error_line(capsys)


def test_a_run_folder_that_is_not_there_says_where_it_was_looked_for(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--resume", "runs/nope"]) == 2
    assert f"runs/nope: no such folder (looked for {tmp_path / 'runs/nope'})" in error_line(capsys)


def test_a_torn_last_metrics_line_is_dropped_on_resume_and_skipped_by_plot(run_copy, capsys):
    metrics = run_copy / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"epoch": 2, "train/f')
    assert cli.main(["plot", str(run_copy), "--out", str(run_copy / "figures")]) == 0
    assert (run_copy / "figures" / "curves.png").is_file()
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_copy), "epochs=2"]) == 0
    assert "dropped an incomplete last line" in capsys.readouterr().out
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2]


def test_a_row_appended_after_a_torn_line_does_not_join_it(tmp_path):
    from mannrl_gym.checkpoint import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append({"epoch": 1})
    log.append({"epoch": 2})
    assert log.read() == [{"epoch": 1}, {"epoch": 2}] and log.torn is None
    log.path.write_text(log.path.read_text() + '{"epoch": 3, "train/f')  # kill -9 mid-write
    log.append({"epoch": 3})
    assert log.read() == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}] and log.torn is None
    assert log.path.read_text().endswith('{"epoch": 3}\n')


@pytest.mark.parametrize("override, key", [("memory_size=10000000", "memory_size"),
                                           ("eval_batch_size=100000000", "eval_batch_size"),
                                           ("hidden_size=1000000000", "hidden_size")])
def test_a_run_too_big_for_memory_is_refused_before_it_allocates(tmp_path, capsys, override, key):
    assert cli.main(["train", LOGIC, *QUICK, override, f"out_dir={tmp_path}"]) == 2
    err = error_line(capsys)
    assert "would allocate at least" in err and "GiB" in err and f"lower {key}" in err
    assert not any(tmp_path.iterdir())


def test_the_footprint_of_table_1_is_small_and_grows_with_the_batch():
    from mannrl_gym.footprint import estimate
    from mannrl_gym.tasks import build_task

    config = small_config()
    task = build_task(config)
    small = estimate(config, task)
    big = estimate(small_config(batch_size=256), task)
    assert sum(small.values()) < 64 * 2**20
    assert big["training slots"] > 8 * small["training slots"]
    assert big["evaluation slots"] == small["evaluation slots"]


def test_batch_size_beyond_the_training_sequences_is_refused_with_the_count(tmp_path, capsys):
    from mannrl_gym.tasks.logic import make_task

    sequences = len(make_task(300, 0).train)
    assert cli.main(["train", LOGIC, *QUICK, "batch_size=1000", f"out_dir={tmp_path}"]) == 2
    err = error_line(capsys)
    assert f"'batch_size' is 1000, but the training split holds {sequences} sequences" in err
    assert not any(tmp_path.iterdir())


GOOD_ROWS = [json.dumps({"input": list(w) + ["?"], "target": ["."] + list(w)})
             for w in ("abc", "bca", "cab", "acb", "bac") * 8]


@pytest.mark.parametrize("row, says", [
    ('{"input": ["a"], "target": ["b"], "answer": 1}', "'answer' must list step indices"),
    ('{"input": ["a", 1], "target": ["b", "c"]}', "'input' symbols must be strings, got 1"),
    ('{"input": ["a", null], "target": ["b", "c"]}', "symbols must be strings, got null"),
    ('{"input": ["a", "b"], "target": ["b", [1]]}', "'target' symbols must be strings, got [1]"),
    ('{"input": ["a", NaN], "target": ["b", "c"]}', "NaN is not JSON"),
])
def test_a_bad_jsonl_row_is_named_by_its_line(tmp_path, capsys, row, says):
    data = tmp_path / "task.jsonl"
    data.write_text("\n".join(GOOD_ROWS[:3] + [row] + GOOD_ROWS[3:]) + "\n")
    assert cli.main(["train", LOGIC, *for_task("jsonl", QUICK), "task=jsonl",
                     f"data_path={data}",
                     f"out_dir={tmp_path / 'runs'}"]) == 2
    err = error_line(capsys)
    assert f"task.jsonl:4: " in err and says in err
    assert not (tmp_path / "runs").exists()


def test_a_latin_1_jsonl_file_is_named_with_the_line(tmp_path, capsys):
    data = tmp_path / "task.jsonl"
    data.write_bytes(("\n".join(GOOD_ROWS[:4] + ['{"input": ["é"], "target": ["ü"]}']) + "\n")
                     .encode("latin-1"))
    assert cli.main(["train", LOGIC, *for_task("jsonl", QUICK), "task=jsonl",
                     f"data_path={data}",
                     f"out_dir={tmp_path / 'runs'}"]) == 2
    assert "task.jsonl:5: not valid UTF-8" in error_line(capsys)


@pytest.mark.parametrize("extra", [[], ["seeds=0-1"]])
def test_out_dir_an_existing_file_is_refused(tmp_path, capsys, extra):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert cli.main(["train", LOGIC, *QUICK, *extra, f"out_dir={target}"]) == 2
    assert "a-file exists and is not a directory" in error_line(capsys)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("name", ["../escaped", "a/b", "..", "a\\b"])
def test_run_name_cannot_leave_out_dir(tmp_path, capsys, name):
    out = tmp_path / "runs"
    assert cli.main(["train", LOGIC, *QUICK, f"out_dir={out}", f"run_name={name}"]) == 2
    assert "key 'run_name' must be a plain folder name" in error_line(capsys)
    assert not any(tmp_path.iterdir())


@pytest.fixture
def no_wandb_key(tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    return tmp_path / "home" / ".netrc"


@pytest.mark.parametrize("extra", [[], ["seeds=0-1"]])
def test_wandb_online_without_a_key_stops_before_the_run(tmp_path, capsys, no_wandb_key, extra):
    assert cli.main(["train", LOGIC, *QUICK, *extra, "wandb_mode=online",
                     f"out_dir={tmp_path / 'runs'}"]) == 2
    assert "no wandb API key" in error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_wandb_online_from_the_environment_is_named_so(tmp_path, capsys, no_wandb_key,
                                                       monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    quick = [arg for arg in QUICK if not arg.startswith("wandb_mode=")]
    assert cli.main(["train", LOGIC, *quick, f"out_dir={tmp_path / 'runs'}"]) == 2
    assert "'online' (WANDB_MODE in the environment), but no wandb API key" in error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_a_wandb_key_in_netrc_or_the_environment_is_found(no_wandb_key, monkeypatch):
    from mannrl_gym.tracking import wandb_key_found

    assert not wandb_key_found()
    no_wandb_key.parent.mkdir()
    no_wandb_key.write_text("machine api.wandb.ai\n  login user\n  password 0123456789abcdef\n")
    no_wandb_key.chmod(0o600)
    assert wandb_key_found()
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert not wandb_key_found()  # the key is for another host
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    assert wandb_key_found()


def _interrupt_training(out_dir, extra: list[str], checkpoint_path, signum=None):
    """Start `mannrl train` for many epochs, send ``signum`` (SIGINT) once ``checkpoint_path``
    exists; (exit code, stdout, stderr)."""
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "mannrl_gym.cli", "train", LOGIC, *QUICK, "epochs=500",
               f"out_dir={out_dir}", "run_name=r", *extra]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not checkpoint_path.exists() and time.monotonic() < deadline \
            and process.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # into a later epoch, maybe mid-checkpoint
    process.send_signal(signum or signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


@pytest.mark.parametrize("extra, replica", [([], ""), (["seeds=0-1"], "seed1")])
def test_ctrl_c_stops_with_a_resume_line_and_an_intact_checkpoint(tmp_path, extra, replica):
    from mannrl_gym import checkpoint

    run = tmp_path / "r"
    code, out, err = _interrupt_training(tmp_path, extra, run / replica / "checkpoint.pt")
    assert code == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("interrupted at epoch ")
    assert lines[0].endswith(f"; resume with: mannrl train --resume {run}")
    epoch = int(lines[0].split()[3].rstrip(";"))
    saved = checkpoint.load(run / replica / "checkpoint.pt")["epoch"]
    assert saved in (epoch - 1, epoch)  # the epoch in progress, or the one just saved
    assert not list(run.rglob(".*.tmp"))


def _bootstrap_ready() -> bool:
    """bootstrap.py would reuse this checkout's .venv as it is (its stamp current), so a test
    may run it without installing anything."""
    import hashlib

    stamp = ROOT / ".venv" / ".mannrl-installed"
    spec = __import__("runpy").run_path(str(ROOT / "bootstrap.py"))
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + spec["TORCH"].encode())
    return stamp.exists() and stamp.read_text() == wanted.hexdigest()


def _bootstrap_at_first_checkpoint(command: list[str], run, **popen) -> subprocess.Popen:
    """``command`` (bootstrap.py train) started in a session of its own, once ``run`` has its
    first checkpoint (or the process ended, or 120 s passed)."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               start_new_session=True, **popen)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists() and time.monotonic() < deadline \
            and process.poll() is None:
        time.sleep(0.2)
    return process


@pytest.mark.skipif(not _bootstrap_ready(), reason="bootstrap.py has not set up .venv here")
def test_ctrl_c_on_bootstrap_train_is_one_line_naming_its_own_resume(tmp_path):
    """The README's first command, stopped as a terminal stops it (SIGINT to the whole
    foreground group): one line, no traceback from bootstrap.py, and the resume it names
    works."""
    run = tmp_path / "r"
    command = [sys.executable, "bootstrap.py", "train", *QUICK, "epochs=500",
               f"out_dir={tmp_path}", "run_name=r"]
    process = _bootstrap_at_first_checkpoint(
        command, run, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].endswith(f"; resume with: python3 bootstrap.py train --resume {run}")
    saved = __import__("mannrl_gym.checkpoint").checkpoint.load(run / "checkpoint.pt")["epoch"]
    resumed = subprocess.run([sys.executable, "bootstrap.py", "train", "--resume", str(run),
                              f"epochs={saved + 1}"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"run: {run} (resumed after epoch {saved})" in resumed.stdout + resumed.stderr


@pytest.mark.skipif(not _bootstrap_ready(), reason="bootstrap.py has not set up .venv here")
def test_kill_of_bootstrap_train_stops_the_run_itself(tmp_path):
    """`kill PID` of `python3 bootstrap.py train` (SIGTERM to that one process, not its group)
    stops the training: bootstrap becomes the trainer, so no trainer is left orphaned."""
    run = tmp_path / "r"
    process = _bootstrap_at_first_checkpoint(
        [sys.executable, "bootstrap.py", "train", *QUICK, "epochs=500", f"out_dir={tmp_path}",
         "run_name=r"], run)
    os.kill(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "resume with: python3 bootstrap.py train --resume" in err
    time.sleep(0.5)  # no process of this run is left (pgrep: 1 when none matches)
    assert subprocess.run(["pgrep", "-f", f"out_dir={tmp_path}"]).returncode == 1


@pytest.mark.skipif(not _bootstrap_ready(), reason="bootstrap.py has not set up .venv here")
def test_bootstrap_train_takes_a_config_named_first(tmp_path):
    """`python3 bootstrap.py train CONFIG key=value` trains CONFIG (not Table 1's Logic with
    CONFIG read as an override); without one it trains configs/logic.yaml."""
    import subprocess
    import sys

    config = tmp_path / "mine.yaml"
    config.write_text("task: logic\nnum_sequences: 64\nhidden_size: 8\n")
    for first, hidden in ([str(config)], 8), (["--config", str(config)], 8), ([], 64):
        done = subprocess.run([sys.executable, "bootstrap.py", "train", *first, "epochs=1",
                               "progress=false", "wandb_mode=disabled", f"out_dir={tmp_path}",
                               f"run_name=r{len(first)}"], cwd=ROOT, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        saved = yaml.safe_load((tmp_path / f"r{len(first)}" / "config.yaml").read_text())
        assert saved["hidden_size"] == hidden


def test_a_config_key_given_twice_is_named_with_its_lines(tmp_path, capsys):
    config = tmp_path / "twice.yaml"
    config.write_text("epochs: 2\nlr: 0.001\nepochs: 5\n")
    assert cli.main(["train", str(config), f"out_dir={tmp_path / 'runs'}"]) == 2
    assert "key 'epochs' is given twice (lines 1 and 3)" in error_line(capsys)


def test_a_training_config_given_as_a_sweep_file_says_so(capsys):
    assert cli.main(["sweep", LOGIC]) == 2
    err = error_line(capsys)
    assert "a training config" in err and "not a sweep file" in err and "mannrl train" in err


@pytest.mark.parametrize("argv, hint", [
    (["sweep", "configs/sweeps/logic.yaml", "epohcs=1"], "did you mean 'epochs'?"),
    (["compare", "--task", "logc", "--agents", "mannrl"], "did you mean 'logic'?")])
def test_typos_in_sweep_keys_and_compare_tasks_get_a_hint(argv, hint, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(argv) == 2
    assert hint in error_line(capsys)


@pytest.mark.parametrize("override, hint", [("agent=manrl", "did you mean 'mannrl'?"),
                                            ("task=logc", "did you mean 'logic'?")])
def test_a_misspelt_agent_or_task_gets_a_suggestion(tmp_path, capsys, override, hint):
    assert cli.main(["train", LOGIC, override, f"out_dir={tmp_path}"]) == 2
    assert hint in error_line(capsys)


def test_resume_with_fewer_epochs_than_done_says_so(run_copy, capsys):
    checkpoint_bytes = (run_copy / "checkpoint.pt").read_bytes()
    assert cli.main(["train", "--resume", str(run_copy), "epochs=2"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_copy), "epochs=1"]) == 2
    assert "already has 2 epochs, and epochs=1 is fewer" in error_line(capsys)
    assert (run_copy / "checkpoint.pt").read_bytes() != checkpoint_bytes  # epoch 2's, kept


def test_replicas_with_progress_false_print_every_evaluated_epoch(tmp_path, capsys):
    assert cli.main(["train", LOGIC, *QUICK, "epochs=2", "seeds=0-1",
                     f"out_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "epoch    1  2 replicas" in out and "epoch    2  2 replicas" in out


def test_a_killed_replicated_run_leaves_its_finished_epochs_in_the_log(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    log = tmp_path / "train.log"
    metrics = tmp_path / "r" / "seed1" / "metrics.jsonl"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "mannrl_gym.cli", "train", LOGIC, *QUICK, "epochs=500",
             "progress=true", "seeds=0-1", f"out_dir={tmp_path}", "run_name=r"], cwd=ROOT,
            stdout=handle, stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
                 "OMP_NUM_THREADS": "1"})  # a log file: block-buffered unless flushed
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not (
                metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert "epoch    1  2 replicas" in log.read_text()  # written before epoch 2 trained


def test_predictor_write_takes_one_string_as_one_text(tmp_path):
    from mannrl_gym.predict import Predictor
    from test_sentence_env import ENGLISH, sentence_config

    english = tmp_path / "tiny.en"
    english.write_text("\n".join(ENGLISH) + "\n", encoding="utf-8")
    predictor = Predictor(train(sentence_config((str(english),), tmp_path, epochs=1,
                                                run_name="p")))
    alone = predictor.write("Go on.", max_chars=5)
    assert [w.source for w in alone] == ["Go on."]
    assert alone == predictor.write(["Go on."], max_chars=5)


def test_the_envs_still_take_a_task_smaller_than_the_trainers_batch():
    import gymnasium

    env = gymnasium.make("MannRL-Logic-v0", num_sequences=10)  # batch_size 16: not the env's
    observation, _ = env.reset(seed=0)
    assert observation.shape == env.observation_space.shape


@pytest.mark.parametrize("override, says", [
    ("seed=-1", "key 'seed' must lie in [0, "),  # was Gymnasium's traceback
    ("seed=100000000000000000000000", "key 'seed' must lie in [0, "),  # was torch's overflow
    ("max_minutes=nan", "key 'max_minutes' must be > 0, got nan"),  # was a run with no budget
    ("run_name=" + "x" * 300, "key 'run_name' must be at most"),  # was OSError: name too long
    ("num_threads=100000", "key 'num_threads' must lie in [1, "),  # was a crash in OpenMP
])
def test_values_the_libraries_below_cannot_take_are_refused_up_front(tmp_path, capsys, override,
                                                                     says):
    assert cli.main(["train", LOGIC, *QUICK, override, f"out_dir={tmp_path}"]) == 2
    assert says in error_line(capsys)
    assert not any(tmp_path.iterdir())


def test_an_error_in_a_key_from_the_file_does_not_blame_the_command_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("task: pos\ndata_path: nowhere.conllu\nval_path: nowhere.conllu\n")
    assert cli.main(["train", str(config), *QUICK, f"out_dir={tmp_path}"]) == 2
    err = error_line(capsys)
    assert "bad.yaml (with overrides)" in err and "(command-line override)" not in err


@pytest.mark.parametrize("seeds, says", [("0-100000", "names more than 4096 seeds"),
                                         ("0-99999999999999", "names more than 4096 seeds"),
                                         ("0-4000,0", "repeats seed(s) [0]")])
def test_a_huge_seed_range_is_refused_at_once(tmp_path, capsys, seeds, says):
    """Was a hang: every seed counted against the whole list (quadratic), or a list of 10^14."""
    assert cli.main(["train", LOGIC, *QUICK, f"seeds={seeds}", f"out_dir={tmp_path}"]) == 2
    assert says in error_line(capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, "task: logic\n# caf\xe9\n".encode("latin-1")])
@pytest.mark.parametrize("kind", ["config", "conllu"])
def test_a_config_or_treebank_that_is_not_utf8_is_named_with_its_line(tmp_path, capsys, content,
                                                                       kind):
    bad = tmp_path / f"bad.{'yaml' if kind == 'config' else 'conllu'}"
    bad.write_bytes(content)
    sample = ROOT / "mannrl_gym/sample_data"
    args = ([str(bad)] if kind == "config" else
            [LOGIC, "task=pos", f"data_path={bad}", f"val_path={sample / 'pos-val.conllu'}",
             f"vectors_path={sample / 'vectors-16d.txt'}"])
    quick = QUICK if kind == "config" else for_task("pos", QUICK)
    assert cli.main(["train", *args, *quick, f"out_dir={tmp_path / 'runs'}"]) == 2
    assert f"{bad}:2: not valid UTF-8" in error_line(capsys)  # was UnicodeDecodeError
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, says", [("task:\tlogic\n", ":1: not valid YAML: found character"),
                                        ("lr: !!python/object/apply:os.system ['true']\n",
                                         ":1: not valid YAML: could not determine a constructor")])
def test_invalid_yaml_is_one_line_naming_the_line(tmp_path, capsys, text, says):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert cli.main(["train", str(bad), *QUICK, f"out_dir={tmp_path}"]) == 2
    assert f"{bad}{says}" in error_line(capsys)  # was PyYAML's excerpt over several lines


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"[unclosed: {\n", b"- a list\n"])
def test_plot_of_a_run_whose_config_yaml_is_garbage_is_one_line(run_copy, capsys, content):
    (run_copy / "config.yaml").write_bytes(content)
    before = sorted(p.name for p in run_copy.iterdir())
    assert cli.main(["plot", str(run_copy)]) == 2  # was UnicodeDecodeError / a YAML traceback
    assert f"{run_copy / 'config.yaml'}" in error_line(capsys)
    assert sorted(p.name for p in run_copy.iterdir()) == before


def test_compare_out_a_regular_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert cli.main(["compare", "--agents", "no_memory", "--seeds", "0", "--epochs", "1",
                     "--out", str(target), "num_sequences=300"]) == 2  # was FileExistsError
    assert "is not a directory" in error_line(capsys)
    assert target.read_text() == "keep me"


def test_plot_of_a_run_with_no_epoch_logged_says_so_and_writes_nothing(run_copy, capsys):
    (run_copy / "metrics.jsonl").write_text("")
    before = sorted(p.name for p in run_copy.iterdir())
    assert cli.main(["plot", str(run_copy)]) == 2  # was an empty curves.png
    assert "no epoch logged yet" in error_line(capsys)
    assert sorted(p.name for p in run_copy.iterdir()) == before


@pytest.mark.parametrize("content, says", [
    (bytes(range(256)) * 4, ":2: not valid UTF-8"),  # was UnicodeDecodeError
    (b"[unclosed: {\n", ":2: not valid YAML"),  # was PyYAML's excerpt over several lines
    (b"method: bayes\nmethod: grid\n", ": key 'method' is given twice (lines 1 and 2)"),  # was the last
])
def test_a_sweep_file_that_is_not_utf8_yaml_or_repeats_a_key_is_one_line(tmp_path, capsys,
                                                                          content, says):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_bytes(content)
    assert cli.main(["sweep", str(sweep), "--trials", "1", "--out-dir", str(tmp_path / "out"),
                     "epochs=1"]) == 2
    assert f"{sweep}{says}" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_sweep_workers_far_beyond_the_cores_are_refused_before_any_start(tmp_path, capsys):
    """Was a thousand worker processes, each importing torch, for one trial."""
    assert cli.main(["sweep", str(ROOT / "configs/sweeps/logic.yaml"), "--trials", "1",
                     "--workers", "1000", "--out-dir", str(tmp_path / "out"), "epochs=1"]) == 2
    assert "--workers 1000 is more than 8 per core" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_sweep_out_dir_a_regular_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert cli.main(["sweep", str(ROOT / "configs/sweeps/logic.yaml"), "--trials", "1",
                     "--out-dir", str(target), "epochs=1"]) == 2  # was NotADirectoryError
    assert "exists and is not a directory" in error_line(capsys)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("extra, replica", [([], ""), (["seeds=0-1"], "seed1")])
def test_sigterm_stops_like_ctrl_c_with_exit_143(tmp_path, extra, replica):
    """Was a silent death (exit -15): no resume line."""
    import signal

    run = tmp_path / "r"
    code, _, err = _interrupt_training(tmp_path, extra, run / replica / "checkpoint.pt",
                                       signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith(
        f"; resume with: mannrl train --resume {run}"), err


def test_a_data_path_that_is_not_a_regular_file_says_so(tmp_path):
    """/dev/null exists: "not found" would send the user looking for a missing file."""
    with pytest.raises(DataError, match="/dev/null: not a regular file"):
        gymnasium.make("MannRL-Sentence-v0", data_path="/dev/null")


def test_an_out_dir_that_cannot_be_made_names_the_key(capsys):
    assert cli.main(["train", "configs/logic.yaml", "out_dir=/proc/mannrl-x", "epochs=1",
                     "num_sequences=200", "wandb_mode=disabled"]) == 2
    err = capsys.readouterr().err
    assert "key 'out_dir': cannot make the run directory /proc/mannrl-x/" in err
    assert "Errno" not in err
