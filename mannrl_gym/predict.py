"""Decoding for the sentence tasks: read a sentence, then let the trained model write it back.

``Predictor(run_dir).write(["Who are they?"])`` runs the action network and memory-net of a
finished (or interrupted) run exactly as in evaluation: the memory starts where every
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

from mannrl_gym.config import ConfigError
from mannrl_gym.evaluation import recalibrate as recalibrate_statistics
from mannrl_gym.evaluation import warm_start_memory
from mannrl_gym.experiments import MannRLExperiment
from mannrl_gym.envs.core import step_outputs
from mannrl_gym.rundir import load_run

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


class Predictor:
    """A trained sentence or translation run, loaded from its directory (read-only)."""

    def __init__(self, run_dir: str | Path, recalibrate: bool = True) -> None:
        saved = load_run(run_dir)
        self.config = saved.config
        if self.config.task not in SENTENCE_TASKS:
            raise ConfigError(f"{run_dir}: predict writes sentences; this run's task is "
                              f"'{self.config.task}', not one of {list(SENTENCE_TASKS)}")
        experiment = MannRLExperiment.from_run(saved)
        self.task = experiment.task
        self.learner, self.agent = experiment.env.learner, experiment.agent
        self.epochs_trained = saved.epochs_trained
        self.recalibrated_now = False
        experiment.evaluators["train"].epoch = self.epochs_trained - 1  # what had trained
        if recalibrate and experiment.evaluation_bn is not None:
            self.learner.restore_statistics(experiment.evaluation_bn)
        elif recalibrate:
            recalibrate_statistics(experiment.evaluators["train"], self.agent)
            self.recalibrated_now = True
        self.start_memory = warm_start_memory(experiment.evaluators["train"], self.agent)
        self._table = self.task.input_table.to(torch.float32).numpy()
        self._empty = self.task.input_symbols.index("<empty>")
        self._end = self.task.output_symbols.index("<end>")

    def write(self, texts: list[str] | str, drop_unknown: bool = False,
              max_chars: int | None = None) -> list[Written]:
        """Read each text and return what the model writes back (one batch, B = len(texts);
        a single str is one text).

        Characters the model never saw in training raise ``DataError`` naming them, or are
        removed with ``drop_unknown=True``. ``max_chars`` defaults to twice the longest input
        plus 20.
        """
        from mannrl_gym.tasks.sentence import encode_inputs

        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return []
        reads = [encode_inputs(self.task, text, drop_unknown) for text in texts]
        longest = max(len(r) for r in reads)
        limit = max_chars if max_chars is not None else 2 * longest + 20
        steps = longest + limit
        inputs = np.full((steps, len(reads)), self._empty, dtype=np.int64)
        for row, read in enumerate(reads):  # once per sentence, not per step
            inputs[:len(read), row] = read
        memory = np.repeat(self.start_memory[None], len(reads), axis=0)
        no_targets = np.zeros(len(reads), dtype=np.int64)
        written = np.zeros((steps, len(reads)), dtype=np.int64)
        with torch.no_grad():
            for t in range(steps):
                features = self._table[inputs[t]]
                probs, loss = self.learner.evaluate(features, memory, no_targets)
                observation, _, written[t] = step_outputs(
                    memory, features, probs, loss, 0.0,
                    None if self.config.memory_sees_output else 0.0)
                memory = self.agent.act(observation)
        results = []
        for row, read in enumerate(reads):
            out = written[len(read):len(read) + limit, row].tolist()
            finished = self._end in out
            out = out[:out.index(self._end)] if finished else out
            results.append(Written(decode(self.task.input_symbols, read),
                                   decode(self.task.output_symbols, out), finished))
        return results
