"""``mannrl sweep``: N worker processes on this machine pulling trials from one study.

Every worker opens the study itself and runs one trial at a time; the study's database hands
out trial numbers, so workers here and on other machines (the same command against the same
``--storage`` URL) share the study without repeating a trial. ``--trials N`` is what this
command runs in all, shared by its workers. A worker that dies (SIGKILL, a lost machine)
takes its trainer with it; its trial is marked failed once its heartbeat is older than the
grace period, and the other workers go on.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mannrl_gym.sweeps.spec import SweepError, check_config_and_metric, load_sweep, suggest
from mannrl_gym.sweeps.trial import TrialFailed, run_trial


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

    @property
    def ok(self) -> bool:
        return not self.failed and not self.lost_workers


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


def open_sweep(settings: SweepSettings):
    """Check the sweep, open the study (nothing is written if either fails); return both."""
    import optuna

    from mannrl_gym.sweeps.samplers import make_sampler
    from mannrl_gym.sweeps.study import open_storage, open_study

    if settings.trials < 0:
        raise SweepError(f"--trials must be 0 or more, got {settings.trials}")
    if settings.workers < 1:
        raise SweepError(f"--workers must be 1 or more, got {settings.workers}")
    sweep = load_sweep(settings.path, settings.overrides)
    check_config_and_metric(sweep, settings.path)
    if settings.storage is None:
        settings.out.mkdir(parents=True, exist_ok=True)  # the SQLite file lives there
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = open_storage(settings.url, settings.heartbeat_interval, settings.grace_period)
    sampler = make_sampler(sweep, settings.seed, settings.run_id)
    return sweep, open_study(storage, settings.name, sweep, sampler)


def work(settings: SweepSettings, budget: Budget, worker: int = 0, opened=None) -> None:
    """One worker: claim a trial from the budget, run it, until the budget or grid is spent."""
    import optuna

    from mannrl_gym.sweeps.samplers import GridByTrialNumber, GridCovered

    sweep, study = opened or open_sweep(settings)
    out, metric = settings.out, sweep["metric"]["name"]
    out.mkdir(parents=True, exist_ok=True)
    tag = f"[worker {worker}] " if settings.workers > 1 else ""
    grid = study.sampler if isinstance(study.sampler, GridByTrialNumber) else None

    def objective(trial: optuna.Trial) -> float:
        run_dir = out / f"trial-{trial.number:04d}"
        for key, value in (("host", socket.gethostname()), ("run_id", settings.run_id),
                           ("worker", f"{socket.gethostname()}:{os.getpid()}"),
                           ("run_dir", str(run_dir))):
            trial.set_user_attr(key, value)
        try:
            values = {k: suggest(trial, k, spec) for k, spec in sweep["parameters"].items()}
        except GridCovered as exc:
            raise optuna.TrialPruned(str(exc)) from None
        print(f"{tag}trial {trial.number}: started  {values}", flush=True)
        try:
            value = run_trial(sweep["config_file"], metric, values, run_dir)
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            print(f"{tag}trial {trial.number}: FAILED  {exc}", file=sys.stderr, flush=True)
            return float("nan")  # Optuna marks the trial failed
        print(f"{tag}trial {trial.number}: {metric} = {value:.4f}", flush=True)
        return value

    while (grid is None or grid.has_work(study)) and budget.claim():
        study.optimize(objective, n_trials=1)


def _worker_process(settings: SweepSettings, budget: Budget, worker: int) -> None:
    try:
        work(settings, budget, worker)
    except SweepError as exc:
        print(f"mannrl: error: [worker {worker}] {exc}", file=sys.stderr)
        sys.exit(2)


def run_sweep(settings: SweepSettings) -> SweepResult:
    """Run (or continue) the study with ``settings.workers`` processes; report what happened."""
    import optuna

    opened = open_sweep(settings)  # bad input stops here, before any worker starts
    lost: list[str] = []
    if settings.workers == 1:
        work(settings, Budget(settings.trials), opened=opened)
    else:
        context = multiprocessing.get_context("spawn")
        budget = Budget(settings.trials, context)
        processes = [context.Process(target=_worker_process, args=(settings, budget, i),
                                     name=f"mannrl-sweep-worker-{i}")
                     for i in range(settings.workers)]
        for process in processes:
            process.start()
        for i, process in enumerate(processes):
            process.join()
            if process.exitcode:
                how = (f"killed by signal {-process.exitcode}" if process.exitcode < 0
                       else f"exit {process.exitcode}")
                lost.append(f"worker {i} ({how})")
    study = opened[1]
    optuna.storages.fail_stale_trials(study)
    mine = [t for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("run_id") == settings.run_id]
    failed = [t.number for t in mine if t.state == optuna.trial.TrialState.FAIL]
    return SweepResult(study, [t.number for t in mine], failed, lost)
