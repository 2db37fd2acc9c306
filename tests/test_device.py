"""The replicated path on a torch device (``mannrl_gym.replicas.device``).

Every test runs the torch code on torch's CPU device (the same code a GPU runs) and compares
it with the NumPy path, which equals single runs exactly (A's step alone, function by
function: ``tests/test_device_arithmetic.py``). The arithmetic is the same, the
rounding is not; one family of parameters differs by more than rounding: the bias of a
linear layer followed by batch norm, whose gradient is zero up to rounding (batch norm
removes it) and which Adam and RMSprop, normalising the gradient, move by up to lr a step
either way on both paths. It changes no output (batch norm removes it in training, and its
running mean follows it in evaluation), so it is left out of the comparisons.
The tests marked ``cuda`` run the same checks and the CLI on a GPU when there is one.
"""

import json

import numpy as np
import pytest
import torch

from mannrl_gym import cli
from mannrl_gym.config import Config
from mannrl_gym.replicas.device import check_device
from mannrl_gym.replicas.device_action import DeviceLearners
from mannrl_gym.replicas.experiment import ReplicatedExperiment
from mannrl_gym.stacked_learners import StackedLearners
from mannrl_gym.supervised import ActionLearner
from mannrl_gym.tasks import build_task

from conftest import for_task, pre_norm_biases, small_config

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
SMALL = ["num_sequences=300", "eval_batch_size=64", "wandb_mode=disabled", "progress=false"]


def passes(agent: str, device: str, epochs: int = 2, **keys) -> tuple[list, ReplicatedExperiment]:
    """(each epoch's statistics, the experiment) of seeds 0-2 trained together on the NumPy
    path (device None) or on ``device``."""
    configs = [Config(**{**small_config(seed=seed, agent=agent, **keys).to_dict()}).validate()
               for seed in range(3)]
    experiment = ReplicatedExperiment(configs, [build_task(c) for c in configs], device)
    stats = [experiment.run_epoch(epoch, "test") for epoch in range(epochs)]
    if device is not None:  # most of each pass ran there
        assert experiment.device_pass.steps_run > 0.8 * epochs * experiment.env.steps_per_pass
    if device == "cuda":  # and, after each stretch's first cycle, as replayed CUDA graphs
        assert experiment.device_pass.graphs
    return stats, experiment


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("agent,keys", [
    ("mannrl", {}), ("frozen_weights", {}), ("frozen_memory", {}), ("no_memory", {}),
    ("mannrl", {"carry_memory": False}),
    ("mannrl", {"detach_target": True, "double_softmax": False}),
    ("mannrl", {"memory_sees_output": False}),  # replays compared below: the output block zero
    ("mannrl", {"embed_size": 8, "hidden_layers": 2}),  # the sentence tasks' shape
])
def test_device_pass_matches_the_numpy_pass(device, agent, keys):
    expected, numpy_run = passes(agent, None, **keys)
    got, device_run = passes(agent, device, **keys)
    for epoch_expected, epoch_got in zip(expected, got):
        for mine, theirs in zip(epoch_got, epoch_expected):
            assert mine["train_loss_running"] == pytest.approx(theirs["train_loss_running"],
                                                               rel=1e-5)
            if theirs["memory_loss"] is None:
                assert mine["memory_loss"] is None
            else:
                assert mine["memory_loss"] == pytest.approx(theirs["memory_loss"], rel=1e-4)
    for mine, theirs in zip(device_run.experiments, numpy_run.experiments):
        a, b = mine.agent.state_dict(), theirs.agent.state_dict()
        if "net" not in b:  # no_memory
            continue
        assert a["updates"] == b["updates"]
        assert a["step_in_cycle"] == b["step_in_cycle"]
        assert a["replay"]["size"] == b["replay"]["size"]
        assert torch.equal(a["generator"], b["generator"])  # the same draws, in order
        # with embeddings (three batch-norm layers before A's output, three in f) rounding
        # grows faster: one of the three replicas' outputs differs by up to 3e-3 after 2 epochs
        # (7e-5 after one) while its losses agree within 2e-6 relative
        np.testing.assert_allclose(a["replay"]["states"], b["replay"]["states"],
                                   atol=5e-3 if keys.get("embed_size") else 5e-4)
        assert torch.equal(a["replay"]["valid"], b["replay"]["valid"])
        # RMSprop moves each weight by about lr a step whatever its gradient's size, so a
        # weight whose gradient is tiny moves by rounding: compare the whole movement
        start = type(theirs.agent)(theirs.env.layout, theirs.config, theirs.env.num_envs,
                                   theirs.config.seed).net.state_dict()
        skip = pre_norm_biases(theirs.agent.net)
        # (with embeddings the rounding grows into 1.1% of embed_output.0.weight's movement
        # after 2 epochs, though both paths' gradients are as close to float64's as before)
        share = 0.02 if keys.get("embed_size") else 0.01
        for name, value in b["net"].items():
            if name in skip or name.endswith("running_mean") or value.dtype == torch.int64:
                continue
            moved, moved_there = value - start[name], a["net"][name] - start[name]
            assert torch.linalg.vector_norm(moved_there - moved) <= \
                share * torch.linalg.vector_norm(moved) + 1e-7, name
        assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
        for index, state in b["optimizer"]["state"].items():
            assert a["optimizer"]["state"][index]["step"] == state["step"]
        assert mine.env.learner.steps == theirs.env.learner.steps


def test_a_pass_goes_on_from_a_device_stretch_to_the_host_and_back():
    """Epoch 2 starts on the host from the state the device left, and its stretch uploads
    what the host steps changed: the two-epoch test above covers it; here the state after a
    device epoch resumes on the NumPy path and keeps matching."""
    _, device_run = passes("mannrl", "cpu", epochs=1)
    _, numpy_run = passes("mannrl", None, epochs=1)
    device_run.device_pass = None  # the same objects, now stepped by the NumPy path
    mine, theirs = device_run.run_epoch(1, "test"), numpy_run.run_epoch(1, "test")
    for a, b in zip(mine, theirs):
        assert a["train_loss_running"] == pytest.approx(b["train_loss_running"], rel=1e-5)
        assert a["memory_loss"] == pytest.approx(b["memory_loss"], rel=1e-4)


@pytest.mark.parametrize("args,message", [
    (["seeds=0-1", "device=gpu"], "must be cpu, torch-cpu, cuda, cuda:N or mps"),
    (["device=cpu", "seeds=0-1", "device=cuda:7"], None),  # cuda:7: not here (or no CUDA)
    (["device=cuda"], "applies to replicated runs; add seeds=0"),
    # a run that no device could train is not told to add seeds=
    (["device=cuda", "agent=es"], "agent 'es' runs one seed per process, on the CPU"),
    (["device=cuda", "embed_size=8"], "applies to replicated runs; add seeds=0"),
    # what no device runs is named first, also where torch finds no CUDA device
    (["seeds=0-1", "device=cuda", "memory_optimizer=adam"], "RMSprop only"),
    (["seeds=0-1", "device=cuda", "replicas=[{memory_samples: 4}, {memory_samples: 8}]"],
     "must share 'memory_samples'"),
])
def test_bad_device_requests_are_named_before_anything_is_written(tmp_path, capsys, args, message):
    code = cli.main(["train", "configs/logic.yaml", *args, f"out_dir={tmp_path}"] + SMALL)
    err = capsys.readouterr().err
    assert code == 2
    assert "'device'" in err
    if message is not None:
        assert message in err
    elif not torch.cuda.is_available():
        assert "no CUDA device" in err or "built without CUDA" in err
    assert "(replica " not in err  # the request's error, not one replica's
    assert not any(tmp_path.iterdir())


def test_check_device_says_what_is_missing():
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        check_device("cuda:x")
    if not torch.backends.cuda.is_built():  # a CPU-only torch: say so, not "no device"
        with pytest.raises(ValueError, match="built without CUDA; install a CUDA build"):
            check_device("cuda")
    elif not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            check_device("cuda")


SENTENCE_SAMPLE = ["data=sample", "num_sentences=60", "memory_size=16", "hidden_size=32",
                   "embed_size=8", "curriculum_chunk=60"]


@pytest.mark.parametrize("device,args,rel", [
    # torch's CPU device: test_device_pass_matches_the_numpy_pass's tolerance
    ("torch-cpu", ["configs/logic.yaml", "seeds=0-1", "epochs=1"], 1e-5),
    ("torch-cpu", ["configs/sentence.yaml", "seeds=0-1", "epochs=1"] + SENTENCE_SAMPLE, 1e-5),
    # a GPU's kernels round differently; training amplifies it over two epochs
    pytest.param("cuda", ["configs/logic.yaml", "seeds=0-2", "epochs=2"], 1e-3, marks=CUDA),
])
def test_a_replicated_run_on_a_device_writes_runs_close_to_the_cpu_runs(tmp_path, device, args,
                                                                        rel):
    """`mannrl train ... seeds=0-1 device=torch-cpu` (or `device=cuda`): each replica's run
    directory, its training losses near the NumPy path's (`device=cpu`)."""
    for name in ("cpu", device):
        small = SMALL if "logic" in args[0] else for_task("sentence", SMALL)
        assert cli.main(["train"] + args + [f"device={name}", f"out_dir={tmp_path}",
                                            f"run_name={name}"] + small) == 0
    seeds = len(list((tmp_path / "cpu").glob("seed*")))
    epochs = int(next(a for a in args if a.startswith("epochs=")).split("=")[1])
    assert seeds >= 2 and len(list((tmp_path / device).glob("seed*"))) == seeds
    differ = []
    for seed in range(seeds):
        rows = {name: [json.loads(line) for line in
                       (tmp_path / name / f"seed{seed}" / "metrics.jsonl").read_text()
                       .splitlines() if "train_loss_running" in line]
                for name in ("cpu", device)}
        assert len(rows[device]) == len(rows["cpu"]) == epochs
        for a, b in zip(rows[device], rows["cpu"]):
            assert a["train_loss_running"] == pytest.approx(b["train_loss_running"], rel=rel)
        differ.append([a["train_loss_running"] for a in rows[device]]
                      != [b["train_loss_running"] for b in rows["cpu"]])
    assert all(differ)  # the torch code ran (its rounding is not NumPy's)


def test_a_replicated_run_resumes_with_another_device(tmp_path, capsys):
    """`device` is no part of what a run is: `--resume PARENT device=...` may change it (a run
    started on a GPU goes on on a CPU); a device not found here is named first."""
    assert cli.main(["train", "configs/logic.yaml", "seeds=0-1", "epochs=1", f"out_dir={tmp_path}",
                     "run_name=run"] + SMALL) == 0
    parent = tmp_path / "run"
    if not torch.cuda.is_available():
        before = [(parent / f"seed{s}" / "metrics.jsonl").read_text() for s in (0, 1)]
        capsys.readouterr()
        assert cli.main(["train", "--resume", str(parent), "epochs=2", "device=cuda"]) == 2
        assert "'device'" in capsys.readouterr().err
        assert [(parent / f"seed{s}" / "metrics.jsonl").read_text() for s in (0, 1)] == before
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert cli.main(["train", "--resume", str(parent), "epochs=2", f"device={device}"]) == 0
    for seed in (0, 1):
        epochs = [json.loads(line).get("epoch") for line in
                  (parent / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()]
        assert epochs[-1] == 2


def test_one_replica_resumed_alone_refuses_a_new_device(tmp_path, capsys):
    """`--resume PARENT/seed1 device=cuda` would train on the CPU (a replica resumed alone is a
    single run) yet record device=cuda in its config: refused, nothing written."""
    assert cli.main(["train", "configs/logic.yaml", "seeds=0-1", "epochs=1", f"out_dir={tmp_path}",
                     "run_name=run"] + SMALL) == 0
    replica = tmp_path / "run" / "seed1"
    before = {name: (replica / name).read_bytes() for name in ("config.yaml", "metrics.jsonl")}
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(replica), "epochs=2", "device=cuda"]) == 2
    err = capsys.readouterr().err
    assert "key 'device'" in err and "resumed alone" in err and str(tmp_path / "run") in err
    assert {name: (replica / name).read_bytes() for name in before} == before
    assert not (replica / "resumes.jsonl").exists()


def test_replicas_that_last_ran_on_different_devices_resume_on_the_one_named(tmp_path, capsys):
    """Replicas whose configs name different devices (one resumed alone with device=cpu from a
    GPU run): the parent's resume trained them all on the first one's device and left the
    others' configs naming another; it asks for one device instead and writes it into every
    replica's config."""
    import yaml

    from mannrl_gym import checkpoint

    assert cli.main(["train", "configs/logic.yaml", "seeds=0-1", "epochs=1", f"out_dir={tmp_path}",
                     "run_name=run"] + SMALL) == 0
    parent = tmp_path / "run"
    state = checkpoint.load(parent / "seed1" / "checkpoint.pt")  # seed1 as if run on a GPU
    state["config"]["device"] = "cuda"
    checkpoint.save(parent / "seed1" / "checkpoint.pt", state)
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(parent), "epochs=2"]) == 2
    assert "key 'device' differs between its replicas (seed0: cpu, seed1: cuda)" in \
        capsys.readouterr().err
    assert cli.main(["train", "--resume", str(parent), "epochs=2", "device=cpu"]) == 0
    for seed in (0, 1):
        assert yaml.safe_load((parent / f"seed{seed}" / "config.yaml").read_text())["device"] == "cpu"


def test_a_non_finite_replica_is_named_after_the_stretch():
    from mannrl_gym.numerics import NumericalError

    learners = StackedLearners([ActionLearner(5, 4, 8, 3, lr=1e-3, clipping=1.0,
                                              double_softmax=True, seed=seed) for seed in range(3)])
    on_device = DeviceLearners(learners.learners, learners.storage, torch.device("cpu"))
    on_device.upload()
    on_device.flat[1, 0] = float("nan")  # replica 1's first weight
    features, memory = torch.rand(3, 16, 5), torch.rand(3, 16, 4)
    on_device.train_step(features, memory, torch.zeros(3, 16, dtype=torch.int64))
    with pytest.raises(NumericalError, match="replica 1 during the device run"):
        on_device.check_finite()


def test_the_device_benchmark_names_a_missing_device_before_measuring():
    """`benchmarks/replicas.py --device cuda:99` stops at once with a usage error, not after
    the CPU rows' minutes with a traceback."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "replicas.py"), "--device",
                           "cuda:99", "--processes", ""], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2
    assert "--device: 'cuda:99' asked for" in done.stderr and "Traceback" not in done.stderr
    assert "replica-steps/s" not in done.stdout
