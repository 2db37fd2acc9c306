"""Decoding for the sentence tasks: read a sentence, then let the trained model write it back.

``Predictor(run_dir).write(["Who are they?"])`` runs a finished (or interrupted) run's model
exactly as in evaluation. The LSTM peer (``LSTMWriter``) reads the characters and writes from
its state, which starts at zero. A memory agent (``MemoryWriter``) runs its action network
and memory-net: the memory starts where every
evaluated sequence starts (``evaluation.warm_start_memory``: what the agent writes after eight
training sequences; zeros without ``carry_memory``), the model reads ``<start>``, the characters and ``<sep>``, then gets ``<empty>`` inputs and writes one
character a step until it writes ``<end>`` (or ``max_chars`` characters). Every row of a batch
is independent (batch norm in eval mode), so many sentences are written at once.

Batch norm uses the statistics re-estimated over one pass of the training split, as the
trainer's default evaluation does (``bn_statistics="recalibrated"``): the trainer saves them in
the checkpoint of every epoch it evaluates that way, so they are read, not recomputed; for an
older checkpoint, or one taken after an epoch evaluated otherwise, they are re-estimated here
(``recalibrated_now``). The checkpoint is never changed. ``mannrl predict RUN_DIR "a sentence"
...`` is the command-line face of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mannrl_gym import agent_registry
from mannrl_gym.config import PATH_KEYS, ConfigError, missing_files
from mannrl_gym.errors import DataError
from mannrl_gym.evaluation import recalibrate as recalibrate_statistics
from mannrl_gym.evaluation import warm_start_memory
from mannrl_gym.experiments import MannRLExperiment
from mannrl_gym.envs.core import step_outputs
from mannrl_gym.rundir import SavedRun, load_run

SENTENCE_TASKS = ("sentence", "translate")


@dataclass
class Written:
    """What the model wrote for one input sentence."""

    source: str  # the sentence as read (cleaned)
    text: str  # the characters written after <sep>, up to <end>
    finished: bool  # the model wrote <end> within the step limit


def decode(symbols: tuple[str, ...], ids) -> str:
    """Ids (any iterable of int) -> text; special symbols are dropped."""
    return "".join(symbols[i] for i in ids if not symbols[i].startswith("<") or len(symbols[i]) == 1)


def writing_limits(lengths: list[int], max_chars: int | None = None) -> list[int]:
    """The characters each text may write: ``max_chars``, by default twice the text's own
    length plus 20 (a batch runs as long as its longest text needs; each row is cut at its
    own limit, so a text writes the same alone or beside a longer one)."""
    return [max_chars if max_chars is not None else 2 * length + 20 for length in lengths]


class MemoryWriter:
    """A memory agent's run: the action network and memory-net step by step, the memory
    starting where every evaluated sequence starts (``warm_start_memory``)."""

    def __init__(self, saved: SavedRun, recalibrate: bool = True) -> None:
        experiment = MannRLExperiment.from_run(saved)
        self.task, self.config = experiment.task, saved.config
        self.learner, self.agent = experiment.env.learner, experiment.agent
        self.recalibrated_now = False
        experiment.evaluators["train"].epoch = saved.epochs_trained - 1  # what had trained
        if recalibrate and experiment.evaluation_bn is not None:
            self.learner.restore_statistics(experiment.evaluation_bn)
        elif recalibrate:
            recalibrate_statistics(experiment.evaluators["train"], self.agent)
            self.recalibrated_now = True
        self.start_memory = warm_start_memory(experiment.evaluators["train"], self.agent)
        self._table = self.task.input_table.to(torch.float32).numpy()

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """(T, B) input ids -> (T, B) the ids written at each step."""
        steps, batch = inputs.shape
        memory = np.repeat(self.start_memory[None], batch, axis=0)
        no_targets = np.zeros(batch, dtype=np.int64)
        written = np.zeros((steps, batch), dtype=np.int64)
        with torch.no_grad():
            for t in range(steps):
                features = self._table[inputs[t]]
                probs, loss = self.learner.evaluate(features, memory, no_targets)
                observation, _, written[t] = step_outputs(
                    memory, features, probs, loss, 0.0,
                    None if self.config.memory_sees_output else 0.0)
                memory = self.agent.act(observation)
        return written


class LSTMWriter:
    """The LSTM peer's run: one pass of the sequence model over the inputs (its state starts
    at zero, as in training and evaluation)."""

    recalibrated_now = False  # no batch norm

    def __init__(self, saved: SavedRun) -> None:
        from mannrl_gym.experiments.lstm import LSTMExperiment
        from mannrl_gym.tasks import build_task

        experiment = LSTMExperiment(saved.config, build_task(saved.config))
        experiment.load_state_dict(saved.experiment_state)
        self.task, self.model = experiment.task, experiment.model.eval()

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """(T, B) input ids -> (T, B) the ids written at each step."""
        with torch.no_grad():
            scores = self.model(torch.from_numpy(np.ascontiguousarray(inputs.T)))
        return scores.argmax(-1).numpy().T


WRITERS = {"lstm": LSTMWriter}  # agents other than the memory agents that predict can run


def _refuse_missing_files(run_dir: Path, config) -> None:
    """DataError naming the first data file of the run that is not where it was read, and
    how to say where it lies now."""
    for key in PATH_KEYS:
        missing = missing_files(getattr(config, key))
        if missing:
            raise DataError(f"{run_dir}: its {key} {missing[0]} is not there (moved?); give "
                            f"where it lies now: mannrl predict {run_dir} "
                            f"--{key.replace('_', '-')} PATH (its bytes must be the ones the "
                            f"run read)")


class Predictor:
    """A trained sentence or translation run, loaded from its directory (read-only): a
    memory agent's (``MemoryWriter``) or the LSTM peer's (``LSTMWriter``)."""

    def __init__(self, run_dir: str | Path, recalibrate: bool = True,
                 paths: dict[str, str] | None = None) -> None:
        """``paths``: where the run's data files lie now, where they moved (``data_path``,
        ``target_path``); each must hold the bytes the run read (its ``data_sha256``)."""
        unknown = sorted(set(paths or {}) - set(PATH_KEYS))
        if unknown:
            raise ConfigError(f"paths: {unknown[0]!r} is not a path key; one of {list(PATH_KEYS)}")
        saved = load_run(run_dir, paths)
        self.config = saved.config
        _refuse_missing_files(Path(run_dir), self.config)
        if self.config.task not in SENTENCE_TASKS:
            raise ConfigError(f"{run_dir}: predict writes sentences; this run's task is "
                              f"'{self.config.task}', not one of {list(SENTENCE_TASKS)}")
        agent = self.config.agent
        if agent in WRITERS:
            self.writer = WRITERS[agent](saved)
        elif agent_registry.has_memory_agent(agent):
            self.writer = MemoryWriter(saved, recalibrate)
        else:
            raise ConfigError(f"{run_dir}: predict writes with a memory agent "
                              f"{agent_registry.memory_agent_names()} or "
                              f"{' / '.join(WRITERS)}; this run's agent is '{agent}'")
        self.task = self.writer.task
        self.epochs_trained = saved.epochs_trained
        self.recalibrated_now = self.writer.recalibrated_now
        self._empty = self.task.input_symbols.index("<empty>")
        self._end = self.task.output_symbols.index("<end>")

    def write(self, texts: list[str] | str, drop_unknown: bool = False,
              max_chars: int | None = None) -> list[Written]:
        """Read each text and return what the model writes back (one batch, B = len(texts);
        a single str is one text).

        Characters the model never saw in training raise ``DataError`` naming them, or are
        removed with ``drop_unknown=True``. ``max_chars``: ``writing_limits``."""
        from mannrl_gym.tasks.sentence import encode_inputs

        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return []
        reads = [encode_inputs(self.task, text, drop_unknown) for text in texts]
        limits = writing_limits([len(read) for read in reads], max_chars)
        steps = max(len(read) + limit for read, limit in zip(reads, limits))
        inputs = np.full((steps, len(reads)), self._empty, dtype=np.int64)
        for row, read in enumerate(reads):  # once per sentence, not per step
            inputs[:len(read), row] = read
        written = self.writer.outputs(inputs)
        results = []
        for row, (read, limit) in enumerate(zip(reads, limits)):
            out = written[len(read):len(read) + limit, row].tolist()
            finished = self._end in out
            out = out[:out.index(self._end)] if finished else out
            results.append(Written(decode(self.task.input_symbols, read),
                                   decode(self.task.output_symbols, out), finished))
        return results
