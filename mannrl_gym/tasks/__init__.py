"""Tasks: where sequences come from. ``build_task(config)`` picks one by ``config.task``."""

from __future__ import annotations

from mannrl_gym import agent_registry
from mannrl_gym.config import Config
from mannrl_gym.errors import ConfigError, DataError
from mannrl_gym.tasks.base import SequenceSet, Task


def _vectors_at_hand(config: Config) -> bool:
    from mannrl_gym.vectors import DEFAULT_CACHE, DEFAULT_VECTORS
    from pathlib import Path

    if config.vectors_path:
        return Path(config.vectors_path).is_file()
    return (Path(config.cache_dir or DEFAULT_CACHE) / DEFAULT_VECTORS).is_file()


def build_task(config: Config) -> Task:
    """The Task a config names, with its train/validation split drawn from ``config.seed``;
    ConfigError when a split is empty."""
    task = _build(config)
    sizes = {"train": len(task.train), "validation": len(task.validation)}
    for split, size in sizes.items():
        if size == 0:
            more = (f"raise num_sequences (now {config.num_sequences})" if config.task == "logic"
                    else f"give more sequences in {config.data_path}" + (
                        f" or {config.val_path}" if config.val_path else ""))
            raise ConfigError(f"{config.source}: the {split} split holds no sequences "
                              f"({sizes['train']} train, {sizes['validation']} validation); "
                              f"{more}")
    return task


STAND_IN_SHARE = 0.25  # more of the vocabulary than this without a word vector: said


def stand_in_note(task: Task) -> str | None:
    """A line on the word vectors where more than ``STAND_IN_SHARE`` of the task's words have
    none (each reads a stand-in; a wrong vectors file looks like this), else None. The trainer
    prints it; an env warns with it."""
    if len(task.unknown_words) <= STAND_IN_SHARE * len(task.input_symbols):
        return None
    return (f"{len(task.unknown_words)} of the {len(task.input_symbols)} words have no vector "
            f"in {task.details.get('word_vectors')} and read a stand-in (e.g. "
            f"{', '.join(task.unknown_words[:3])}): the input tells them apart little; is it "
            f"the vectors file meant?")


def check_trainable(config: Config, task: Task) -> None:
    """ConfigError when training ``config`` on ``task`` cannot work: ``batch_size`` above the
    training sequences (slots that never read), or arrays beyond this machine's memory
    (``footprint``)."""
    from mannrl_gym.footprint import check_footprint

    sequences = len(task.train)
    if config.batch_size > sequences:
        raise ConfigError(f"{config.source}: key 'batch_size' is {config.batch_size}, but the "
                          f"training split holds {sequences} sequences: "
                          f"{config.batch_size - sequences} slots would idle at every step; "
                          f"use batch_size <= {sequences}")
    check_footprint(config, task)


def _build(config: Config) -> Task:
    if config.task == "logic":
        from mannrl_gym.tasks import logic
        try:
            return logic.make_task(config.num_sequences, config.seed, config.val_fraction,
                                   config.holdout, config.min_operands, config.max_operands,
                                   config.holdout_distinct)
        except ConfigError as exc:  # the split found the key impossible for this data
            raise ConfigError(f"{config.source}: {exc} (num_sequences={config.num_sequences}, "
                              f"seed {config.seed})") from None
    from mannrl_gym.samples import check_files
    check_files(config)  # a missing file: one line naming the full data and data=sample
    if config.task == "jsonl":
        from mannrl_gym.tasks import jsonl
        return jsonl.make_task(config.data_path, config.val_path, config.seed,
                               config.val_fraction, config.holdout)
    if config.task == "pos":
        from mannrl_gym.tasks import pos
        from mannrl_gym.vectors import default_vectors_path
        if not agent_registry.entry(config.agent).reads_features and not _vectors_at_hand(config):
            vectors = None  # these agents never read the input features
        else:
            vectors = config.vectors_path or default_vectors_path(config.cache_dir)
        return pos.make_task(config.data_path, config.val_path, vectors, config.tag_column,
                             config.cache_dir)
    if config.task in ("sentence", "translate"):
        from mannrl_gym.tasks import sentence
        try:
            return sentence.make_task(config.data_path, config.target_path,
                                      config.num_sentences, config.val_fraction,
                                      config.min_char_count, config.reading_fill,
                                      config.curriculum_every, config.curriculum_chunk,
                                      config.min_chars, config.max_chars)
        except ConfigError as exc:  # the length band holds too few sentences of this file
            raise ConfigError(f"{config.source}: {exc}") from None
    raise ValueError(f"unknown task {config.task!r}")


__all__ = ["DataError", "SequenceSet", "Task", "build_task", "check_trainable"]
