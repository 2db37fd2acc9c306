"""``mannrl compare``: a tiny agents x seeds comparison from the command line, its table, its
paired differences against the run directories' own summaries, reuse of finished runs, a
user's registered agent, and one-line errors for bad input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from mannrl_gym import agent_registry
from mannrl_gym.cli import main

TINY = ["num_sequences=200", "eval_batch_size=64", "holdout_distinct=10"]
TITLES = ["train answer acc", "held-out answer acc", "held-out long-range acc", "held-out F1"]


def _compare(out: Path, agents: str, seeds: str = "0-1", *extra: str) -> int:
    return main(["compare", "--task", "logic", "--agents", agents, "--seeds", seeds,
                 "--epochs", "1", "--out", str(out), *TINY, *extra])


def _final(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["final"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    assert _compare(out, "mannrl,lstm", "0-1", "--control", "lstm") == 0
    return out


def test_table_columns_and_files(compared, capsys):
    summary = json.loads((compared / "compare.json").read_text())
    assert [m["title"] for m in summary["metrics"]] == TITLES
    assert set(summary["per_agent"]) == {"mannrl", "lstm"}
    assert summary["trained"] == {"mannrl": 2, "lstm": 2}
    table = (compared / "compare.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| agent"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["agent", *TITLES]
    assert "| mannrl - lstm |" in table
    assert (compared / "compare.png").stat().st_size > 1000
    assert (compared / "compare-curves.png").stat().st_size > 1000
    # mannrl's two seeds trained as replicas of one process, the LSTM's one after another
    assert (compared / "mannrl-s0-1" / "seed1" / "summary.json").exists()
    assert (compared / "lstm-s0" / "summary.json").exists()


def test_curves_are_each_epochs_mean_and_range_over_the_seeds(compared):
    summary = json.loads((compared / "compare.json").read_text())
    key = summary["figure_metric"]
    for agent, runs in (("mannrl", [compared / "mannrl-s0-1" / f"seed{s}" for s in (0, 1)]),
                        ("lstm", [compared / f"lstm-s{s}" for s in (0, 1)])):
        rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
                for run in runs]
        values = np.array([[r[key] for r in mine if r.get(key) is not None] for mine in rows])
        curve = summary["curves"][agent]
        assert curve["epochs"] == [r["epoch"] for r in rows[0] if r.get(key) is not None]
        assert curve["mean"] == pytest.approx(values.mean(axis=0).tolist())
        assert curve["low"] == pytest.approx(values.min(axis=0).tolist())
        assert curve["high"] == pytest.approx(values.max(axis=0).tolist())


def test_paired_differences_match_the_runs(compared):
    summary = json.loads((compared / "compare.json").read_text())
    for key in ("validation/answer_acc", "train/answer_acc", "validation/f1"):
        mine = [_final(compared / "mannrl-s0-1" / f"seed{s}")[key] for s in (0, 1)]
        control = [_final(compared / f"lstm-s{s}")[key] for s in (0, 1)]
        gaps = np.array(mine) - np.array(control)
        got = summary["paired"]["mannrl"][key]
        assert got["mean"] == pytest.approx(gaps.mean())
        assert got["sd"] == pytest.approx(gaps.std(ddof=1))
        assert got["ahead"] == int((gaps > 0).sum()) and got["behind"] == int((gaps < 0).sum())
        assert summary["per_agent"]["mannrl"][key]["mean"] == pytest.approx(np.mean(mine))


def test_second_call_trains_nothing(compared, capsys):
    before = {p: p.stat().st_mtime_ns for p in compared.rglob("checkpoint.pt")}
    assert len(before) == 4
    assert _compare(compared, "mannrl,lstm", "0-1", "--control", "lstm") == 0
    assert "0 run(s) trained now, 4 read back" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in compared.rglob("checkpoint.pt")} == before
    assert json.loads((compared / "compare.json").read_text())["trained"] == {"mannrl": 0,
                                                                               "lstm": 0}


def test_status_says_where_each_run_stands_and_trains_nothing(compared, tmp_path, capsys):
    """Finished, partial (a run killed before its summary: its metrics so far) and missing,
    from the command line; nothing trained, nothing written."""
    import shutil
    out = tmp_path / "status"
    shutil.copytree(compared, out)
    (out / "lstm-s1" / "summary.json").unlink()  # as if killed after its first epoch
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    capsys.readouterr()
    assert _compare(out, "mannrl,lstm", "0-2", "--status") == 0
    said = capsys.readouterr().out
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:4])
            for line in said.splitlines() if line.startswith(("| mannrl", "| lstm"))}
    assert rows == {("mannrl", "0", "finished", "1"), ("mannrl", "1", "finished", "1"),
                    ("mannrl", "2", "missing", "0"), ("lstm", "0", "finished", "1"),
                    ("lstm", "1", "partial", "1"), ("lstm", "2", "missing", "0")}
    assert "3 of 6 runs finished, 1 partial" in said
    # trained for, and the estimate of what is left: 0 when finished; a missing run at the
    # pace of its agent's others (these runs: seconds an epoch)
    cells = {tuple(c.strip() for c in line.strip("|").split("|")[:2]):
             [c.strip() for c in line.strip("|").split("|")[5:7]]
             for line in said.splitlines() if line.startswith(("| mannrl", "| lstm"))}
    assert cells[("mannrl", "0")][0].endswith("s") and cells[("mannrl", "0")][1] == "0s"
    assert cells[("mannrl", "2")][0] == "" and cells[("mannrl", "2")][1].endswith("s")
    assert "of training left at the pace of the runs so far" in said
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_status_names_runs_of_another_config(compared, capsys):
    """--status with other overrides than the runs': each run reported with what differs,
    not refused (training would stop at the finished ones)."""
    capsys.readouterr()
    assert _compare(compared, "lstm", "0-1", "--status", "lr=0.01") == 0
    said = capsys.readouterr().out
    assert "| lstm | 0 | finished, other config | 1 |" in said
    assert "0 of 2 runs finished, 0 partial, 2 of another config" in said
    assert "would stop at them" in said and "resumes" not in said
    assert said.count("lr ") == 2 and "0.01 now" in said


def test_bad_data_leaves_no_out_folder(tmp_path, capsys):
    """An error before any run trains (here a data file that is not there) is one line, and
    the --out folder it would have made is not left behind, empty."""
    out = tmp_path / "new-out"
    code = main(["compare", "--config", "configs/sentence-pg.yaml", "--agents", "mannrl",
                 "--seeds", "0", "--epochs", "1", "--out", str(out), "data_path=absent.txt"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "absent.txt" in err
    assert str(Path.cwd() / "absent.txt") in err  # where it was looked for
    assert not out.exists()
    # --status trains nothing: it reports, and says the file is not here
    assert main(["compare", "--config", "configs/sentence-pg.yaml", "--agents", "mannrl",
                 "--seeds", "0", "--out", str(out), "--status", "data_path=absent.txt"]) == 0
    said = capsys.readouterr().out
    assert "| mannrl | 0 | missing | 0 |" in said and "data not here (" in said
    assert "absent.txt" in said and not out.exists()


def test_ctrl_c_says_to_run_the_same_compare_again(tmp_path):
    """Stopped mid-run: one line naming the run and epoch, and that the same command goes on
    (not a `mannrl train --resume` that would leave the table unwritten)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    command = [sys.executable, "-m", "mannrl_gym.cli", "compare", "--task", "logic", "--agents",
               "mannrl", "--seeds", "0", "--epochs", "500", "--out", str(out), *TINY]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "mannrl-s0" / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    lines = [line for line in err.strip().splitlines() if not line.startswith("compare:")]
    assert process.returncode == 130 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("interrupted at epoch ") and f"of {out / 'mannrl-s0'}" in lines[0]
    assert lines[0].endswith("the same mannrl compare command again resumes what it had "
                             "trained and finishes the table")


def test_another_config_in_out_is_refused(compared, capsys):
    assert _compare(compared, "lstm", "0", "lr=0.01") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another config" in err and "lr" in err
    assert "train it further" not in err


def test_a_finished_run_asked_for_more_epochs_names_how_to_extend_it(compared, capsys):
    """Runs of 1 epoch asked for 3: refused (the table would mix budgets), naming the
    resume that trains them further; a replica's is its parent's."""
    capsys.readouterr()
    assert main(["compare", "--task", "logic", "--agents", "lstm,mannrl", "--seeds", "0-1",
                 "--epochs", "3", "--out", str(compared), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"or train it further: mannrl train --resume {compared / 'lstm-s0'} "
                        f"epochs=3"), err
    assert main(["compare", "--task", "logic", "--agents", "mannrl", "--seeds", "0-1",
                 "--epochs", "3", "--out", str(compared), *TINY]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"mannrl train --resume {compared / 'mannrl-s0-1'} epochs=3")


@pytest.mark.parametrize("agents, seeds, words", [
    ("mannrl,nosuch", "0-1", ["nosuch", "registered"]),
    ("mannrl", "3-1", ["--seeds", "3-1"]),
    ("mannrl", "0,x", ["--seeds", "'x'"]),
])
def test_bad_input_is_one_line(tmp_path, capsys, agents, seeds, words):
    out = tmp_path / "out"
    assert _compare(out, agents, seeds) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mannrl: error:")
    assert all(word in err for word in words)
    assert not out.exists()


@pytest.mark.parametrize("jobs, says", [
    ("0", "argument --jobs: must be >= 1, got 0"),
    ("two", "argument --jobs: expected a whole number >= 1, got 'two'"),
    ("100000", "--jobs 100000 is more than 8 per core of this machine"),
])
def test_bad_jobs_are_one_line_before_anything_is_made(tmp_path, capsys, jobs, says):
    out = tmp_path / "out"
    try:
        code = _compare(out, "mannrl", "0-1", "--jobs", jobs)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2 and says in capsys.readouterr().err
    assert not out.exists()


class RecallFirst:
    """Writes the input's first M features into memory: one step of recall, learns nothing."""

    def __init__(self, layout, config, num_slots, seed):
        self.layout = layout

    def act(self, obs):
        memory = np.zeros((len(obs), self.layout.memory_size), np.float32)
        width = min(self.layout.input_dim, self.layout.memory_size)
        memory[:, :width] = obs[:, self.layout.input][:, :width]
        return memory

    explore = act

    def observe(self, obs, reward, info):
        return None

    def start_epoch(self, epoch):
        pass

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("jobs", ["1", "2"])  # 2: each run in a new process, told the agent
def test_a_registered_agent_and_labels(tmp_path, capsys, jobs):
    agent_registry.register_agent("recall_first_test", RecallFirst, "test agent")
    try:
        code = _compare(tmp_path, "recall_first_test,zero=no_memory", "0-1",
                        "--control", "zero", "zero.lr=0.001", "--name", "mine", "--jobs", jobs)
    finally:
        agent_registry.REGISTRY.pop("recall_first_test")
    assert code == 0
    summary = json.loads((tmp_path / "mine.json").read_text())
    assert set(summary["paired"]) == {"recall_first_test"}
    assert (tmp_path / "mine.md").exists() and not (tmp_path / "compare.md").exists()
    zero = yaml_config(tmp_path / ("zero-s0-1/seed0" if jobs == "1" else "zero-s0"))
    assert zero["agent"] == "no_memory" and zero["lr"] == 0.001
    assert yaml_config(tmp_path / "recall_first_test-s1")["lr"] == 0.0001


def yaml_config(run_dir: Path) -> dict:
    import yaml
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def test_defaults_yield_to_the_config_and_the_command_line(tmp_path):
    from mannrl_gym.compare import Request, configs_for, task_config

    def configs(**overrides):
        return configs_for(Request(task_config("logic"), ["lstm", "mannrl"], [0], tmp_path,
                                   overrides=overrides))
    plain = configs()
    assert plain["mannrl"].holdout_distinct == 100 and plain["mannrl"].lr == 0.0001
    assert (plain["lstm"].lr, plain["lstm"].clipping) == (0.001, 1.0)
    random = configs(holdout="random", lr=0.01)
    # the config's own default (null: the split decides) stands where compare's does not apply
    assert random["mannrl"].holdout_distinct is None and random["lstm"].lr == 0.01


def test_sentence_tables_lead_with_train_f1_and_plot_it(tmp_path):
    """Memorization is scored on the training sentences: train F1 (Table 3's metric) leads
    the table and is the figure's metric; perfect memory writes every sentence back."""
    assert main(["compare", "--task", "sentence", "--agents", "no_memory,perfect_memory",
                 "--seeds", "0-1", "--epochs", "1", "--out", str(tmp_path), "data=sample",
                 "--control", "no_memory"]) == 0
    summary = json.loads((tmp_path / "compare.json").read_text())
    assert [m["title"] for m in summary["metrics"]][:3] == ["train F1", "train writing acc",
                                                            "train exact"]
    assert summary["figure_metric"] == "train/f1"
    perfect = summary["per_agent"]["perfect_memory"]
    assert perfect["train/f1"]["mean"] == 1.0 and perfect["train/answer_exact_sentence"]["mean"] == 1.0
    assert summary["paired"]["perfect_memory"]["train/f1"]["ahead"] == 2


def test_status_reads_a_run_killed_mid_write(compared, tmp_path, capsys):
    """A partial run whose metrics.jsonl ends in a torn line (kill -9 mid-write): its
    complete epochs, no traceback."""
    import shutil
    out = tmp_path / "torn"
    shutil.copytree(compared, out)
    (out / "lstm-s1" / "summary.json").unlink()
    with open(out / "lstm-s1" / "metrics.jsonl", "a") as metrics:
        metrics.write('{"epoch": 2, "train/f1": 0.')
    capsys.readouterr()
    assert _compare(out, "lstm", "1", "--status") == 0
    assert "| lstm | 1 | partial | 1 |" in capsys.readouterr().out


def test_a_one_seed_table_gives_values_without_a_spread():
    from mannrl_gym import compare
    from mannrl_gym.seed_table import paired_stats, seed_stats

    metrics = [{"key": "train/f1", "title": "train F1"}]
    summary = {"task": "sentence", "seeds": [2], "epochs": 2048, "metrics": metrics,
               "per_agent": {"mannrl": {"train/f1": seed_stats([0.954])},
                             "frozen_weights": {"train/f1": seed_stats([0.95])}},
               "control": "frozen_weights",
               "paired": {"mannrl": {"train/f1": paired_stats([0.954], [0.95])}}}
    text = compare.markdown(summary)
    assert "nan" not in text
    assert "| mannrl | 0.954 |" in text and "| mannrl - frozen_weights | +0.004 (1 / 0) |" in text


def test_jobs_train_the_same_runs_side_by_side(tmp_path, capfd):
    """--jobs 2: each (agent, seed) a run of its own, two processes at a time; the table is
    the one a single process writes (it trains mannrl's and frozen_weights' seeds as replicas)."""
    assert _compare(tmp_path / "one", "mannrl,frozen_weights", "0-1") == 0
    assert _compare(tmp_path / "two", "mannrl,frozen_weights", "0-1", "--jobs", "2") == 0
    out = capfd.readouterr().out  # the children write to the process's stdout itself
    assert f"[mannrl seed 1] run: {tmp_path / 'two' / 'mannrl-s1'}" in out  # named lines
    one, two = (json.loads((tmp_path / d / "compare.json").read_text())["runs"]
                for d in ("one", "two"))
    assert [Path(r["dir"]).relative_to(tmp_path / "two").as_posix() for r in two] == [
        "mannrl-s0", "mannrl-s1", "frozen_weights-s0", "frozen_weights-s1"]
    assert [Path(r["dir"]).parent.name for r in one] == ["mannrl-s0-1"] * 2 + [
        "frozen_weights-s0-1"] * 2
    strip = [[{k: v for k, v in r.items() if k != "dir"} for r in runs] for runs in (one, two)]
    assert strip[0] == strip[1]


@pytest.mark.parametrize("ctrl_c", [False, True])
def test_sigterm_stops_every_job_and_names_where_each_run_stood(tmp_path, ctrl_c):
    """`kill -TERM` of a --jobs 2 compare, or Ctrl-C (SIGINT to its whole process group, the
    children too): each child stops once, with its checkpoint intact and no traceback (exit
    143 / 130, one line naming both runs), no child outlives it, and the next compare resumes
    the runs where they lie (not as new replicas)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from mannrl_gym import compare
    from mannrl_gym.config import load

    out = tmp_path / "out"
    command = [sys.executable, "-m", "mannrl_gym.cli", "compare", "--task", "logic", "--agents",
               "mannrl", "--seeds", "0-1", "--epochs", "500", "--out", str(out), "--jobs", "2",
               *TINY]
    # a process group of its own, as a terminal gives a command, and Ctrl-C's default action
    # (a shell's background job, as this suite may be, starts with SIGINT ignored)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    runs = [out / "mannrl-s0", out / "mannrl-s1"]
    deadline = time.monotonic() + 120
    while (not all((run / "checkpoint.pt").exists() for run in runs)
           and time.monotonic() < deadline):
        time.sleep(0.2)
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and _parent_pid(p) == process.pid]
    assert len(children) >= 2  # the two jobs (and multiprocessing's resource tracker)
    if ctrl_c:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert process.returncode == (130 if ctrl_c else 143), err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert all(f"of {run}" in lines[-1] for run in runs), err
    assert lines[-1].startswith("interrupted at epoch ") and lines[-1].endswith(
        "the same mannrl compare command again resumes what it had trained and finishes the table")
    time.sleep(1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()
                and _state(pid) != "Z"], "a job outlived its compare"
    config = load(compare.task_config("logic"), {"epochs": 500})
    for jobs in (1, 2):  # resumed alone where they lie, however many jobs
        units = compare.plan("mannrl", [0, 1, 2], config, out, jobs)
        assert [(u.seeds, u.together, u.resuming) for u in units] == [
            ((0,), False, True), ((1,), False, True), ((2,), False, False)]
    # the next command: the killed runs first, then seed by seed across the agents
    fresh = compare.plan("frozen_weights", [0, 1, 2], config, out, 2)
    assert [u.name for u in compare.in_order(units + fresh)] == [
        "mannrl seed 0", "mannrl seed 1", "frozen_weights seed 0", "frozen_weights seed 1",
        "mannrl seed 2", "frozen_weights seed 2"]


def _parent_pid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


class _FailingUnit:
    """A unit whose training fails as bad data would (``compare_jobs`` takes any object with
    ``name``, ``seeds`` and ``train``)."""

    name, seeds = "broken seed 0", (0,)

    def train(self) -> None:
        from mannrl_gym.errors import DataError
        raise DataError("rows.jsonl:3: not valid JSON")


def test_a_job_that_fails_raises_its_error_here():
    from mannrl_gym.compare_jobs import run_in_processes
    from mannrl_gym.errors import DataError

    finished = []
    with pytest.raises(DataError, match="^broken seed 0: rows.jsonl:3: not valid JSON"):
        run_in_processes([_FailingUnit(), _FailingUnit()], 2, lambda u, s: finished.append(u),
                         lambda text: None)
    assert not finished


def test_a_key_for_every_agent_goes_to_the_agents_that_read_it():
    """`--agents pg,frozen_weights agent_window=64`: pg's window, the control untouched (it
    would refuse a key it never reads); one label's own key is checked as given."""
    from mannrl_gym import compare
    from mannrl_gym.config import ConfigError

    def request(overrides, own=None):
        return compare.Request(compare.task_config("logic"), ["pg", "frozen_weights"], [0],
                               Path("unused"), 1, "frozen_weights", overrides,
                               label_overrides=own or {})

    configs = compare.configs_for(request({"agent_window": 64, "pg_sigma": 0.5, "lr": 3e-4}))
    assert (configs["pg"].agent_window, configs["pg"].pg_sigma, configs["pg"].lr) == (64, 0.5, 3e-4)
    fw = configs["frozen_weights"]
    assert (fw.agent_window, fw.pg_sigma, fw.lr) == (128, 0.2, 3e-4)
    with pytest.raises(ConfigError, match="'agent_window' is only read when agent is"):
        compare.configs_for(request({}, {"frozen_weights": {"agent_window": 64}}))


def test_a_run_another_process_trains_is_left_to_it(tmp_path, capsys):
    """Two compares on one --out (two terminals, one core each): the second trains the
    runs the first does not hold, says which it left, and waits for them (exit 75, no
    table); --status shows them as training."""
    import fcntl
    import os

    import shutil

    assert _compare(tmp_path / "before", "mannrl", "0") == 0
    out = tmp_path / "out"
    held = out / "mannrl-s0"  # a run in its first epoch: its config and no summary yet
    held.mkdir(parents=True)
    shutil.copy(tmp_path / "before" / "mannrl-s0" / "config.yaml", held)
    (held / "metrics.jsonl").write_text('{"epoch": 1}\n')
    capsys.readouterr()
    handle = os.open(held, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as `mannrl train` claims its run
    try:
        assert _compare(out, "mannrl,frozen_weights", "0", "--status") == 0
        said = capsys.readouterr().out
        assert f"| mannrl | 0 | training | 1 |" in said
        assert "0 of 2 runs finished, 1 training in another process, 0 partial" in said
        assert _compare(out, "mannrl,frozen_weights", "0") == 75
        captured = capsys.readouterr()
        assert "mannrl seed 0: another process trains it now; left to it" in captured.out
        assert captured.err.strip().splitlines()[-1] == (
            f"mannrl compare: 1 run(s) trained now; the table waits for 1 run(s) that another "
            f"process trains ({held}): run the same command again once they are done (--status "
            f"says where they stand)")
        assert (out / "frozen_weights-s0" / "summary.json").exists()
        assert not (out / "compare.md").exists() and not (held / "checkpoint.pt").exists()
    finally:
        os.close(handle)


class _BuggyUnit:
    """A unit whose training fails with an error that is not the project's own (a bug)."""

    name, seeds = "buggy seed 0", (0,)

    def train(self) -> None:
        raise ValueError("a bug in the agent")


class _DyingUnit:
    """A unit whose process ends without a word, as one killed for memory would."""

    name, seeds = "dying seed 0", (0,)

    def train(self) -> None:
        import os
        os._exit(3)


@pytest.mark.parametrize("unit, says", [
    (_BuggyUnit(),
     r"^buggy seed 0 failed: ValueError: a bug in the agent \(its traceback is above\)"),
    (_DyingUnit(), r"^dying seed 0: its process ended \(exit code 3\) before it finished"),
])
def test_a_job_that_fails_otherwise_is_named_with_its_traceback_above(unit, says, capfd):
    from mannrl_gym.compare_jobs import RunFailed, run_in_processes

    with pytest.raises(RunFailed, match=says):
        run_in_processes([unit], 2, lambda u, s: None, lambda text: None)
    err = capfd.readouterr().err
    assert ("[buggy seed 0] failed:" in err and "ValueError: a bug in the agent" in err) \
        == isinstance(unit, _BuggyUnit)


class BrokenAct(RecallFirst):
    """Fails at its first step (a user's agent with a bug)."""

    def act(self, obs):
        raise ValueError("a bug in my agent")


def test_a_spec_agent_is_labelled_by_its_class_and_its_failure_is_one_line(tmp_path, capfd):
    """`--agents test_compare:RecallFirst` imports the class (as `agent=` does) and labels it
    RecallFirst; a spec agent whose child fails with its own bug: its traceback, then one
    line, exit 1."""
    from mannrl_gym import compare

    try:
        assert compare.parse_agents("test_compare:RecallFirst,zero=no_memory") == {
            "RecallFirst": "test_compare:RecallFirst", "zero": "no_memory"}
        out = tmp_path / "out"
        assert _compare(out, "test_compare:BrokenAct,no_memory", "0", "--jobs", "2") == 1
    finally:
        for spec in ("test_compare:RecallFirst", "test_compare:BrokenAct"):
            agent_registry.REGISTRY.pop(spec, None)
    err = capfd.readouterr().err
    assert "ValueError: a bug in my agent" in err
    assert err.strip().splitlines()[-1].startswith(
        "mannrl compare: error: BrokenAct seed 0 failed: ValueError: a bug in my agent")


@pytest.mark.parametrize("spec, says", [
    ("no_such_module_here:Agent", "--agents names 'no_such_module_here:Agent', but module "
                                  "'no_such_module_here' cannot be imported"),
    ("test_compare:NoSuchClass", "--agents names 'test_compare:NoSuchClass', but module "
                                 "'test_compare' has no 'NoSuchClass'"),
])
def test_a_spec_that_cannot_be_imported_is_one_line(spec, says):
    from mannrl_gym import compare
    from mannrl_gym.errors import ConfigError

    with pytest.raises(ConfigError, match="^command line: " + says.replace("(", r"\(")):
        compare.parse_agents(f"{spec},mannrl")


def test_jobs_refuse_what_a_new_process_cannot_import(monkeypatch):
    """An agent class defined in a notebook (``__main__`` without a file) or a script read
    from standard input: one ConfigError before any child starts, naming the way out."""
    import sys
    import types

    from mannrl_gym.compare_jobs import check_spawnable
    from mannrl_gym.errors import ConfigError

    class Notebook(RecallFirst):
        pass
    Notebook.__module__ = "__main__"
    entry = agent_registry.AgentEntry("notebook_agent", Notebook, "memory_agent", "")
    unit = types.SimpleNamespace(name="notebook_agent seed 0", agent=entry)
    interactive = types.ModuleType("__main__")  # a notebook's or the prompt's: no __file__
    monkeypatch.setitem(sys.modules, "__main__", interactive)
    with pytest.raises(ConfigError, match="agent 'notebook_agent' is defined in this "
                                          "interactive session .* or use --jobs 1"):
        check_spawnable([unit])
    check_spawnable([types.SimpleNamespace(name="mannrl seed 0", agent=None)])  # built-in: fine
    interactive.__file__ = "<stdin>"
    with pytest.raises(ConfigError, match="main script again, but it has no file"):
        check_spawnable([types.SimpleNamespace(name="mannrl seed 0", agent=None)])


def test_task_and_config_together_are_refused(tmp_path, capsys):
    """`--task` and `--config` name the config two ways: argparse's one line, nothing made."""
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--task", "logic", "--config", "configs/logic.yaml", "--agents",
              "mannrl", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "argument --config: not allowed with argument --task" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_runs_log_to_wandb_only_when_asked(tmp_path, monkeypatch):
    """A table's runs skip wandb unless the command asks (wandb_mode=offline, or
    WANDB_MODE in the environment)."""
    from mannrl_gym import compare

    monkeypatch.delenv("WANDB_MODE", raising=False)

    def mode(**overrides) -> str:
        request = compare.Request(compare.task_config("logic"), ["mannrl"], [0], tmp_path,
                                  overrides=overrides)
        return compare.configs_for(request)["mannrl"].wandb_mode

    assert mode() == "disabled" and mode(wandb_mode="offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert mode() == "offline" and mode(wandb_mode="disabled") == "disabled"


def test_a_stop_names_each_child_whatever_it_was_doing():
    """The closing line of a stopped --jobs compare names every child: where its run stood,
    that it stopped before its run began, or that it had finished."""
    from mannrl_gym.compare_jobs import Failure, Stopped

    stopped = Stopped([
        Failure("Interrupted", "", True, "/no/such/run", 3, "mannrl seed 0"),
        Failure("KeyboardInterrupt", "terminated", True, None, None, "mannrl seed 1"),
        Failure("finished", "", True, None, None, "lstm seed 0")])
    assert stopped.where == ("interrupted at epoch 3 of /no/such/run, before its first "
                             "checkpoint (nothing kept), mannrl seed 1 stopped before it began, "
                             "lstm seed 0 had finished")


def test_a_key_no_agent_of_the_table_reads_is_refused(tmp_path):
    """`mannrl train` refuses es_sigma for mannrl; a table of agents none of which reads a
    key refuses it too (one that some agent reads goes to that agent alone)."""
    from mannrl_gym import compare
    from mannrl_gym.config import ConfigError

    def configs(agents: list[str], **overrides):
        return compare.configs_for(compare.Request(compare.task_config("logic"), agents, [0],
                                                   tmp_path, overrides=overrides))

    with pytest.raises(ConfigError, match="key 'es_sigma' is read by none of --agents "
                                          r"\(mannrl\): only es reads it"):
        configs(["mannrl"], es_sigma=0.1)
    with pytest.raises(ConfigError, match="'memory_lr' .* a memory-net key none of them reads"):
        configs(["lstm", "no_memory", "frozen_weights"], memory_lr=1e-3)
    both = configs(["mannrl", "es"], es_sigma=0.1)
    assert both["es"].es_sigma == 0.1 and both["mannrl"].es_sigma != 0.1
    assert not any(tmp_path.iterdir())


def test_a_runs_pace_is_its_recent_minutes_an_epoch():
    from mannrl_gym import compare

    metrics = [{"epoch": e, "minutes": float(e) if e <= 100 else 100.0 + 2.0 * (e - 100)}
               for e in range(1, 201)]  # 1 minute an epoch, then 2
    assert compare._pace(metrics) == 2.0 and compare._pace(metrics[:1]) == 1.0
    assert compare._pace([]) is None
    rows = [{"agent": "a", "state": "finished", "epochs": 200, "minutes": 300.0, "pace": 2.0,
             "changed": [], "replicas": 1, "dir": "out/a-s0"},
            {"agent": "a", "state": "partial", "epochs": 150, "minutes": 200.0, "pace": 2.0,
             "changed": [], "replicas": 1, "dir": "out/a-s1"},
            {"agent": "a", "state": "missing", "epochs": 0, "minutes": 0.0, "pace": None,
             "changed": [], "replicas": 1, "dir": None},
            {"agent": "b", "state": "missing", "epochs": 0, "minutes": 0.0, "pace": None,
             "changed": [], "replicas": 1, "dir": None}]
    compare._estimate_left(rows, 200)
    # finished: 0; partial: its own recent pace; missing: its agent's mean minutes an epoch
    assert [row["left"] for row in rows] == [0.0, 100.0, 200 * (1.5 + 200 / 150) / 2, None]
    assert "1 run of agents that have trained no epoch yet" in compare._time_left(rows)[0]
    assert "about 6h23m" in compare._time_left(rows)[0]  # 100 + 283.3 minutes


def test_replicas_in_one_process_count_their_time_left_once():
    """Two replicas of one process share its clock: 100 minutes over 50 epochs is 1 minute
    an epoch a seed, and their 50 epochs left are 100 minutes of that process, not 200."""
    from mannrl_gym import compare

    rows = [{"agent": "a", "state": "partial", "epochs": 50, "minutes": 100.0, "pace": 2.0,
             "changed": [], "replicas": 2, "dir": f"out/a-s0-1/seed{s}"} for s in (0, 1)]
    rows.append({"agent": "a", "state": "missing", "epochs": 0, "minutes": 0.0, "pace": None,
                 "changed": [], "replicas": 1, "dir": None})
    compare._estimate_left(rows, 100)
    assert [row["left"] for row in rows] == [100.0, 100.0, 100.0]
    assert "about 3h20m of training left" in compare._time_left(rows)[0]


def test_a_key_compare_set_by_default_is_named_as_compares_in_its_error(tmp_path, capsys):
    """Logic's tables hold out 100 distinct sequences (compare's default); data too small for
    them stops in one line that says compare set the key and how to give another value."""
    assert main(["compare", "--task", "logic", "--agents", "mannrl", "--seeds", "0",
                     "--epochs", "1", "--out", str(tmp_path / "c"), "num_sequences=200"]) == 2
    said = capsys.readouterr().err
    assert "key 'holdout_distinct' is 100" in said and \
        "(holdout_distinct=100 is compare's default for its tables; give holdout_distinct=... " \
        "or holdout_distinct=null" in said
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("arguments, said", [
    (["--agents", "mannrl,x y=mannrl"], "label(s) ['x y'] must be non-empty, without '/', '.'"),
    (["--agents", "mannrl,a/b=mannrl"], "label(s) ['a/b'] must be non-empty"),
    (["--agents", "mannrl", "--name", "a b"], "expected a plain file name, without spaces")])
def test_labels_and_table_names_that_would_make_odd_file_names_are_refused(
        arguments, said, tmp_path, capsys):
    with pytest.raises(SystemExit) if "--name" in arguments else contextlib.nullcontext():
        assert main(["compare", *arguments, "--out", str(tmp_path / "c"), "--status"]) == 2
    assert said in capsys.readouterr().err


def test_a_run_max_minutes_stopped_is_partial_and_a_larger_budget_finishes_it(tmp_path, capsys):
    """A table built over sittings with max_minutes: a run it stopped short of --epochs is not
    read back as finished; the same command with a larger budget goes on with it."""
    def compare(*extra: str) -> int:
        return main(["compare", "--task", "logic", "--agents", "mannrl", "--seeds", "0",
                     "--epochs", "3", "--out", str(tmp_path), *TINY, *extra])

    assert compare("max_minutes=1e-9") == 75  # one epoch crosses the budget; no table yet
    said = capsys.readouterr()
    run = tmp_path / "mannrl-s0"
    assert json.loads((run / "summary.json").read_text())["epochs"] == 1
    assert ("1 stopped at max_minutes=1e-09 before 3 epochs (mannrl seed 0): the table waits "
            "for them; run the same command with a larger max_minutes") in said.err
    assert not (tmp_path / "compare.md").exists()
    assert compare("max_minutes=1e-9", "--status") == 0
    assert "| mannrl | 0 | partial | 1 |" in capsys.readouterr().out
    assert compare("max_minutes=1e-9") == 75  # spent: nothing more is trained
    assert "is spent" in capsys.readouterr().out
    assert compare() == 0  # no budget: the run goes on to its 3 epochs, and the table is made
    said = capsys.readouterr()
    assert f"run: {run} (resumed after epoch 1)" in said.out + said.err
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3
    assert "1 run(s) trained now, 0 read back" in said.out


def test_a_run_another_command_takes_up_midway_is_left_to_it(tmp_path, capsys, monkeypatch):
    """Two commands on one --out: B takes up frozen_weights while A trains mannrl; A, reaching
    it, leaves it to B (exit 75, the table waits) instead of failing on B's lock."""
    import fcntl
    import os

    from mannrl_gym import compare

    held = []
    train = compare.Unit.train

    def train_then_b_starts(unit):
        train(unit)
        if unit.label == "mannrl":  # B's claim of the next run, made while A trained
            other = tmp_path / "frozen_weights-s0"
            other.mkdir()
            held.append(os.open(other, os.O_RDONLY))
            fcntl.flock(held[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)

    monkeypatch.setattr(compare.Unit, "train", train_then_b_starts)
    try:
        assert _compare(tmp_path, "mannrl,frozen_weights", "0") == 75
    finally:
        for handle in held:
            os.close(handle)
    said = capsys.readouterr()
    assert "frozen_weights seed 0: another process trains it now; left to it" in said.out + said.err
    assert "the table waits for 1 run(s) that another process trains" in said.err
    assert (tmp_path / "mannrl-s0" / "summary.json").is_file()


def test_a_run_resumed_with_a_changed_key_is_not_read_back_as_one_config(tmp_path, capsys):
    """Its config.yaml holds the new value alone; resumes.jsonl says the first epochs had the
    old one, so the table refuses it as another config (more epochs alone are fine)."""
    assert _compare(tmp_path, "mannrl", "0") == 0
    run = tmp_path / "mannrl-s0"
    assert main(["train", "--resume", str(run), "epochs=2"]) == 0  # more epochs: the same run
    assert main(["compare", "--task", "logic", "--agents", "mannrl", "--seeds", "0", "--epochs",
                 "2", "--out", str(tmp_path), *TINY]) == 0
    assert main(["train", "--resume", str(run), "epochs=3", "lr=5e-4"]) == 0
    capsys.readouterr()
    assert main(["compare", "--task", "logic", "--agents", "mannrl", "--seeds", "0", "--epochs",
                 "3", "--out", str(tmp_path), *TINY, "lr=5e-4"]) == 2
    assert "lr 0.0001 until epoch 2, then 0.0005 (a resume changed it)" in capsys.readouterr().err


def test_status_without_the_data_files_compares_them_by_name(tmp_path, capsys):
    """Kept runs read back where their data is not (a clone without the corpora): --status
    still says where each run stands, with a note, and a file of another name is another
    config. The table itself reads finished runs back without their data."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "mine.en").write_text("\n".join(f"line {i} of text." for i in range(30)) + "\n")
    tiny = ["num_sentences=20", "min_char_count=1", "memory_size=16", "hidden_size=16",
            "embed_size=8"]
    base = ["compare", "--task", "sentence", "--agents", "no_memory", "--seeds", "0",
            "--epochs", "1", "--out", str(tmp_path / "out"), *tiny]
    assert main([*base, f"data_path={data / 'mine.en'}"]) == 0
    (data / "mine.en").rename(tmp_path / "mine.en")  # the data not where it was read
    capsys.readouterr()
    assert main([*base, "--status", f"data_path={data / 'mine.en'}"]) == 0
    said = capsys.readouterr().out
    assert "| no_memory | 0 | finished | 1 |" in said
    assert "data not here (" in said and "compared by their names, not their bytes" in said
    assert main([*base, "--status", f"data_path={data / 'other.en'}"]) == 0
    assert "| no_memory | 0 | finished, other config | 1 |" in capsys.readouterr().out
    assert main([*base, f"data_path={data / 'mine.en'}"]) == 0
    assert "0 run(s) trained now, 1 read back" in capsys.readouterr().out
