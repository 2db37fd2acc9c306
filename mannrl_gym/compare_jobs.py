"""``mannrl compare --jobs N``: its units of work (``compare.Unit``), N processes at a time.

Each unit trains in a process of its own (started fresh, ``spawn``; a unit carries what it
needs, such as an agent registered at run time), so N runs use N cores; its run directories
are the ones a single process would write, and a unit killed part-way resumes from its last
checkpoint the next time. A child dies with this process (SIGTERM from the kernel if this
one is killed); Ctrl-C or SIGTERM here stop every child as the trainer stops on Ctrl-C (an intact
checkpoint) and are raised again here. The first unit that fails stops the others and its
error is raised here, the project's own (``ConfigError``, ``DataError``, ``CheckpointError``,
``NumericalError``) as themselves, named by the unit, any other as ``RunFailed`` (the child
prints its traceback first). Before any child starts, ``check_spawnable`` refuses what a fresh
process cannot import: an agent class defined in a notebook or at the Python prompt, or a
script read from standard input.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Protocol, TextIO

from mannrl_gym import stopping
from mannrl_gym.errors import ConfigError, DataError

STOP_GRACE_S = 30.0  # how long a stopped child may take to write its checkpoint, then SIGKILL


class TrainingUnit(Protocol):
    """What one child process trains (``compare.Unit``); picklable, its class importable."""

    name: str  # e.g. "mannrl seed 1": the child's lines start with it

    def train(self) -> None: ...


class RunFailed(RuntimeError):
    """A child stopped by an error that is not the project's own (a bug in an agent, say), or
    that died without a word (killed, out of memory); the message names the unit."""


def _own_errors() -> tuple[type[Exception], ...]:
    """The errors a child raises that are raised here as themselves (the command line prints
    them as one line, as for a run in this process)."""
    from mannrl_gym.checkpoint import CheckpointError
    from mannrl_gym.numerics import NumericalError

    return ConfigError, DataError, CheckpointError, NumericalError, FileNotFoundError


def check_spawnable(units: list[TrainingUnit]) -> None:
    """ConfigError unless a fresh process (``spawn``) can start every unit: it re-imports
    this process's main script by its path and each unit's agent class by its module (a
    unit's ``agent``, where it has one: its ``AgentEntry``)."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file is not None and not os.path.exists(main_file):
        raise ConfigError(f"--jobs trains each run in a new Python process, which runs this "
                          f"program's main script again, but it has no file ({main_file!r}: "
                          f"read from standard input?): save it to a file, or use --jobs 1")
    for unit in units:
        agent = getattr(unit, "agent", None)
        entry_point = getattr(agent, "entry_point", None)
        if callable(entry_point) and getattr(entry_point, "__module__", None) == "__main__" \
                and main_file is None:
            raise ConfigError(f"agent {agent.name!r} is defined in this interactive "
                              f"session (a notebook or the Python prompt), but --jobs trains "
                              f"each run in a new Python process, which cannot import it: "
                              f"move it to a module (a .py file on the path) and register it "
                              f"from there, or use --jobs 1")


class _Labelled(io.TextIOBase):
    """A text stream that starts each line written to ``stream`` with ``label``: the
    lines of runs trained side by side, told apart."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream, self.label, self.at_line_start = stream, label, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.at_line_start:
                self.stream.write(self.label)
            self.stream.write(piece)
            self.at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@dataclass(frozen=True)
class Failure:
    """What stopped a child's unit: the exception's class name and message; for a run
    interrupted by Ctrl-C or SIGTERM, its run directory and epoch (``trainer.Interrupted``);
    kind "finished" for a unit done before a stop reached it. ``unit``: its name, set here
    (the parent) for the children it stops."""

    kind: str
    message: str
    interrupted: bool
    run_dir: str | None = None
    epoch: int | None = None
    unit: str | None = None

    def where(self) -> str:
        if self.kind == "finished":  # its unit was done when the stop came
            return f"{self.unit} had finished"
        if self.run_dir is None:  # stopped before its trainer began (or not a run's stop)
            return "interrupted" if self.unit is None else f"{self.unit} stopped before it began"
        if not os.path.isdir(self.run_dir):  # stopped before its first checkpoint: removed
            return (f"interrupted at epoch {self.epoch} of {self.run_dir}, before its first "
                    f"checkpoint (nothing kept)")
        return f"interrupted at epoch {self.epoch} of {self.run_dir}"


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM here: every child stopped; ``where`` names where each run stood."""

    def __init__(self, failures: list[Failure]) -> None:
        self.failures = failures
        places = [f.where() for f in failures if f.run_dir is not None or f.unit is not None]
        self.where = ", ".join(places) if places else "interrupted"
        super().__init__(self.where)


def _work(unit: TrainingUnit, parent_pid: int, report: Connection) -> None:
    """A child's body: train ``unit``; send None, or the ``Failure`` that stopped it."""
    from mannrl_gym.sweeps.trial import die_with_parent

    die_with_parent(parent_pid, signal.SIGTERM)
    # the parent alone decides (Ctrl-C reaches the whole process group): its SIGTERM stops
    # the run once, and a second signal cannot cut the checkpoint's write short
    stopping.on_signal(lambda: KeyboardInterrupt("terminated"), ignore=(signal.SIGINT,))
    sys.stdout = _Labelled(sys.stdout, f"[{unit.name}] ")
    try:
        unit.train()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        if not isinstance(exc, (KeyboardInterrupt, *_own_errors())):
            sys.stderr.write(f"[{unit.name}] failed:\n{traceback.format_exc()}")
        run_dir = getattr(exc, "run_dir", None)
        report.send(Failure(type(exc).__name__, str(exc), isinstance(exc, KeyboardInterrupt),
                            None if run_dir is None else str(run_dir),
                            getattr(exc, "epoch", None)))
    else:
        report.send(None)
    finally:
        report.close()
        # done: a stop from now on would only land in the interpreter's exit (torch's atexit
        # callbacks) and print "Exception ignored"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _raise(unit: TrainingUnit, failure: Failure) -> None:
    """Raise what stopped a child here: the project's own errors as themselves (the command
    line reports them as it does for one process: one line, their exit code)."""
    if failure.interrupted:
        raise Stopped([failure])
    for error in _own_errors():
        if failure.kind == error.__name__:
            raise error(f"{unit.name}: {failure.message}")
    if failure.kind == "died":
        raise RunFailed(f"{unit.name}: its process ended ({failure.message}) before it "
                        f"finished or reported an error; see its output above")
    raise RunFailed(f"{unit.name} failed: {failure.kind}: {failure.message} (its traceback "
                    f"is above)")


def run_in_processes(units: list[TrainingUnit], jobs: int,
                     done: Callable[[Any, float], None], show: Callable[[str], None]) -> None:
    """Train ``units``, at most ``jobs`` at a time, each in a process of
    its own; ``done(unit, seconds)`` as each finishes, ``show(text)`` with what runs now.
    Ctrl-C or SIGTERM here: ``Stopped``, once every child has stopped."""
    check_spawnable(units)
    context = multiprocessing.get_context("spawn")
    waiting = list(units)
    # a child's report pipe -> (its unit, its process, when it started)
    running: dict[Connection, tuple[TrainingUnit, Any, float]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                unit = waiting.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_work, args=(unit, os.getpid(), send),
                                          name=f"mannrl-compare: {unit.name}", daemon=False)
                process.start()
                send.close()
                running[receive] = (unit, process, time.perf_counter())
            show(", ".join(unit.name for unit, _, _ in running.values()))
            for report in wait(list(running)):
                unit, process, start = running.pop(report)
                failure = _read(report, process)
                if failure is not None:
                    _raise(unit, failure)
                done(unit, time.perf_counter() - start)
    except KeyboardInterrupt as interrupt:  # here, or a child's (Ctrl-C reaches them all)
        earlier = interrupt.failures if isinstance(interrupt, Stopped) else []
        raise Stopped(earlier + _stop(running)) from None
    finally:
        _stop(running)


def _read(report: Connection, process) -> Failure | None:
    """A finished child's report (None: its unit trained), its process joined."""
    try:
        failure = report.recv()
    except EOFError:  # died without a word (killed, out of memory)
        process.join()
        failure = Failure("died", f"exit code {process.exitcode}", False)
    report.close()
    process.join()
    return failure


def _stop(running: dict[Connection, tuple[TrainingUnit, Any, float]]) -> list[Failure]:
    """SIGTERM to every child still running (each stops as on Ctrl-C, its checkpoint
    intact), SIGKILL to any that has not ended within ``STOP_GRACE_S``; their reports.
    A second Ctrl-C meanwhile is ignored: the children are writing their checkpoints."""
    if not running:
        return []
    restore = stopping.on_signal(KeyboardInterrupt, signals=(), ignore=(signal.SIGINT,))
    try:
        return _stop_children(running)
    finally:
        restore()


def _stop_children(running: dict[Connection, tuple[TrainingUnit, Any, float]]
                   ) -> list[Failure]:
    for _, process, _ in running.values():
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    failures = []
    for report, (unit, process, _) in list(running.items()):
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
        failure = _read(report, process) or Failure("finished", "", True)  # None: it was done
        failures.append(dataclasses.replace(failure, unit=unit.name))
        del running[report]
    return failures
