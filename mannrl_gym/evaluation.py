"""Evaluation of (action network, memory agent) over the splits; nothing is learned.

Batch norm in A's eval mode uses running statistics, an average over the last few training
batches. In MANN-RL those trail the memory-net: after each memory update the memories
shift, and in train mode A's batch statistics absorb the shift at once while the running ones
lag. Measured on Logic (Table 1, single softmax), end-of-epoch accuracy swung between 0.42
and 0.98 with running statistics while training accuracy held at 0.975.
``bn_statistics="recalibrated"`` (default) first re-estimates them exactly over one pass of
the training split with the current memory-net ("precise BN"), evaluates, then puts the
running statistics back, so training itself is untouched; ``"batch"`` normalises each
evaluation batch by its own statistics, as training does.

Every evaluated sequence starts from the same memory, so a sequence's figures depend on the
model and that sequence alone, never on ``eval_batch_size``, the split's size or its order.
With ``carry_memory`` (the reference) that memory is a warm one: what the agent has written
after reading the first ``WARMUP_SEQUENCES`` training sequences from zeros, i.e. an ordinary
end-of-sequence memory like those a sequence starts from in training. (Read as one stream
instead, each slot's first sequence starts cold from zeros, a memory training never shows A
after its first steps: 500 validation sequences in 256 slots start half their sequences
cold.) Without carry_memory it is zeros, as in training. With ``bn_statistics="batch"`` rows
share batch statistics, so figures still depend on the layout.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from mannrl_gym.envs.vector_env import MannRLVectorEnv, evaluation_env
from mannrl_gym.metrics import summarize
from mannrl_gym.protocols import MemoryAgent
from mannrl_gym.rollout import rollout

WARMUP_SEQUENCES = 8  # training sequences read before evaluation, for the warm start memory


def evaluation_envs(task, config, learner) -> dict[str, MannRLVectorEnv]:
    """Non-learning envs over both splits, in data order, sharing ``learner`` (A)."""
    return {split: evaluation_env(task, config, learner, split, config.eval_batch_size)
            for split in ("train", "validation")}


@torch.no_grad()
def warm_start_memory(env: MannRLVectorEnv, agent: MemoryAgent) -> np.ndarray:
    """(M,) float32: the memory every evaluated sequence starts from (see the module text).

    Reads the first ``WARMUP_SEQUENCES`` training sequences, back to back, in one slot with A
    in eval mode; a Python step per token (about a hundred), once per evaluation.
    """
    memory = np.zeros((1, env.config.memory_size), dtype=np.float32)
    if not env.config.carry_memory:
        return memory[0]
    train = env.task.train
    end = int(train.offsets[min(WARMUP_SEQUENCES, len(train))])
    inputs, targets = train.inputs[:end].numpy(), train.targets[:end].numpy()
    live = np.ones(1, dtype=bool)
    for t in range(end):
        observation, _, _, _ = env.core(inputs[t:t + 1], targets[t:t + 1], live, memory,
                                        learn=False, all_valid=True)
        memory = np.asarray(agent.act(observation), dtype=np.float32)
    return memory[0]


def recalibrate(env: MannRLVectorEnv, agent: MemoryAgent) -> list:
    """Set A's batch-norm running statistics to their exact values over one pass of ``env``
    (the training split) with the current memory-net; return the old ones.

    With one batch-norm layer its moments do not depend on how it normalises, so the pass
    uses the running statistics. With several, a layer's moments depend on how the layers
    before it normalise, so the pass normalises every layer by its batch's own statistics
    (eval_batch_size rows, as precise BN does); from stale upstream statistics the deeper
    estimates are wrong (measured on the sentence task: an embedding layer whose variance had
    shrunk to 1e-6 made the recalibrated network predict one character everywhere).
    """
    learner = env.learner
    start_memory = warm_start_memory(env, agent)  # before the moments start counting
    learner.start_moments()
    learner.eval_batch_statistics = len(learner.blocks) > 1
    try:
        evaluate(env, agent, start_memory)
    finally:
        learner.eval_batch_statistics = False
    return learner.use_moments()


@contextmanager
def evaluation_statistics(train_env: MannRLVectorEnv, agent: MemoryAgent, bn_statistics: str
                          ) -> Iterator[list[tuple[np.ndarray, np.ndarray]] | None]:
    """Inside the block, A's batch norm evaluates as ``bn_statistics`` says; afterwards the
    training statistics are back. Yields the recalibrated statistics (copies), else None.

    bn_statistics: "running" (A's running averages, as training left them), "recalibrated"
    (re-estimated over one pass of ``train_env``, the training split) or "batch" (each
    evaluation batch's own statistics, as in training).
    """
    learner = train_env.learner
    saved = recalibrate(train_env, agent) if bn_statistics == "recalibrated" else None
    learner.eval_batch_statistics = bn_statistics == "batch"
    try:
        yield learner.statistics() if saved is not None else None
    finally:
        learner.eval_batch_statistics = False
        if saved is not None:
            learner.restore_statistics(saved)


def evaluate_all(envs: dict[str, MannRLVectorEnv], agent: MemoryAgent) -> dict[str, float]:
    """Metrics ``{split}/{name}`` on every env of ``envs``, with A's statistics as they are.

    The envs share one task and one A, so one warm start memory serves them all."""
    start_memory = warm_start_memory(next(iter(envs.values())), agent)
    return {f"{split}/{key}": value for split, env in envs.items()
            for key, value in evaluate(env, agent, start_memory).items()}


def evaluate_splits(envs: dict[str, MannRLVectorEnv], agent: MemoryAgent,
                    bn_statistics: str = "recalibrated") -> dict[str, float]:
    """Metrics ``{split}/{name}`` on every env of ``envs`` (which must include "train"), with
    A's batch norm as ``bn_statistics`` says (see ``evaluation_statistics``; for "batch", B =
    eval_batch_size slots at one time step)."""
    with evaluation_statistics(envs["train"], agent, bn_statistics):
        return evaluate_all(envs, agent)


@torch.no_grad()
def evaluate(env: MannRLVectorEnv, agent: MemoryAgent, start_memory: np.ndarray | None = None
             ) -> dict[str, float]:
    """Run ``agent`` over one pass of ``env`` (a non-learning env) and return its metrics;
    every sequence starts from ``start_memory`` (default: ``warm_start_memory``)."""
    if env.learn:
        raise ValueError("evaluate() needs an env built with learn=False")
    env.start_memory = warm_start_memory(env, agent) if start_memory is None else start_memory
    keys = ("prediction", "target", "answer_step", "long_range", "kind", "loss", "valid",
            "sequence")
    rows: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for _, _, info, _ in rollout(env, agent):
        for k in keys:
            rows[k].append(info[k])
    flat = {k: torch.from_numpy(np.stack(v)).reshape(-1) for k, v in rows.items()}
    valid = flat.pop("valid")
    flat = {k: v[valid] for k, v in flat.items()}
    return summarize(flat["prediction"], flat["target"], flat["answer_step"], flat["long_range"],
                     flat["kind"], flat["loss"], env.task.num_outputs, env.data.kind_names,
                     flat["sequence"])
