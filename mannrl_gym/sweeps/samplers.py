"""Optuna samplers whose draws depend on (seed, trial number) only, never on which worker
or machine runs a trial: trial numbers are handed out by the study's database, so N workers on
M machines neither repeat a configuration nor disagree about one."""

from __future__ import annotations

import zlib
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial

from mannrl_gym.sweeps.spec import grid_points


def trial_seed(seed: int, trial_number: int, name: str = "") -> int:
    """A 32-bit seed for one trial (and parameter) of a sweep seeded with ``seed``."""
    return zlib.crc32(f"{seed}:{trial_number}:{name}".encode())


class GridCovered(Exception):
    """Every grid point already has a trial: this trial has nothing to run."""


class IndependentSampler(BaseSampler):
    """A sampler that picks each parameter on its own (no joint search space)."""

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}


class GridByTrialNumber(IndependentSampler):
    """Grid search: trial n < G runs grid point n; a later trial re-runs the first point whose
    trials all failed (a killed worker's, or one from an earlier command: each command
    ``run_id`` tries a point once), and finds nothing once every point is covered."""

    def __init__(self, sweep: dict[str, Any], run_id: str = "") -> None:
        self.points = grid_points(sweep)
        self.run_id = run_id
        self._assigned: dict[int, dict[str, Any] | None] = {}

    def point_for(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any] | None:
        if trial.number not in self._assigned:
            if trial.number < len(self.points):
                point = self.points[trial.number]
            else:
                remaining = self.open_points(study, exclude=trial.number)
                point = remaining[0] if remaining else None
            self._assigned[trial.number] = point
        return self._assigned[trial.number]

    def has_work(self, study: optuna.Study) -> bool:
        """Whether a new trial would get a grid point (one not yet started, or one whose
        trials all failed)."""
        started = len(study.get_trials(deepcopy=False))
        return started < len(self.points) or bool(self.open_points(study))

    def open_points(self, study: optuna.Study, exclude: int = -1) -> list[dict[str, Any]]:
        """Grid points with no trial that completed, runs, waits, is yet to be started, or
        failed in this command."""
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING,
                  optuna.trial.TrialState.WAITING)
        trials = study.get_trials(deepcopy=False)
        taken = {t.number for t in trials}
        covered = [self.points[n] for n in range(len(self.points)) if n not in taken]
        for t in trials:
            tried_now = (t.state == optuna.trial.TrialState.FAIL
                         and t.user_attrs.get("run_id") == self.run_id)
            if t.number != exclude and (t.state in states or tried_now):
                point = (self.points[t.number] if t.number < len(self.points)
                         else {k: t.params[k] for k in self.points[0] if k in t.params})
                covered.append(point)
        return [p for p in self.points if p not in covered]

    def sample_independent(self, study, trial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        point = self.point_for(study, trial)
        if not point:
            raise GridCovered(f"trial {trial.number}: every grid point already has a trial")
        return point[param_name]


class TrialSeeded(IndependentSampler):
    """Random search (``method: random``) or TPE (``method: bayes``) whose random draws for
    trial n come from ``trial_seed(seed, n)``. TPE also depends on the trials finished so far,
    so with several workers its proposals depend on the order trials finish in."""

    def __init__(self, method: str, seed: int) -> None:
        self.method, self.seed = method, seed

    def _inner(self, trial: FrozenTrial, name: str = "") -> BaseSampler:
        seed = trial_seed(self.seed, trial.number, name)
        if self.method == "random":
            return RandomSampler(seed=seed)
        return TPESampler(seed=seed, constant_liar=True)  # constant liar: spread parallel picks

    def sample_independent(self, study, trial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._inner(trial, param_name).sample_independent(
            study, trial, param_name, param_distribution)


def make_sampler(sweep: dict[str, Any], seed: int, run_id: str = "") -> BaseSampler:
    if sweep["method"] == "grid":
        return GridByTrialNumber(sweep, run_id)
    return TrialSeeded(sweep["method"], seed)
