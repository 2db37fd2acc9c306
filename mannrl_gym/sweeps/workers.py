"""``mannrl sweep``: N worker processes on this machine pulling trials from one study.

Every worker opens the study itself and runs one trial at a time; the study's database hands
out trial numbers, so workers here and on other machines (the same command against the same
``--storage`` URL) share the study without repeating a trial. ``--trials N`` is what this
command runs in all, shared by its workers. A worker that dies (SIGKILL, a lost machine)
takes its trainer with it; its trial is marked failed once its heartbeat is older than the
grace period, and the other workers go on. SIGINT / SIGTERM stop the whole command
(``stopping``): its trials are marked failed, with the user attribute ``interrupted``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import signal
import socket
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mannrl_gym.sweeps.spec import SweepError, check_config_and_metric, load_sweep, suggest
from mannrl_gym.sweeps.stopping import POLL_S, Interrupted, Stop, sigint_ignored
from mannrl_gym.sweeps.trial import TrialFailed, die_with_parent, run_trial

MAX_WORKERS_PER_CORE = 8  # more worker processes than this per core is a typo, not a plan


@dataclass
class SweepSettings:
    """Everything a worker process needs to open the study (picklable)."""
    path: str
    trials: int
    storage: str | None = None
    study_name: str | None = None
    out_dir: str = "runs/sweeps"
    seed: int = 0
    heartbeat_interval: int = 30
    grace_period: int | None = None
    workers: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def name(self) -> str:
        """The study's name: --study-name, else the sweep file's stem plus any overrides."""
        pins = "".join(f"+{k}={v}" for k, v in sorted(self.overrides.items()))
        return self.study_name or f"{Path(self.path).stem}{pins}"

    @property
    def out(self) -> Path:
        return Path(self.out_dir) / self.name

    @property
    def url(self) -> str:
        return self.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"


@dataclass
class SweepResult:
    study: Any
    ran: list[int]            # trial numbers this command ran
    failed: list[int]         # of those, the ones that failed
    lost_workers: list[str]   # workers that died (e.g. killed), with how
    signum: int | None = None  # the signal that stopped the command, if one did
    interrupted: list[int] = field(default_factory=list)  # trials that signal stopped

    @property
    def ok(self) -> bool:
        return not self.failed and not self.lost_workers and self.signum is None

    def stopped_line(self) -> str:
        """What a stopped command prints (one line)."""
        trials = (f"trial{'s' if len(self.interrupted) > 1 else ''} "
                  f"{', '.join(map(str, self.interrupted))} stopped and marked failed "
                  f"(user attribute 'interrupted')" if self.interrupted else "no trial was running")
        return (f"stopped by {signal.Signals(self.signum).name}: {trials}; the same command "
                f"continues the study")


class Budget:
    """Trials left to this command, shared by its worker processes."""

    def __init__(self, trials: int, context=multiprocessing) -> None:
        self.used, self.trials = context.Value("i", 0), trials

    def claim(self) -> bool:
        with self.used.get_lock():
            if self.used.value >= self.trials:
                return False
            self.used.value += 1
            return True


def open_sweep(settings: SweepSettings, check: bool = True):
    """Check the sweep, open the study (nothing is written if either fails; a study whose
    out-dir holds another study's trial folders fails once its storage is open:
    ``check_trial_folders``); return the sweep, the study and its storage. ``check=False``:
    skip checking the config, the metric and the folders (a worker process, whose parent
    did)."""
    import optuna

    from mannrl_gym.sweeps.samplers import make_sampler
    from mannrl_gym.sweeps.study import open_storage, open_study

    if settings.trials < 1:
        raise SweepError(f"--trials must be 1 or more, got {settings.trials}")
    if settings.workers < 1:
        raise SweepError(f"--workers must be 1 or more, got {settings.workers}")
    if settings.workers > MAX_WORKERS_PER_CORE * (os.cpu_count() or 1):
        raise SweepError(f"--workers {settings.workers} is more than {MAX_WORKERS_PER_CORE} per "
                         f"core of this machine ({os.cpu_count()} cores): each worker is a "
                         f"process training one trial at a time; start more machines instead")
    sweep = load_sweep(settings.path, settings.overrides)
    if check:
        check_config_and_metric(sweep, settings.path)
    if settings.storage is None:
        from mannrl_gym.rundir import check_creatable
        check_creatable(settings.out, "--out-dir")  # a file in the way: one line, not a traceback
        settings.out.mkdir(parents=True, exist_ok=True)  # the SQLite file lives there
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage(settings.url, settings.heartbeat_interval, settings.grace_period)
    sampler = make_sampler(sweep, settings.seed, settings.run_id)
    study = open_study(storage, settings.name, sweep, sampler)
    if check:
        check_trial_folders(settings.out, study, settings.url)
    return sweep, study, storage


TRIAL_NAME = re.compile(r"trial-\d{4,}")  # the folder names ``trial_dir`` gives


def trial_dir(out: Path, number: int) -> Path:
    """Where trial ``number`` of a study under ``out`` trains: ``out/trial-0007``."""
    return out / f"trial-{number:04d}"


def check_trial_folders(out: Path, study, url: str) -> None:
    """SweepError when ``out`` holds trial folders the study does not know (another study's:
    another --storage, or a deleted study.db): a trial takes the folder of its number
    (``trial-NNNN``), so each new trial would fail on a folder that holds a run."""
    from mannrl_gym.sweeps.study import redacted

    if not out.is_dir():
        return
    known = {trial_dir(out, trial.number) for trial in study.get_trials(deepcopy=False)}
    strangers = sorted(path.name for path in out.glob("trial-*")
                       if TRIAL_NAME.fullmatch(path.name) and path not in known)
    if strangers:
        shown = ", ".join(strangers[:3]) + (f" and {len(strangers) - 3} more"
                                            if len(strangers) > 3 else "")
        raise SweepError(f"{out} holds trial folders that the study in {redacted(url)} does not "
                         f"know ({shown}: another study's, from another --storage or a "
                         f"deleted study.db); its trials would be numbered into them: give "
                         f"another --out-dir, or the --storage they came from")


def work(settings: SweepSettings, budget: Budget, stop: Stop, worker: int = 0,
         opened=None) -> None:
    """One worker: claim a trial from the budget, run it, until the budget or grid is spent
    or ``stop`` is set (the trial it stopped is marked failed and ``interrupted``)."""
    import optuna

    from mannrl_gym.sweeps.samplers import GridByTrialNumber, GridCovered

    sweep, study, _ = opened or open_sweep(settings, check=False)
    out, metric = settings.out, sweep["metric"]["name"]
    out.mkdir(parents=True, exist_ok=True)
    tag = f"[worker {worker}] " if settings.workers > 1 else ""
    grid = study.sampler if isinstance(study.sampler, GridByTrialNumber) else None

    def objective(trial: optuna.Trial) -> float:
        run_dir = trial_dir(out, trial.number)
        for key, value in (("host", socket.gethostname()), ("run_id", settings.run_id),
                           ("worker", f"{socket.gethostname()}:{os.getpid()}"),
                           ("run_dir", str(run_dir))):
            trial.set_user_attr(key, value)
        try:
            values = {k: suggest(trial, k, spec) for k, spec in sweep["parameters"].items()}
        except GridCovered as exc:
            raise optuna.TrialPruned(str(exc)) from None
        try:
            stop.check()
            print(f"{tag}trial {trial.number}: started  {values}", flush=True)
            value = run_trial(sweep["config_file"], metric, values, run_dir, stop)
        except Interrupted as exc:
            trial.set_user_attr("interrupted", signal.Signals(exc.signum).name)
            raise  # Optuna marks the trial failed and raises it again
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            print(f"{tag}trial {trial.number}: FAILED  {exc}", file=sys.stderr, flush=True)
            return float("nan")  # Optuna marks the trial failed
        print(f"{tag}trial {trial.number}: {metric} = {value:.4f}", flush=True)
        return value

    with contextlib.suppress(Interrupted):
        while stop.signum is None and (grid is None or grid.has_work(study)) and budget.claim():
            study.optimize(objective, n_trials=1)


def _worker_process(settings: SweepSettings, budget: Budget, worker: int, parent: int) -> None:
    """A worker process: SIGTERM (from the parent, or when the parent dies) stops it; SIGINT
    is ignored (inherited so: the terminal's Ctrl-C is the parent's to handle)."""
    stop = Stop()
    stop.install()
    die_with_parent(parent, signal.SIGTERM)
    try:
        work(settings, budget, stop, worker)
    except SweepError as exc:
        print(f"mannrl: error: [worker {worker}] {exc}", file=sys.stderr)
        sys.exit(2)
    if stop.signum is not None:
        sys.exit(stop.exit_code)


def run_sweep(settings: SweepSettings) -> SweepResult:
    """Run (or continue) the study with ``settings.workers`` processes; report what happened.
    SIGINT / SIGTERM stop it: the trials it runs end, marked failed and ``interrupted``."""
    stop = Stop()
    stop.install()
    try:
        return _run(settings, stop)
    finally:
        stop.restore()


def _run(settings: SweepSettings, stop: Stop) -> SweepResult:
    import optuna

    opened = open_sweep(settings)  # bad input stops here, before any worker starts
    lost: list[str] = []
    workers = min(settings.workers, settings.trials)  # a worker with no trial is a wasted process
    if stop.signum is None and workers == 1:
        work(settings, Budget(settings.trials), stop, opened=opened)
    elif stop.signum is None:
        context = multiprocessing.get_context("spawn")
        budget = Budget(settings.trials, context)
        processes = [context.Process(target=_worker_process,
                                     args=(settings, budget, i, os.getpid()),
                                     name=f"mannrl-sweep-worker-{i}")
                     for i in range(workers)]
        with sigint_ignored():
            for process in processes:
                if stop.signum is not None:  # told to stop while starting them
                    processes = [p for p in processes if p.pid is not None]
                    break
                process.start()
        _join(processes, stop)
        for i, process in enumerate(processes):
            if process.exitcode and stop.signum is None:  # a stop is reported on its own
                how = (f"killed by signal {-process.exitcode}" if process.exitcode < 0
                       else f"exit {process.exitcode}")
                lost.append(f"worker {i} ({how})")
    _, study, storage = opened
    if stop.signum is not None:
        _mark_interrupted(study, storage, settings.run_id, stop.signum)
    optuna.storages.fail_stale_trials(study)
    mine = [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("run_id") == settings.run_id]
    failed = [t.number for t in mine if t.state == optuna.trial.TrialState.FAIL]
    interrupted = [t.number for t in mine if "interrupted" in t.user_attrs]
    return SweepResult(study, [t.number for t in mine], failed, lost, stop.signum, interrupted)


def _join(processes: list, stop: Stop) -> None:
    """Wait for the workers; pass a stop on to them (SIGTERM, later SIGKILL)."""
    sent = None
    while any(process.is_alive() for process in processes):
        for process in processes:
            process.join(POLL_S / len(processes))
        wanted = stop.wanted()
        if wanted is not None and wanted != sent:
            for process in processes:
                if process.is_alive():
                    process.kill() if wanted == signal.SIGKILL else process.terminate()
            sent = wanted


def _mark_interrupted(study, storage, run_id: str, signum: int) -> None:
    """Mark failed the trials of this command still running once its workers are gone (a
    worker that had to be killed, or one stopped while it asked for a trial)."""
    import optuna

    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get("run_id") == run_id:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(trial_id, "interrupted", signal.Signals(signum).name)
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
