"""Replicated experiments: the batched step equals K single steps; K seeds in one process
give each seed's single-run metrics; the CLI, the run directories and the vector env."""

import copy

import numpy as np
import pytest

from mannrl_gym.stacked_learners import StackedLearners
from mannrl_gym.supervised import ActionLearner


@pytest.mark.parametrize("double_softmax", [True, False])
@pytest.mark.parametrize("hidden_layers,embed_size", [(1, None), (2, 6)])
def test_batched_step_equals_single_steps(double_softmax, hidden_layers, embed_size):
    def learner(seed, lr, clipping):
        return ActionLearner(11, 8, 16, 5, lr=lr, clipping=clipping,
                             double_softmax=double_softmax, seed=seed,
                             hidden_layers=hidden_layers, embed_size=embed_size)
    points = [(0, 1e-3, 0.01), (1, 3e-3, 100.0), (2, 1e-2, 0.5)]
    singles = [learner(*point) for point in points]
    stacked = StackedLearners([learner(*point) for point in points])
    for features, memory, targets in learner_batches(6):
        probs, loss = stacked.train_step(features, memory, targets)
        for k, single in enumerate(singles):
            p, l = single.train_step(features[k], memory[k], targets[k])
            np.testing.assert_allclose(probs[k], p, rtol=0, atol=0)
            np.testing.assert_allclose(loss[k], l, rtol=0, atol=0)
    for k, single in enumerate(singles):
        mine, theirs = stacked.learners[k].state_dict(), single.state_dict()
        assert mine["steps"] == theirs["steps"] == 6
        for name, value in theirs["net"].items():
            np.testing.assert_allclose(mine["net"][name].numpy(), value.numpy(), rtol=1e-5,
                                       atol=1e-7, err_msg=name)
        np.testing.assert_allclose(mine["exp_avg_sq"].numpy(), theirs["exp_avg_sq"].numpy(),
                                   rtol=1e-5, atol=1e-12)


def test_rebound_learner_keeps_its_values_and_checkpoints():
    learners = [ActionLearner(5, 4, 8, 3, lr=1e-3, clipping=1.0, double_softmax=True, seed=s)
                for s in range(2)]
    before = [copy.deepcopy(lr.state_dict()) for lr in learners]
    stacked = StackedLearners(learners)
    for learner, state in zip(learners, before):
        for name, value in state["net"].items():
            np.testing.assert_array_equal(learner.net.state_dict()[name].numpy(), value.numpy())
    learners[1].load_state_dict(before[0])  # writes through into row 1 of the stacks
    np.testing.assert_array_equal(stacked.params[1], stacked.params[0])
    np.testing.assert_array_equal(stacked.storage.statistics[1].numpy(),
                                  stacked.storage.statistics[0].numpy())


# -- K seeds in one process give each seed's single run --------------------------------------
import json  # noqa: E402

from mannrl_gym import cli  # noqa: E402
from mannrl_gym.trainer import train  # noqa: E402

from conftest import learner_batches, small_config  # noqa: E402

TIMING = ("minutes", "epoch_seconds", "train_steps_per_s")


def metric_rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def assert_rows_close(mine, theirs):
    assert [r["epoch"] for r in mine] == [r["epoch"] for r in theirs]
    for a, b in zip(mine, theirs):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
            else:
                assert a[key] == b[key], key


@pytest.mark.parametrize("agent,carry_memory", [("mannrl", True), ("frozen_weights", True),
                                                ("frozen_memory", True), ("mannrl", False)])
def test_seeds_in_one_process_match_single_seed_runs(tmp_path, agent, carry_memory):
    code = cli.main(["train", "configs/logic.yaml", "seeds=0-2", "num_sequences=300",
                     "epochs=2", "eval_batch_size=64", "wandb_mode=disabled",
                     "progress=false", f"agent={agent}", f"out_dir={tmp_path}",
                     "run_name=many", f"carry_memory={str(carry_memory).lower()}"])
    assert code == 0
    parent = tmp_path / "many"
    assert sorted(p.name for p in parent.iterdir() if p.is_dir()) == ["seed0", "seed1", "seed2"]
    for seed in range(3):
        single = train(small_config(seed=seed, agent=agent, out_dir=str(tmp_path / "single"),
                                    run_name=f"s{seed}", carry_memory=carry_memory))
        assert_rows_close(metric_rows(parent / f"seed{seed}"), metric_rows(single))
        assert (parent / f"seed{seed}" / "summary.json").exists()


from mannrl_gym.agent_registry import REGISTRY, register_agent  # noqa: E402
from mannrl_gym.replicas.agents import EachReplica, replicable, replicate  # noqa: E402


class EchoAgent:
    """A user's memory agent: writes a memory computed from the state, counts what it saw."""

    def __init__(self, layout, config, num_slots, seed):
        self.layout, self.seen, self.shift = layout, 0, np.float32(seed % 3) / 4

    def act(self, observation):
        state = np.asarray(observation, np.float32)
        memory = state[:, self.layout.memory] * 0.5 + state[:, self.layout.output][:, :1] * 0.25
        return np.clip(memory + self.shift, 0.0, 1.0)

    def explore(self, observation):
        return self.act(observation)

    def observe(self, observation, reward, info):
        assert observation.shape[0] == info["valid"].shape[0] == reward.shape[0]
        self.seen += int(info["valid"].sum())
        return None

    def start_epoch(self, epoch):
        pass

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = int(state["seen"])

    @classmethod
    def replicate(cls, agents, slots):
        return EachReplica(agents, slots)


class UnreplicableEchoAgent(EchoAgent):
    replicate = None


def test_a_users_agent_replicates_as_its_single_runs(tmp_path):
    register_agent("echo_test", EchoAgent, "test: a user's agent")
    try:
        assert replicable("echo_test") and replicable("mannrl") and not replicable("es")
        with pytest.raises(ValueError, match="cannot be replicated"):
            replicate([UnreplicableEchoAgent(None, None, 4, 0)], 4)
        code = cli.main(["train", "configs/logic.yaml", "seeds=0-1", "epochs=1",
                         "agent=echo_test", f"out_dir={tmp_path}", "run_name=many"] + SMALL)
        assert code == 0
        for seed in range(2):
            single = train(small_config(seed=seed, agent="echo_test", epochs=1,
                                        out_dir=str(tmp_path / "single"), run_name=f"s{seed}"))
            assert_rows_close(metric_rows(tmp_path / "many" / f"seed{seed}"),
                              metric_rows(single))
    finally:
        REGISTRY.pop("echo_test", None)


import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from conftest import ROOT  # noqa: E402

SMALL = ["num_sequences=300", "eval_batch_size=64", "wandb_mode=disabled", "progress=false"]


def test_killed_replicated_run_resumes_and_a_replica_resumes_alone(tmp_path, capsys):
    args = SMALL + ["epochs=3", "seeds=0,3", f"out_dir={tmp_path}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "mannrl_gym.cli", "train", str(ROOT / "configs/logic.yaml")]
    subprocess.run(base + args + ["run_name=whole"], check=True, env=env, capture_output=True)
    victim = subprocess.Popen(base + args + ["run_name=killed"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "killed" / "seed0" / "checkpoint.pt"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)  # one replica may have saved epoch 1, the other not
    victim.wait()
    assert cli.main(["train", "--resume", str(tmp_path / "killed")]) == 0
    for seed in (0, 3):
        assert_rows_close(metric_rows(tmp_path / "killed" / f"seed{seed}"),
                          metric_rows(tmp_path / "whole" / f"seed{seed}"))
    alone = tmp_path / "whole" / "seed3"  # an ordinary run directory: resumes on its own
    assert cli.main(["train", "--resume", str(alone), "epochs=4"]) == 0
    assert [row["epoch"] for row in metric_rows(alone)] == [1, 2, 3, 4]
    capsys.readouterr()
    for run_dir, says in ((alone, "resumes that one run"),
                          (tmp_path / "whole", "resumes the replicas it holds")):
        assert cli.main(["train", "--resume", str(run_dir), "seeds=0-1"]) == 2
        assert says in capsys.readouterr().err


def test_a_resume_that_would_collapse_the_points_into_one_is_refused(tmp_path, capsys):
    """Sweep points lr=1e-4 and lr=3e-4 resumed with lr=1e-3 for all would become one point
    under names that say otherwise: refused, naming the key; more epochs go on."""
    assert cli.main(["train", "configs/logic.yaml", "replicas=[{lr: 1e-4}, {lr: 3e-4}]",
                     "epochs=1", f"out_dir={tmp_path}", "run_name=pts"] + SMALL) == 0
    parent = tmp_path / "pts"
    before = {d.name: (d / "config.yaml").read_text() for d in parent.iterdir() if d.is_dir()}
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(parent), "epochs=2", "lr=1e-3"]) == 2
    said = capsys.readouterr().err
    assert "key 'lr' is what its replicas vary" in said and "resume without it" in said
    assert {d.name: (d / "config.yaml").read_text() for d in parent.iterdir()
            if d.is_dir()} == before
    assert cli.main(["train", "--resume", str(parent), "epochs=2"]) == 0


def test_one_replica_resumed_further_alone_asks_the_parent_for_epochs(tmp_path, capsys):
    """seed0 resumed alone to 2 epochs, then the parent without epochs=: the loop ran every
    replica to seed0's 2 epochs while seed1's config still said 1; now it asks for epochs=."""
    assert cli.main(["train", "configs/logic.yaml", "seeds=0-1", "epochs=1", f"out_dir={tmp_path}",
                     "run_name=run"] + SMALL) == 0
    parent = tmp_path / "run"
    assert cli.main(["train", "--resume", str(parent / "seed0"), "epochs=2"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(parent)]) == 2
    assert "key 'epochs' differs between its replicas (seed0: 2, seed1: 1)" in capsys.readouterr().err
    assert len((parent / "seed1" / "metrics.jsonl").read_text().splitlines()) == 1
    assert cli.main(["train", "--resume", str(parent), "epochs=3"]) == 0  # seed0 waits a round
    assert ", resumed after epoch 1 (seed0 after 2: waiting while the others catch up)" in \
        capsys.readouterr().out
    assert [len((parent / f"seed{s}" / "metrics.jsonl").read_text().splitlines())
            for s in (0, 1)] == [3, 3]


@pytest.mark.parametrize("override,message", [
    ("seeds=5-2", "empty range"), ("seeds=0,1,1", "repeats seed"), ("seeds=a", "neither"),
    ("replicas=[{hidden_size: 32}]", "cannot vary"), ("replicas=[{lr: 1e-4}, {lr: 1e-4}]",
                                                      "repeats the point"),
    ("replicas=lr", "list of key: value"), ("seeds=", "must be a seed"),
    ("replicas=", "list of key: value"),
    # the same point once its values are read: 1e-4 (YAML reads a string) and 0.0001
    ("replicas=[{lr: 1e-4}, {lr: 0.0001}]", "the same config"),
    ("replicas=[{gamma: 0.99}, {memory_clamp: 10}]", "the same config"),  # both the config's
    ("replicas=[{seed: 3}]", "seeds=..."), ("seeds=", "got nothing"),
    ("seeds=0-256", "keys 'seeds' and 'replicas' ask for 257 replicas"),
])
def test_bad_replica_requests_are_named(tmp_path, capsys, override, message):
    code = cli.main(["train", "configs/logic.yaml", override, f"out_dir={tmp_path}"] + SMALL)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_building_the_replicas_data_shows_progress_on_a_terminal(monkeypatch):
    import io

    from mannrl_gym.replicas import trainer as replicas_trainer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    configs = [small_config(seed=seed, progress=True) for seed in range(3)]
    tasks = replicas_trainer._tasks(configs)
    assert len(tasks) == 3 and "data sets:" in terminal.getvalue() and "/3" in terminal.getvalue()


def test_seed_beside_seeds_is_refused_not_ignored(tmp_path, capsys):
    code = cli.main(["train", "configs/logic.yaml", "seeds=0-1", "seed=5", f"out_dir={tmp_path}"]
                    + SMALL)
    assert code == 2
    assert "key 'seed' is 5, but seeds= names the seeds" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_agents_that_cannot_be_replicated_are_refused(tmp_path, capsys):
    code = cli.main(["train", "configs/logic.yaml", "agent=lstm", "seeds=0-1",
                     f"out_dir={tmp_path}"] + SMALL)
    assert code == 2
    err = capsys.readouterr().err
    assert "'lstm'" in err and "mannrl, no_memory, frozen_memory, frozen_weights" in err


def test_sweep_points_get_their_own_values_and_directories(tmp_path):
    code = cli.main(["train", "configs/logic.yaml", "replicas=[{lr: 1e-3}, {lr: 3e-4, gamma: 0.9}]",
                     "seeds=1", "epochs=1", "agent=no_memory", f"out_dir={tmp_path}",
                     "run_name=sweep"] + SMALL + ["wandb_mode=offline"])
    assert code == 0
    wandb_runs = [next((tmp_path / "sweep" / name / "wandb").glob("offline-run-*")).name
                  for name in ("lr=1e-3-seed1", "lr=3e-4+gamma=0.9-seed1")]
    assert wandb_runs[0] != wandb_runs[1]  # one wandb run per replica
    import yaml
    first = yaml.safe_load((tmp_path / "sweep" / "lr=1e-3-seed1" / "config.yaml").read_text())
    second = yaml.safe_load(
        (tmp_path / "sweep" / "lr=3e-4+gamma=0.9-seed1" / "config.yaml").read_text())
    assert (first["lr"], first["seed"]) == (1e-3, 1)
    assert (second["lr"], second["gamma"], second["seed"]) == (3e-4, 0.9, 1)
    single = train(small_config(seed=1, lr=3e-4, gamma=0.9, agent="no_memory", epochs=1,
                                out_dir=str(tmp_path), run_name="single"))
    assert_rows_close(metric_rows(tmp_path / "sweep" / "lr=3e-4+gamma=0.9-seed1"),
                      metric_rows(single))


# -- the vector env API ------------------------------------------------------------------------
import gymnasium  # noqa: E402

import mannrl_gym  # noqa: E402,F401  (registers the ids)
from mannrl_gym.config import ConfigError  # noqa: E402


def test_make_vec_replicas_step_each_replica_as_its_own_env():
    replicas, slots = 3, 4
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=slots, replicas=replicas,
                             num_sequences=40, seed=5)
    singles = [gymnasium.make_vec("MannRL-Logic-v0", num_envs=slots, num_sequences=40,
                                  seed=5 + k) for k in range(replicas)]
    assert env.num_envs == replicas * slots
    observation, info = env.reset(seed=5)
    alone = [single.reset(seed=5 + k)[0] for k, single in enumerate(singles)]
    assert env.observation_space.contains(observation)
    rng = np.random.default_rng(0)
    lengths = list(env.lengths)
    assert env.unwrapped is env and len(set(lengths)) > 1  # passes of different lengths: the idle tail is exercised
    for t in range(1, max(lengths) + 2):  # the pass, then the autoreset step
        action = rng.random((replicas * slots, 48), dtype=np.float32)
        assert env.action_space.contains(action)
        observation, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(observation)
        np.testing.assert_array_equal(info["replica"], np.repeat(np.arange(replicas), slots))
        if t == max(lengths) - 1:
            assert truncated.all()
        for k, single in enumerate(singles):
            rows = slice(k * slots, (k + 1) * slots)
            if t < lengths[k]:
                single_observation, single_reward, _, _, single_info = single.step(action[rows])
                np.testing.assert_allclose(observation[rows], single_observation, rtol=1e-6,
                                           atol=1e-7)
                np.testing.assert_allclose(reward[rows], single_reward, rtol=0, atol=0)
                np.testing.assert_array_equal(info["valid"][rows], single_info["valid"])
                assert info["replica_active"][rows].all()
            elif t < max(lengths):  # this replica's pass is over: idle rows
                assert not info["valid"][rows].any() and not info["replica_active"][rows].any()
                assert (reward[rows] == 0).all()
    assert not truncated.any() and info["replica_active"].all()  # the next pass began


def test_make_vec_replicas_checks_its_arguments():
    with pytest.raises(ConfigError, match="replicas must be a whole number"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=0, num_sequences=40)
    with pytest.raises(ConfigError, match="train split"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=2, num_sequences=40,
                           split="validation")
    with pytest.raises(ConfigError, match="replicas= is a key of make_vec's default mode"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=2, replicas=2, num_sequences=40,
                           vectorization_mode="sync")
    with pytest.raises(ConfigError, match="at most 256 replicas"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=257, num_sequences=40)
    with pytest.raises(ConfigError, match="seed must be at most 4294967294"):
        gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=2, num_sequences=40,
                           seed=2**32 - 1)


def test_replicated_env_refuses_bad_masks_indices_and_seeds_and_stays_usable():
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=3, num_sequences=40)
    env.reset(seed=0)
    for mask, message in (([False] * 3, "leaves every replica out"),
                          ([0, 5, 2], "must hold 3 bools"), ([True], "must hold 3 bools")):
        with pytest.raises(ValueError, match=message):
            env.reset(options={"replicas": mask})
    with pytest.raises(ValueError, match="seed must be at most 4294967293"):
        env.reset(seed=2**32 - 1)
    assert env.replica_slice(-1) == env.replica_slice(2) == slice(8, 12)
    for k in (3, -4, 1.0):
        with pytest.raises(IndexError, match="out of range for 3 replicas"):
            env.replica_slice(k)
    with pytest.warns(UserWarning, match="a replicated env draws no frames"):
        assert env.render() is None
    env.reset(options={"replicas": np.array([True, False, True])})
    _, _, _, _, info = env.step(env.action_space.sample())
    assert not info["replica_active"][env.replica_slice(1)].any()


@pytest.mark.parametrize("make", [
    lambda: gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, replicas=2, num_sequences=40,
                               device="cuda"),
    lambda: gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, num_sequences=40, device="cuda"),
    lambda: gymnasium.make("MannRL-Logic-v0", num_sequences=40, device="cuda:0"),
])
def test_an_env_refuses_a_device_instead_of_ignoring_it(make):
    """The envs run on the CPU whatever `device` says: asking for a GPU there is an error."""
    with pytest.raises(ConfigError, match="key 'device'.*step on the CPU"):
        make()


def test_progress_line_counts_replicas_in_words():
    from mannrl_gym.replicas.trainer import progress_line

    row = {"train/f1": 0.5, "validation/f1": 0.4, "validation/answer_acc": 0.3,
           "train_steps_per_s": 100.0}
    assert " 1 replica " in progress_line(0, [row], 1.0)
    assert " 2 replicas " in progress_line(0, [row, row], 1.0)


class _HalfInput:
    """A user's subclass of NoMemoryAgent that writes something (its ``act``), so the parent's
    batched ``replicate`` (zeros for every row) would not compute what it does."""

    def act(self, observation):
        import numpy as np
        memory = np.zeros((observation.shape[0], self.memory_size), np.float32)
        memory[:, 0] = 0.5
        return memory


def test_an_inherited_replicate_that_would_skip_a_subclass_act_is_not_used(tmp_path):
    """A subclass that overrides act (or explore, observe, ...) of a class with a batched
    replicate is not replicable: seeds=0-1 is one line saying why; compare runs its seeds one
    by one. A subclass that only passes flags to __init__ (FrozenWeightsAgent) stays so."""
    from mannrl_gym import agent_registry, compare
    from mannrl_gym.agents.baselines import NoMemoryAgent
    from mannrl_gym.config import ConfigError, load
    from mannrl_gym.replicas.agents import replicable, replicable_names, replicate
    from mannrl_gym.replicas.spec import replicas

    half = type("HalfInputAgent", (_HalfInput, NoMemoryAgent), {"__module__": __name__})
    agent_registry.register_agent("half_input_test", half, "test agent")
    try:
        assert not replicable("half_input_test")
        assert {"no_memory", "frozen_weights", "frozen_memory", "mannrl"} <= set(
            replicable_names())
        config = load(ROOT / "configs/logic.yaml", {"agent": "half_input_test"})
        with pytest.raises(ConfigError, match="cannot run as replicas \\(HalfInputAgent "
                                              "overrides act, which NoMemoryAgent.replicate"):
            replicas(config, [0, 1], None)
        with pytest.raises(ValueError, match="HalfInputAgent cannot be replicated"):
            replicate([object.__new__(half), object.__new__(half)], 4)
        units = compare.plan("half_input_test", [0, 1], config, tmp_path, jobs=1)
        assert [(unit.seeds, unit.together) for unit in units] == [((0,), False), ((1,), False)]
    finally:
        agent_registry.REGISTRY.pop("half_input_test")
