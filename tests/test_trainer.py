import json
import os
import signal
import subprocess
import sys
import time

import pytest
import numpy as np
import torch

from mannrl_gym import checkpoint, cli
from mannrl_gym.checkpoint import CheckpointError
from mannrl_gym.config import ConfigError
from mannrl_gym.trainer import train

from conftest import ROOT, small_config


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def comparable(rows):
    drop = ("minutes", "epoch_seconds", "train_steps_per_s")
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def test_training_writes_metrics_summary_and_a_safe_checkpoint(tmp_path):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="r"))
    rows = metrics(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    for split in ("train", "validation"):
        for key in ("f1", "answer_acc", "long_range_acc", "accuracy", "answer_acc_and"):
            assert f"{split}/{key}" in rows[-1]
        assert 0.0 <= rows[-1][f"{split}/f1"] <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2
    torch.load(run_dir / "checkpoint.pt", weights_only=True)  # plain tensors and data only
    state = checkpoint.load(run_dir / "checkpoint.pt")
    assert state["epoch"] == 2 and {"learner", "agent"} <= set(state["experiment"])


def test_same_seed_same_metrics_and_resume_matches_uninterrupted(tmp_path):
    full = train(small_config(out_dir=str(tmp_path), run_name="full", epochs=3))
    again = train(small_config(out_dir=str(tmp_path), run_name="again", epochs=3))
    assert comparable(metrics(full)) == comparable(metrics(again))
    part = train(small_config(out_dir=str(tmp_path), run_name="part", epochs=2))
    train(small_config(out_dir=str(tmp_path), run_name="part", epochs=3), run_dir=part, resume=True)
    assert comparable(metrics(part)) == comparable(metrics(full))


def test_a_run_directory_is_never_overwritten(tmp_path):
    train(small_config(out_dir=str(tmp_path), run_name="r", epochs=1))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(small_config(out_dir=str(tmp_path), run_name="r", epochs=1))


def test_checkpoints_with_pickled_objects_or_truncated_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": 2, "payload": ConfigError("pickled object")}, evil)
    with pytest.raises(CheckpointError, match="refused: .*(ConfigError).* does not unpickle"):
        checkpoint.load(evil)
    # saving one is refused at once, naming where it lies (an agent's state_dict(), say),
    # not at the next resume; numpy arrays too, which weights_only refuses
    for odd, name in (ConfigError("pickled object"), "ConfigError"), (np.zeros(3), "ndarray"):
        with pytest.raises(CheckpointError, match=rf"cannot keep state\['experiment'\]\["
                                                  rf"'agent'\]\[1\], a .*{name}"):
            checkpoint.save(evil, {"experiment": {"agent": [torch.ones(2), odd]}})
    assert "\x1b" not in checkpoint._reason(ValueError("\x1b[1mbold\x1b[0m"))
    good = tmp_path / "good.pt"
    checkpoint.save(good, {"x": torch.ones(1000)})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="cut.pt"):
        checkpoint.load(cut)
    assert torch.equal(checkpoint.load(good)["x"], torch.ones(1000))


def test_wandb_offline_logs_without_network(tmp_path):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="w", epochs=1,
                                 wandb_mode="offline"))
    assert list((run_dir / "wandb").glob("offline-run-*"))


@pytest.mark.parametrize("delay", [0.05, 0.45])
def test_killed_run_resumes_to_the_same_metrics(tmp_path, delay):
    args = ["num_sequences=300", "epochs=4", "wandb_mode=disabled", "progress=false",
            "eval_batch_size=64", f"out_dir={tmp_path}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "mannrl_gym.cli", "train", str(ROOT / "configs/logic.yaml")]
    subprocess.run(base + args + ["run_name=whole"], check=True, env=env, capture_output=True)
    victim = subprocess.Popen(base + args + ["run_name=killed"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(delay)  # somewhere inside the next epoch: training, evaluating or saving
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert cli.main(["train", "--resume", str(tmp_path / "killed")]) == 0
    assert comparable(metrics(tmp_path / "killed")) == comparable(metrics(tmp_path / "whole"))


def test_users_own_task_trains_from_a_jsonl_file_with_no_code(tmp_path, capsys):
    data = tmp_path / "reverse.jsonl"
    lines = []
    for a in "xyz":
        for b in "xyz":
            lines.append(json.dumps({"input": [a, b, "?", "?"], "target": ["-", "-", b, a],
                                     "answer": [2, 3]}))
    data.write_text("\n".join(lines * 10) + "\n")
    config = tmp_path / "mine.yaml"
    config.write_text(f"task: jsonl\ndata_path: {data}\nepochs: 1\nwandb_mode: disabled\n"
                      f"progress: false\nout_dir: {tmp_path}\nrun_name: mine\nholdout: random\n")
    assert cli.main(["train", str(config)]) == 0
    row = metrics(tmp_path / "mine")[0]
    assert row["train/answer_acc"] is not None


def test_bad_jsonl_names_file_and_line(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"input": ["a"], "target": ["b"]}\n{"input": ["a", "b"], "target": ["b"]}\n')
    config = tmp_path / "c.yaml"
    config.write_text(f"task: jsonl\ndata_path: {data}\nwandb_mode: disabled\nout_dir: {tmp_path}\n")
    assert cli.main(["train", str(config)]) == 2
    assert f"{data}:2" in capsys.readouterr().err


def test_recalibrated_evaluation_leaves_training_statistics_untouched():
    from mannrl_gym.agents import make_agent
    from mannrl_gym.envs import MannRLVectorEnv
    from mannrl_gym.evaluation import evaluate_splits
    from mannrl_gym.tasks import build_task
    import numpy as np

    config = small_config()
    task = build_task(config)
    env = MannRLVectorEnv(task, config, 16)
    agent = make_agent(config, env.layout, 16)
    observation, _ = env.reset(seed=0)
    for _ in range(100):
        observation, reward, _, _, info = env.step(agent.act(observation))
        agent.observe(observation, reward, info)
    envs = {s: MannRLVectorEnv(task, config, 64, split=s, learner=env.learner, learn=False,
                               shuffle=False) for s in ("train", "validation")}
    (before_mean, before_var), = env.learner.statistics()
    recalibrated = evaluate_splits(envs, agent, "recalibrated")
    (mean, var), = env.learner.statistics()
    assert np.array_equal(before_mean, mean) and np.array_equal(before_var, var)
    running = evaluate_splits(envs, agent, "running")
    batch = evaluate_splits(envs, agent, "batch")
    assert np.array_equal(before_mean, env.learner.statistics()[0][0])
    assert set(recalibrated) == set(running) == set(batch) and "validation/answer_acc" in running
    assert recalibrated != running != batch  # the statistics used differ, so do the predictions


def test_lstm_peer_trains_in_the_same_trainer_and_resumes_exactly(tmp_path):
    whole = train(small_config(out_dir=str(tmp_path), run_name="whole", agent="lstm", lr=1e-2,
                               clipping=1.0, epochs=3))
    rows = metrics(whole)
    assert rows[-1]["train/f1"] > rows[0]["train/f1"] - 0.05  # it learns (or holds)
    assert {"train/answer_acc", "validation/long_range_acc"} <= set(rows[-1])
    part = train(small_config(out_dir=str(tmp_path), run_name="part", agent="lstm", lr=1e-2,
                              clipping=1.0, epochs=2))
    train(small_config(out_dir=str(tmp_path), run_name="part", agent="lstm", lr=1e-2,
                       clipping=1.0, epochs=3), run_dir=part, resume=True)
    assert comparable(metrics(part)) == comparable(metrics(whole))


def test_memory_learning_rate_step_decay():
    from mannrl_gym.experiments import MannRLExperiment
    from mannrl_gym.tasks import build_task

    config = small_config(memory_lr=1e-3, memory_lr_decay_every=2, memory_lr_decay=0.5)
    experiment = MannRLExperiment(config, build_task(config))
    assert [experiment.agent.learning_rate(e) for e in range(5)] == [1e-3, 1e-3, 5e-4, 5e-4,
                                                                     2.5e-4]
    experiment.run_epoch(2, "epoch 3")
    assert experiment.agent.optimizer.param_groups[0]["lr"] == 5e-4
