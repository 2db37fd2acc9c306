"""Batching: refill layout, idle rows kept out of every network, aligned batches, and an
evaluation that measures the model rather than the evaluation layout."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import small_config
from mannrl_gym.agents import MannRLAgent
from mannrl_gym.envs.core import StepCore, make_learner
from mannrl_gym.envs.vector_env import MannRLVectorEnv
from mannrl_gym.evaluation import evaluate
from mannrl_gym.stream import layout
from mannrl_gym.tasks import build_task, logic
from mannrl_gym.trainer import train


def test_refill_keeps_every_slot_busy_until_the_order_runs_out():
    data = logic.make_task(2000, seed=0).train
    refill = layout(data, 16, torch.Generator().manual_seed(0), "refill")
    static = layout(data, 16, torch.Generator().manual_seed(0), "static")
    for stream in (refill, static):
        assert int(stream.valid.sum()) == data.num_tokens
        assert int(stream.start.sum()) == len(data)
        assert sorted(stream.sequence[stream.start].tolist()) == list(range(len(data)))
    longest = int(data.lengths.max())
    idle_rows = lambda stream: int((~stream.valid).sum())  # noqa: E731
    assert idle_rows(refill) < 16 * longest  # the tail is shorter than one sequence
    assert idle_rows(static) > 5 * idle_rows(refill)
    # a slot frees -> it starts the next sequence on the very next step: no idle step before
    # the last sequence of the pass has started
    last_start = int(torch.nonzero(refill.start.any(1)).max())
    assert refill.valid[:last_start + 1].all()


def test_stagger_desynchronizes_equal_length_sequences():
    task = jsonl_task(None, identical=True)
    stream = layout(task.train, 16, torch.Generator().manual_seed(0), stagger=True)
    busy = stream.valid.sum(1) >= 8  # all but the few first and last steps of the pass
    first_live = stream.inputs.gather(1, stream.valid.int().argmax(1, keepdim=True))
    aligned = ((stream.inputs == first_live) | ~stream.valid).all(1)
    assert busy.sum() > 30 and not aligned[busy].any()
    plain = layout(task.train, 16, torch.Generator().manual_seed(0), stagger=False)
    assert ((plain.inputs == plain.inputs[:, :1]) | ~plain.valid).all()  # without: all aligned


def test_an_input_shared_by_every_row_is_erased_by_batch_norm_in_training():
    """The cause of the aligned-batch defect: in train mode A's first batch norm subtracts
    the batch mean, so a symbol that stands in every row leaves no trace in the output."""
    task = jsonl_task(None, identical=True)
    config = small_config(task="jsonl", data_path="unused")
    outputs = []
    for symbol in (0, 1):
        learner = make_learner(task, config, seed=0)
        features = np.repeat(task.input_table[symbol:symbol + 1].numpy(), 16, axis=0)
        memory = np.random.default_rng(0).random((16, 48), dtype=np.float32)
        probs, _ = learner.train_step(features, memory, np.zeros(16, dtype=np.int64))
        outputs.append(probs)
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)


def test_idle_rows_do_not_train_the_action_network():
    """A step with idle rows trains A exactly as the step of its live rows alone."""
    config = small_config()
    task = build_task(config)
    rng = np.random.default_rng(0)
    live = np.array([True] * 5 + [False] * 3)
    ids, targets = rng.integers(0, 11, 8), rng.integers(0, 11, 8)
    memory = rng.random((8, 48), dtype=np.float32)
    memory[~live] = 1.0  # what an idle row might hold: it must not matter
    learners = [make_learner(task, config, seed=0) for _ in range(2)]
    env_layout = MannRLVectorEnv(task, config, 8).layout
    StepCore(task, learners[0], env_layout, 10.0)(ids, targets, live, memory, True, all_valid=False)
    learners[1].train_step(task.input_table[ids[live]].numpy(), memory[live], targets[live])
    assert torch.equal(learners[0].flat, learners[1].flat)
    for (mean, var), (mean_live, var_live) in zip(learners[0].statistics(),
                                                  learners[1].statistics()):
        np.testing.assert_array_equal(mean, mean_live)
        np.testing.assert_array_equal(var, var_live)


def test_f_statistics_match_a_pass_without_idle_rows():
    """f's running statistics after learning from a replay whose idle rows hold garbage equal
    those after learning from the same replay with those rows removed beforehand."""
    config = small_config(settle=0, history=6, memory_samples=5)
    task = build_task(config)
    env_layout = MannRLVectorEnv(task, config, 4).layout
    rng = np.random.default_rng(1)
    states = rng.random((6, 4, env_layout.size), dtype=np.float32)
    rewards = -rng.random((6, 4), dtype=np.float32)
    valid = np.ones((6, 4), dtype=bool)
    valid[:, 3] = False  # slot 3 idle for the whole buffer: the long tail of a pass
    garbage = states.copy()
    garbage[:, 3] = 50.0
    agents = [MannRLAgent(env_layout, config, slots, seed=0) for slots in (4, 4, 3)]
    for k in range(6):
        agents[0].replay.push(states[k], rewards[k], valid[k], valid[k])
        agents[1].replay.push(garbage[k], rewards[k], valid[k], valid[k])
        agents[2].replay.push(states[k, :3], rewards[k, :3], valid[k, :3], valid[k, :3])
    for agent in agents:
        agent.learn()
    reference = agents[2].net.state_dict()
    for agent in agents[:2]:
        for key, value in agent.net.state_dict().items():
            torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6, msg=key)


def jsonl_task(tmp_path, identical: bool):
    """Equal-length sequences: ``1 2 ?`` -> ``- - 2`` (identical) or ``x y ?`` -> ``- - x``."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(240):
        x, y = ("1", "2") if identical else tuple(rng.choice(["1", "2", "3"], 2))
        rows.append({"input": [x, y, "?"], "target": ["-", "-", y if identical else x],
                     "answer": [2]})
    path = Path(tmp_path or tempfile.mkdtemp()) / "eq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return build_task(small_config(task="jsonl", data_path=str(path)))


@pytest.mark.parametrize("identical", [True, False])
def test_equal_length_task_is_learned(tmp_path, identical):
    """Issue: aligned batches trained MANN-RL to F1 0.0 on such a task (LSTM: 1.0)."""
    jsonl_task(tmp_path, identical)  # writes eq.jsonl
    config = small_config(task="jsonl", data_path=str(tmp_path / "eq.jsonl"), epochs=12, lr=3e-3,
                          out_dir=str(tmp_path / "runs"), run_name="eq")
    run = train(config)
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["train/f1"] >= 0.99 and last["validation/f1"] >= 0.99


def test_validation_figures_do_not_depend_on_layout():
    """The same sequences evaluated as 'train' and as 'validation' (another order, another
    eval batch size) give the same figures; before, slots that read one or two sequences
    started cold and validation fell below train at the same model."""
    config = small_config(num_sequences=400, holdout="random", epochs=1)
    task = build_task(config)
    same = dataclasses.replace(task, validation=task.train.subset(torch.arange(len(task.train)).flip(0)))
    env = MannRLVectorEnv(same, config, 16)
    agent = MannRLAgent(env.layout, config, 16, seed=0)
    observation, _ = env.reset(seed=0)
    for _ in range(env.steps_per_pass - 1):  # one training pass: a model that uses its memory
        observation, reward, _, _, info = env.step(agent.act(observation))
        agent.observe(observation, reward, info)
    figures = {}
    for split, slots in (("train", 64), ("validation", 7)):
        evaluator = MannRLVectorEnv(same, config, slots, split=split, learner=env.learner,
                                    learn=False, shuffle=False)
        figures[split] = evaluate(evaluator, agent)
    assert figures["train"]["f1"] > 0.3
    for key, value in figures["train"].items():
        assert figures["validation"][key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key


def test_refill_schedules_of_many_passes_equal_each_pass_alone():
    """The replicas' schedules in one loop over (K, B) free times equal K heap loops: the
    same slot and start for every sequence, ties to the lower slot, passes of other lengths."""
    import numpy as np

    from mannrl_gym.stream import refill_schedule, refill_schedules

    rng = np.random.default_rng(0)
    lengths = [rng.integers(1, 6, size=n) for n in (40, 37, 1, 40)]  # short: many ties
    first_free = rng.integers(0, 3, size=(4, 8))
    first_free[0] = 0  # every slot free at once
    together = refill_schedules(lengths, first_free)
    for k, (slots, starts) in enumerate(together):
        alone = refill_schedule(lengths[k], first_free[k])
        np.testing.assert_array_equal(slots, alone[0])
        np.testing.assert_array_equal(starts, alone[1])
