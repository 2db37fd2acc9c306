"""The Optuna study behind a sweep: its database, its search space, and the summary table.

The study lives in a SQLite file by default, or in a database several machines share
(``--storage postgresql://user:password@host/db``). Trials send heartbeats; a trial whose
worker was killed is marked failed by the next worker that starts a trial.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import time
import warnings
from pathlib import Path
from typing import Any

from mannrl_gym.sweeps.spec import SweepError

LOCK_KEY = 0x6D616E6E  # advisory lock id while Optuna's tables are created ("mann")
SPACE_ATTR = "mannrl_sweep"  # study user attribute: the search space the study was made for


def database_url(url: str) -> str:
    """A SQLAlchemy URL for ``url``: ``postgresql://`` gets the psycopg driver that is
    installed (psycopg 3, else psycopg2)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SweepError(f"--storage: '{url}' is not a database URL "
                         "(e.g. postgresql://user:password@host:5432/db or sqlite:///study.db)")
    if scheme in ("postgresql", "postgres"):
        for driver in ("psycopg", "psycopg2"):
            if importlib.util.find_spec(driver) is not None:
                return f"postgresql+{driver}://{rest}"
        raise SweepError("--storage: PostgreSQL needs the psycopg driver: "
                         "pip install 'mannrl-gym[sweep]'")
    return url


def redacted(url: str) -> str:
    """``url`` with its password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (three slashes and a relative path: relative to
    the current directory; four: absolute), None for other databases."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _relative_note(path: Path) -> str:
    """For a relative database path, where it lies and the URL of the absolute path its
    user may have meant (sqlite:/// + a path is relative; four slashes make it absolute)."""
    if path.is_absolute():
        return ""
    return (f" (relative to the current directory: {path.absolute()}; for /{path}, four "
            f"slashes: sqlite:////{path})")


def check_sqlite_folder(url: str) -> None:
    """A SQLite file's folder must exist (SQLite creates the file, not its folders)."""
    path = sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise SweepError(f"--storage {url}: the folder of the database file is not there: "
                         f"{path.parent}{_relative_note(path)}; create it, or leave --storage "
                         f"out (the sweep's own folder)")


def open_storage(url: str, heartbeat_interval: int | None, grace_period: int | None):
    """Connect (and create Optuna's tables if missing); one clear line if that fails."""
    import optuna
    import sqlalchemy.exc

    full = database_url(url)
    check_sqlite_folder(url)
    postgres = full.startswith("postgresql")
    engine_kwargs = {"connect_args": {"connect_timeout": 10}} if postgres else {}
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        with _schema_lock(full, engine_kwargs) if postgres else contextlib.nullcontext():
            return optuna.storages.RDBStorage(full, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=heartbeat_interval,
                                              grace_period=grace_period)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = " ".join(str(cause).split())
        raise SweepError(f"--storage {redacted(url)}: cannot open the database: {reason}") from None


@contextlib.contextmanager
def _schema_lock(url: str, engine_kwargs: dict[str, Any]):
    """Hold a PostgreSQL advisory lock: workers starting together on a fresh database would
    otherwise race to create Optuna's tables (duplicate key errors)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": LOCK_KEY})
    finally:
        engine.dispose()


def search_space(sweep: dict[str, Any]) -> dict[str, Any]:
    """What a study is for: method, metric and parameters (JSON round-tripped, as stored)."""
    space = {k: sweep[k] for k in ("method", "metric", "parameters")}
    return json.loads(json.dumps(space, sort_keys=True))


def open_study(storage, name: str, sweep: dict[str, Any], sampler, wait_s: float = 10.0):
    """Create the study, or load it if it exists and was made for the same search space."""
    import optuna

    space = search_space(sweep)
    direction = sweep["metric"].get("goal", "maximize")
    try:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    direction=direction)
        study.set_user_attr(SPACE_ATTR, space)
        return study
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    deadline = time.monotonic() + wait_s  # another machine may have created it just now
    while SPACE_ATTR not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
    recorded = study.user_attrs.get(SPACE_ATTR)
    if recorded is None:
        raise SweepError(f"study '{name}' was not made by mannrl sweep; pick another --study-name")
    if recorded != space:
        changed = sorted(k for k in set(space["parameters"]) | set(recorded["parameters"])
                         if space["parameters"].get(k) != recorded["parameters"].get(k))
        changed += [k for k in ("method", "metric") if space[k] != recorded[k]]
        raise SweepError(f"study '{name}' was created with another search space (differs in "
                         f"{', '.join(changed)}); pass --study-name NEW for a new study")
    return study


def existing_study(url: str, name: str):
    """Load study ``name`` for reading; one clear line if there is none."""
    import optuna

    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise SweepError(f"no study '{name}': {path} does not exist{_relative_note(path)}")
    storage = open_storage(url, heartbeat_interval=None, grace_period=None)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise SweepError(f"no study '{name}' in {redacted(url)}") from None


def state_name(trial) -> str:
    """A trial's state as the summary prints it: Optuna's, or STOPPED for a failed trial that
    SIGINT / SIGTERM ended (user attribute ``interrupted``)."""
    if trial.state.name == "FAIL" and "interrupted" in trial.user_attrs:
        return "STOPPED"
    return trial.state.name


def summary_lines(study) -> list[str]:
    """The table ``mannrl sweep --summary`` prints: one row per trial, then the best."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    counts = {}
    for trial in trials:
        counts[state_name(trial)] = counts.get(state_name(trial), 0) + 1
    lines = [f"study {study.study_name}: {len(trials)} trials "
             f"({', '.join(f'{n} {s.lower()}' for s, n in sorted(counts.items()))})",
             f"  {'trial':>5}  {'state':8}  {'value':>8}  {'minutes':>7}  {'host':12}  params"]
    for trial in trials:
        value = "" if trial.value is None else f"{trial.value:.4f}"
        end = trial.datetime_complete
        minutes = (f"{(end - trial.datetime_start).total_seconds() / 60:.2f}"
                   if end and trial.datetime_start else "")
        host = str(trial.user_attrs.get("host", ""))[:12]
        lines.append(f"  {trial.number:5d}  {state_name(trial):8s}  {value:>8s}  {minutes:>7s}  "
                     f"{host:12s}  {trial.params}")
    if any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        best = study.best_trial
        run_dir = best.user_attrs.get("run_dir", "")
        lines.append(f"best: trial {best.number}, {study.best_value:.4f}, {best.params}  "
                     f"({run_dir}" + ("; its config.yaml holds every key it trained with, the "
                                      "sweep's fixed ones too)" if run_dir else ")"))
    return lines
