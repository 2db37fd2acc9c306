"""The `mannrl train` loop: agent and env step together, evaluate every epoch, keep everything.

A run directory holds ``config.yaml``, ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt``
(after every epoch, written atomically), ``summary.json`` and wandb's files. A killed run
resumes from its last checkpoint and ends with the same metrics as one never interrupted.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from mannrl_gym import checkpoint, provenance, rundir, stopping
from mannrl_gym.allocator import keep_freed_memory
from mannrl_gym.config import (PATH_KEYS, Config, ConfigError, as_saved, from_mapping,
                               path_parts, same_value, with_absolute_paths)
from mannrl_gym.envs.core import ActionError
from mannrl_gym.experiments import make_experiment
from mannrl_gym.rundir import load_run_config
from mannrl_gym.samples import SAMPLE_FILES
from mannrl_gym.tasks import build_task, check_trainable, stand_in_note
from mannrl_gym.threads import beyond_cores_note, limit_threads
from mannrl_gym.tracking import Tracker, check_online_login

F1_TARGET = 0.99
QUIET_LINE_S = 60.0  # a run silent this long prints an unevaluated epoch's line


class LineClock:
    """When a run last printed an epoch's line: one silent for ``QUIET_LINE_S`` prints one
    though the epoch was not evaluated, so a log (no progress bar) shows it is alive."""

    def __init__(self) -> None:
        self.printed_at = time.monotonic()

    def quiet(self) -> bool:
        return time.monotonic() - self.printed_at >= QUIET_LINE_S

    def printed(self) -> None:
        self.printed_at = time.monotonic()


DATA_NAME_CHARS = 40  # at most this much of the data file's name goes in a default run name


def default_run_name(config: Config, which: str) -> str:
    """A new run's folder name when ``run_name`` is not given: task, the data file's name
    without its suffix where the task reads one (``sample`` for the package's sample), agent
    (a ``package.module:Class`` spec: the class name), ``which`` (``seed0``, ``replicas``),
    time; e.g. ``sentence-pg-mannrl-seed0-20261207-140000``; several files joined:
    ``data_files_name``."""
    files = path_parts(config.data_path)
    reads_files = config.task in SAMPLE_FILES  # Logic generates its data: no sample to name
    data = ("sample" if config.data == "sample" and reads_files else
            data_files_name(files) if files else "")
    parts = [config.task, data, config.agent.rpartition(":")[2], which,
             time.strftime("%Y%m%d-%H%M%S")]
    return "-".join(part for part in parts if part)


def data_files_name(files: list[str]) -> str:
    """The data files' part of a default run name: one file's name without its suffix;
    several: the first one's, then what tells each other apart from it (``en_ewt-ud-dev``
    and ``en_ewt-ud-test``: ``en_ewt-ud-dev+test``), or, where that is empty or too long,
    how many more (``dev+2``). At most DATA_NAME_CHARS characters (and ``+N``)."""
    stems = [Path(file).stem for file in files]
    shared = len(os.path.commonprefix(stems))
    name = "+".join([stems[0], *(stem[shared:] for stem in stems[1:])])
    if len(stems) > 1 and (not all(stem[shared:] for stem in stems) or len(name) > DATA_NAME_CHARS):
        return f"{stems[0][:DATA_NAME_CHARS]}+{len(stems) - 1}"
    return name[:DATA_NAME_CHARS]


def new_run_dir(config: Config) -> Path:
    """Where a new run of ``config`` goes: ``out_dir/run_name`` (default:
    ``default_run_name``)."""
    return Path(config.out_dir) / (config.run_name or default_run_name(config,
                                                                       f"seed{config.seed}"))


def train(config: Config, run_dir: Path | None = None, resume: bool = False) -> Path:
    """Run (or resume) the experiment ``config`` describes; return the run directory.

    The run directory is held exclusively for the whole run (``rundir.claim``): a second
    run, or a ``--resume`` of a run still going, stops with a ConfigError and writes nothing.
    """
    check_online_login(config)
    keep_freed_memory()  # no page faults an update (mannrl_gym.allocator)
    with limit_threads(config.num_threads):  # NumPy's BLAS on one (mannrl_gym.threads)
        return _train(config, run_dir, resume)


def _train(config: Config, run_dir: Path | None, resume: bool) -> Path:
    config = with_absolute_paths(config)  # config.yaml names its files from anywhere
    if config.device != "cpu":
        if not resume:
            raise ConfigError(f"{config.source}: key 'device' is '{config.device}', which applies "
                              f"to replicated runs; {_device_advice(config)}")
        if _saved_device(Path(run_dir)) != config.device:  # asked for now, not what it ran on
            raise ConfigError(f"{config.source}: key 'device' is '{config.device}', but a run "
                              f"resumed alone trains on the CPU; a replica's device is its "
                              f"replicated run's: `mannrl train --resume {Path(run_dir).parent} "
                              f"device={config.device}` (docs/replicas.md), or drop device")
        tqdm.write(f"device={config.device} applies to replicated runs: this run resumes alone, "
                   f"on the CPU (NumPy)")
    if resume:
        run_dir = Path(run_dir)
        with rundir.claim(run_dir, new_run=False, source=config.source):
            state = resumed_state(run_dir, config)  # the keys that cannot change, checked first
            task = build_task(config)
            check_trainable(config, task)
            return _run(config, task, run_dir, state)
    task = build_task(config)  # bad data fails here, before anything is written
    check_trainable(config, task)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(config)
    with rundir.claim(run_dir, new_run=True, source=config.source):
        return _run(config, task, run_dir, None)


def _run(config: Config, task, run_dir: Path, state: dict[str, Any] | None) -> Path:
    """Train ``run_dir``'s epochs (from the resumed checkpoint ``state``, if given)."""
    tracker = Tracker(config, run_dir, state["wandb_id"] if state else None)
    swept = tracker.sweep_overrides()  # a wandb sweep agent's values win over the file's
    if swept:
        config = from_mapping({**config.to_dict(), **swept}, source=f"{config.source} + wandb.config")
        task = build_task(config)
    epoch = state["epoch"] if state else 0
    if "selected" in task.details:  # the sentence tasks' chosen lengths
        tqdm.write(f"data: {task.details['selected']}")
    if note := stand_in_note(task):  # most words without a vector
        tqdm.write(f"data: {note}")
    if note := beyond_cores_note(config.num_threads):
        tqdm.write(f"threads: {note}")
    tqdm.write(f"run: {run_dir}" + (f" (resumed after epoch {epoch})" if state else ""))
    try:
        log = RunLog(config, task, run_dir, state, tracker, make_experiment(config, task))
        for epoch in range(log.start_epoch, log.start_epoch if log.spent else config.epochs):
            stopping.raise_if_requested()  # a stop whose raise was lost (mannrl_gym.stopping)
            tic = time.perf_counter()
            stats = log.experiment.run_epoch(epoch, f"epoch {epoch + 1}/{config.epochs}")
            if log.finish_epoch(epoch, stats, time.perf_counter() - tic):
                break
    except KeyboardInterrupt:
        raise Interrupted(run_dir, epoch + 1) from None
    except ActionError as refused:  # a user's agent (agent=module:Class) acted wrongly
        raise ConfigError(f"agent {config.agent}: its act() gave an action the env refuses, "
                          f"at epoch {epoch + 1}: {refused}") from None
    finally:
        tracker.finish()
    return log.close()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) while ``run_dir`` trained its (1-based) ``epoch``; checkpoints are
    written atomically, so the last one is intact. Its message is read once the run
    directory is released (a run stopped before its first checkpoint is removed by then)."""

    def __init__(self, run_dir: Path, epoch: int) -> None:
        super().__init__(run_dir, epoch)
        self.run_dir, self.epoch = Path(run_dir), epoch

    def __str__(self) -> str:
        if not self.run_dir.exists():
            return (f"interrupted at epoch {self.epoch}, before its first checkpoint; "
                    f"nothing kept")
        command = os.environ.get("MANNRL_TRAIN_COMMAND", "mannrl train")  # bootstrap.py's own
        return f"interrupted at epoch {self.epoch}; resume with: {command} --resume {self.run_dir}"


class RunLog:
    """One run directory across its epochs: resumes the experiment from ``state``, then after
    each epoch evaluates, appends metrics, logs to wandb and writes the checkpoint.

    The epochs themselves are the caller's (``_run``; ``mannrl_gym.replicas.trainer`` steps K
    runs' epochs together and keeps one RunLog per replica).
    """

    def __init__(self, config: Config, task, run_dir: Path, state: dict[str, Any] | None,
                 tracker: Tracker, experiment) -> None:
        self.config, self.task, self.run_dir = config, task, Path(run_dir)
        self.tracker, self.experiment = tracker, experiment
        self.ckpt_path = self.run_dir / "checkpoint.pt"
        self.metrics = checkpoint.MetricsLog(self.run_dir / "metrics.jsonl")
        self.start_epoch, self.elapsed = 0, 0.0
        self.session_seconds, self.session_epochs = 0.0, 0  # this process's epochs (for the ETA)
        self.line_clock = LineClock()
        self.resumes: list[dict[str, Any]] = []
        self.this_resume = None  # recorded with the first checkpoint it writes
        self.code_versions = provenance.trained_by(None if state is None else state.get("code_versions"),
                                        self.run_dir)
        # a resume's were checked (resumed_state); a run from before they were kept: now's
        self.data_sha256 = (state or {}).get("data_sha256") or provenance.data_sha256(config)
        if state is not None:
            experiment.load_state_dict(state["experiment"])
            self.start_epoch, self.elapsed = int(state["epoch"]), float(state["elapsed"])
            self.this_resume = resume_entry(state, config)
            self.resumes = list(state.get("resumes", [])) + [self.this_resume]
            self.metrics.keep_through(self.start_epoch)
            if self.metrics.torn is not None:
                print(f"{self.metrics.path}: dropped an incomplete last line (cut off "
                      f"mid-write); resuming after epoch {self.start_epoch}, the last checkpoint")
        else:
            self.metrics.keep_through(0)
            write_config(self.run_dir, config)
        if self.start_epoch >= config.epochs:
            changed = sorted((self.this_resume or {}).get("changed", {}))
            unused = (f" (nothing trained, so {', '.join(changed)} changed nothing: pass them "
                      f"with epochs=N)" if changed else "")
            print(f"{run_dir}: all {config.epochs} epochs are done; pass epochs=N to train "
                  f"further{unused}")
        elif self.spent:
            print(f"{run_dir}: max_minutes={config.max_minutes} is spent ("
                  f"{format_duration(self.elapsed)} of training over its sittings, "
                  f"{self.start_epoch} of {config.epochs} epochs); nothing trained: pass a "
                  f"larger max_minutes to train further")
        else:  # an agent whose state a checkpoint cannot hold fails now, not an epoch later
            checkpoint.check_storable(self.ckpt_path, {"experiment": experiment.state_dict()})
        self.last_row: dict[str, Any] | None = None

    @property
    def spent(self) -> bool:
        """Whether ``max_minutes`` was used up before this process trained (a resume)."""
        return (self.config.max_minutes is not None and self.session_epochs == 0
                and self.elapsed / 60 >= self.config.max_minutes)

    def out_of_time(self, train_seconds: float) -> bool:
        """Whether ``max_minutes`` is reached once an epoch of ``train_seconds`` is counted."""
        return (self.config.max_minutes is not None
                and (self.elapsed + train_seconds) / 60 >= self.config.max_minutes)

    def eta_seconds(self, epoch: int) -> float:
        """Seconds left after the 0-based ``epoch``: the epochs to go at this process's mean
        seconds per epoch (evaluations included), capped by ``max_minutes``."""
        per_epoch = self.session_seconds / max(1, self.session_epochs)
        epochs_left = self.config.epochs - epoch - 1
        if self.config.max_minutes is not None and per_epoch > 0:  # stops after the crossing epoch
            budget_left = max(0.0, self.config.max_minutes * 60 - self.elapsed)
            epochs_left = min(epochs_left, math.ceil(budget_left / per_epoch))
        return per_epoch * epochs_left

    def finish_epoch(self, epoch: int, stats: dict[str, Any], train_seconds: float,
                     stop: bool | None = None, announce: bool = True) -> bool:
        """Evaluate (when due), record and checkpoint the 0-based ``epoch`` that took
        ``train_seconds`` to train; return True when the run must stop (``max_minutes``).
        ``stop`` overrides that decision (replicas stop together)."""
        config, experiment = self.config, self.experiment
        tic = time.perf_counter()
        experiment.check_finite(f"after epoch {epoch + 1}")
        row: dict[str, Any] = {"epoch": epoch + 1}
        out_of_time = self.out_of_time(train_seconds) if stop is None else stop
        if epoch + 1 == config.epochs or out_of_time or (epoch + 1) % config.eval_every == 0:
            row.update(experiment.evaluate())
        seconds = train_seconds + time.perf_counter() - tic
        self.elapsed += seconds
        self.session_seconds, self.session_epochs = self.session_seconds + seconds, \
            self.session_epochs + 1
        row.update(stats, epoch_seconds=seconds, minutes=self.elapsed / 60)
        row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        self.metrics.append(row)
        self.tracker.log(row)
        checkpoint.save(self.ckpt_path, {"epoch": epoch + 1, "elapsed": self.elapsed,
                                         "config": config.to_dict(),
                                         "wandb_id": self.tracker.run_id,
                                         "resumes": self.resumes,
                                         "code_versions": self.code_versions,
                                         "data_sha256": self.data_sha256,
                                         "experiment": experiment.state_dict()})
        if self.this_resume is not None:  # config.yaml and resumes.jsonl follow the checkpoint
            write_config(self.run_dir, config)
            checkpoint.MetricsLog(self.run_dir / "resumes.jsonl").append(self.this_resume)
            self.this_resume = None
        self.last_row = row
        eta = None if out_of_time else self.eta_seconds(epoch)
        if announce and "train/f1" in row:
            epoch_line(_progress_line(row, eta))
            self.line_clock.printed()
        elif announce and self.line_clock.quiet():
            next_evaluation = min(config.epochs, (epoch + 1) // config.eval_every
                                  * config.eval_every + config.eval_every)
            epoch_line(_quiet_line(row, next_evaluation, eta))
            self.line_clock.printed()
        if announce and out_of_time:
            tqdm.write(f"stopping: {format_duration(self.elapsed)} of training reached "
                       f"max_minutes={config.max_minutes} (the run's training time over all "
                       f"its sittings)")
        return out_of_time

    def close(self) -> Path:
        """Write ``summary.json``; return the run directory."""
        write_summary(self.run_dir, self.metrics.read(), self.task, self.code_versions,
                      self.data_sha256)
        return self.run_dir


# Keys a resumed run cannot change: they set the shapes of the saved networks, optimizers and
# replay buffer, or the data the run trains on (its vocabulary and split).
SHAPE_KEYS = ("task", "agent", "memory_size", "hidden_size", "hidden_layers", "embed_size",
              "batch_size", "history", "memory_optimizer")
DATA_KEYS = ("data_path", "val_path", "target_path", "vectors_path", "tag_column",
             "num_sequences", "min_operands", "max_operands", "val_fraction", "holdout",
             "holdout_distinct", "seed",
             "num_sentences", "min_char_count", "reading_fill", "curriculum_every",
             "curriculum_chunk", "min_chars", "max_chars")
PLACE_KEYS = ("out_dir", "run_name")


def resume_config(run_dir: Path, overrides: dict[str, Any] | None = None) -> Config:
    """The config of the run's last checkpoint (what it really ran with), with ``overrides``
    applied; ``config.yaml`` when no checkpoint exists (``train`` then says so)."""
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        return load_run_config(run_dir, overrides)
    saved = as_saved(checkpoint.load(path).get("config", {}))
    return from_mapping({**saved, **(overrides or {})},
                        source=f"{path} (the run's config)" + (" + command line" if overrides else ""))


def _device_advice(config: Config) -> str:
    """What a single run asked to train on a device can do instead."""
    from mannrl_gym.replicas.agents import replicable, replicable_names

    if not replicable(config.agent):
        return (f"agent '{config.agent}' runs one seed per process, on the CPU (replicated: "
                f"{', '.join(replicable_names())}); drop device")
    return (f"add seeds={config.seed} to train this run there (docs/replicas.md), or drop "
            f"device for a single CPU run")


def _saved_device(run_dir: Path) -> str:
    """The ``device`` the run in ``run_dir`` last ran with (its checkpoint's, else config.yaml's)."""
    path = run_dir / "checkpoint.pt"
    saved = checkpoint.load(path).get("config", {}) if path.exists() else \
        load_run_config(run_dir).to_dict()
    return saved.get("device", "cpu")


def resumed_state(run_dir: Path, config: Config) -> dict[str, Any]:
    """The last checkpoint of ``run_dir``, once ``config`` is known to fit it.

    Raises CheckpointError when there is no checkpoint to resume from and ConfigError when
    ``config`` changes a key that the checkpoint fixes (SHAPE_KEYS, DATA_KEYS, PLACE_KEYS).
    """
    path = run_dir / "checkpoint.pt"
    if not path.exists():
        logged = checkpoint.MetricsLog(run_dir / "metrics.jsonl").read() \
            if (run_dir / "metrics.jsonl").is_file() else []
        why = (f"its metrics.jsonl logs {logged[-1]['epoch']} epoch(s), but their checkpoint "
               f"is gone" if logged else "no epoch of this run finished")
        raise checkpoint.CheckpointError(
            f"{path}: not found, so there is nothing to resume ({why}); train it anew under "
            f"another name, `mannrl train {run_dir / 'config.yaml'} out_dir={run_dir.parent} "
            f"run_name={run_dir.name}-anew`, or remove {run_dir} and train it under its own")
    state = checkpoint.load(path)
    if int(state["epoch"]) > config.epochs:
        raise ConfigError(f"{run_dir}: the run already has {state['epoch']} epochs, and "
                          f"epochs={config.epochs} is fewer; pass epochs=N with N > "
                          f"{state['epoch']} to train further (a run is not cut back)")
    saved = state.get("config", {})
    for keys, why in ((SHAPE_KEYS, "it sets the shapes of the saved networks and buffers"),
                      (DATA_KEYS, "it changes the data the run trains on"),
                      (PLACE_KEYS, f"the run stays in {run_dir}")):
        for key in keys:
            if key in PATH_KEYS and provenance.same_files(key, state.get("data_sha256"), config):
                continue  # the same bytes at another path: the data moved
            if key in saved and not same_value(key, saved[key], getattr(config, key)):
                if key in PATH_KEYS and key in (state.get("data_sha256") or {}):
                    raise ConfigError(f"{run_dir}: " + provenance.not_moved(
                        key, saved[key], state["data_sha256"][key], config))
                raise ConfigError(f"{run_dir}: key '{key}' cannot change on --resume "
                                  f"({saved[key]!r} -> {getattr(config, key)!r}): {why}; "
                                  f"start a new run instead")
    provenance.check_same_data(state.get("data_sha256"), config, run_dir,
                               "a resume would train on other data")
    return state


def resume_entry(state: dict[str, Any], config: Config) -> dict[str, Any]:
    """This resume, for ``resumes.jsonl`` and the checkpoint: the epoch it continues from, the
    time, and every key whose value differs from the checkpoint's config (from, to)."""
    saved, now = state.get("config", {}), config.to_dict()
    return {"at_epoch": int(state["epoch"]), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "code": provenance.code_version(),
            "changed": {k: {"from": saved.get(k), "to": v} for k, v in now.items()
                        if not same_value(k, saved.get(k), v)}}


def write_config(run_dir: Path, config: Config) -> None:
    checkpoint.atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.to_dict()))


def epoch_line(line: str) -> None:
    """Print a per-epoch line past any progress bar, flushed at once (a log file read during
    the run, or after a kill -9, holds every finished epoch)."""
    tqdm.write(line)
    sys.stdout.flush()


def format_duration(seconds: float) -> str:
    """``45s``, ``3m12s`` or ``2h05m``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _quiet_line(row: dict[str, Any], next_evaluation: int, eta_seconds: float | None) -> str:
    """An epoch trained without evaluation, printed when a run has been silent for
    ``QUIET_LINE_S``: where it stands until the next evaluated epoch's line."""
    return (f"epoch {row['epoch']:4d}  {row['minutes']:6.2f} min  trained; next evaluation "
            f"after epoch {next_evaluation}"
            + (f"  {row['train_steps_per_s']:.0f} steps/s" if row.get("train_steps_per_s") else "")
            + (f"  ETA {format_duration(eta_seconds)}" if eta_seconds else ""))


def _progress_line(row: dict[str, Any], eta_seconds: float | None = None) -> str:
    """One evaluated epoch: train metrics, then validation's (``exact``: answer_exact, where
    the task reports it, in its own half), then the estimated time left (``ETA``) while
    epochs remain."""
    def fmt(key: str) -> str:
        value = row.get(key)
        return "  n/a" if value is None else f"{value:.3f}"

    def exact(split: str) -> str:
        key = f"{split}/answer_exact"
        return f" exact {fmt(key)}" if key in row else ""
    return (f"epoch {row['epoch']:4d}  {row['minutes']:6.2f} min  train f1 {fmt('train/f1')} "
            f"answer {fmt('train/answer_acc')} long {fmt('train/long_range_acc')}"
            f"{exact('train')}  |  val f1 {fmt('validation/f1')} "
            f"answer {fmt('validation/answer_acc')}{exact('validation')}"
            + (f"  {row['train_steps_per_s']:.0f} steps/s" if row.get("train_steps_per_s") else "")
            + (f"  ETA {format_duration(eta_seconds)}" if eta_seconds else ""))


def first_stable_epoch(rows: list[dict[str, Any]], key: str, threshold: float) -> dict | None:
    """The first row from which ``key`` stays >= threshold until the last row (or None)."""
    found = None
    for row in rows:
        if key not in row:  # an epoch without evaluation (eval_every > 1)
            continue
        value = row.get(key)
        if value is not None and value >= threshold:
            found = found or row
        else:
            found = None
    return found


def write_summary(run_dir: Path, rows: list[dict[str, Any]], task=None,
                  code_versions: list[str] | None = None,
                  data_sha256: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Write ``summary.json``: the data, the last epoch's metrics, when F1 first reached
    0.99 for good, the code versions that trained the run and its files' sha256
    (``provenance``)."""
    summary: dict[str, Any] = {"epochs": len(rows)}
    if code_versions:
        summary["code_versions"] = code_versions
    if data_sha256:
        summary["data_sha256"] = data_sha256
    if task is not None:
        summary["data"] = {"task": task.name, "train_sequences": len(task.train),
                           "train_tokens": task.train.num_tokens,
                           "validation_sequences": len(task.validation),
                           "validation_tokens": task.validation.num_tokens,
                           "unknown_words": len(task.unknown_words),
                           "unknown_word_examples": list(task.unknown_words[:20]),
                           **task.details}
    if rows:
        summary["final"] = rows[-1]
        for key in ("train/f1", "validation/f1", "train/answer_acc", "validation/answer_acc"):
            stable = first_stable_epoch(rows, key, F1_TARGET)
            summary[f"{key} >= {F1_TARGET} from"] = (
                {"epoch": stable["epoch"], "minutes": stable["minutes"]} if stable else None)
    checkpoint.atomic_write_text(Path(run_dir) / "summary.json", json.dumps(summary, indent=2))
    return summary
