"""The interfaces newcomers build on: the agent registry, the two protocols, one rollout, one
way to read a run back, and the public pieces that replaced private reads."""

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from mannrl_gym import agent_registry, checkpoint
from mannrl_gym.agents import make_agent
from mannrl_gym.agents.memory_body import PaperStatistics
from mannrl_gym.config import ConfigError, from_mapping
from mannrl_gym.envs import MannRLVectorEnv
from mannrl_gym.experiments import MannRLExperiment, make_experiment
from mannrl_gym.networks import ActionNet
from mannrl_gym.protocols import Experiment, MemoryAgent
from mannrl_gym.rollout import rollout
from mannrl_gym.rundir import load_run
from mannrl_gym.supervised import ActionLearner
from mannrl_gym.tasks import build_task
from mannrl_gym.trainer import train

from conftest import ROOT, small_config


@pytest.fixture(scope="module")
def task():
    return build_task(small_config())


@pytest.mark.parametrize("name", agent_registry.memory_agent_names())
def test_every_registered_memory_agent_plays_the_protocol(name, task):
    config = small_config(agent=name)
    env = MannRLVectorEnv(task, config, config.batch_size)
    agent = make_agent(config, env.layout, config.batch_size)
    assert isinstance(agent, MemoryAgent)
    observation, _ = env.reset(seed=0)
    for write in (agent.act, agent.explore):
        memory = write(observation)
        assert memory.shape == (config.batch_size, config.memory_size)
        assert np.all((memory >= 0) & (memory <= 1))


@pytest.mark.parametrize("name", agent_registry.agent_names())
def test_every_registered_name_builds_an_experiment(name, task):
    experiment = make_experiment(small_config(agent=name), task)
    assert isinstance(experiment, Experiment)
    expected = MannRLExperiment if agent_registry.has_memory_agent(name) else type(experiment)
    assert isinstance(experiment, expected)


def test_config_validation_reads_the_registry():
    with pytest.raises(ConfigError, match=r"key 'agent' must be one of \[.*'perfect_memory'.*\]"):
        small_config(agent="mine")
    agent_registry.register_agent("mine", "mannrl_gym.agents.baselines:NoMemoryAgent",
                                  "a user's agent")
    try:
        config = small_config(agent="mine")
        layout = MannRLVectorEnv(build_task(config), config, 16).layout
        assert make_agent(config, layout, 16).act(np.zeros((2, layout.size))).sum() == 0
        with pytest.raises(ValueError, match="already registered"):
            agent_registry.register_agent("mine", "x:y")
    finally:
        agent_registry.REGISTRY.pop("mine")
    with pytest.raises(ConfigError, match="is an experiment of its own"):
        make_agent(small_config(agent="lstm"), layout, 16)


def test_registering_the_same_agent_again_replaces_it_as_a_rerun_notebook_cell_does():
    def define():  # the README's cell run twice defines a new class of the same name
        class HoldInput:
            pass
        return HoldInput

    first, again = define(), define()
    agent_registry.register_agent("hold_again", first, "remembers one input")
    try:
        assert agent_registry.register_agent("hold_again", again).entry_point is again
        with pytest.raises(ValueError, match="'hold_again' is already registered.*another name"):
            agent_registry.register_agent("hold_again", "mannrl_gym.agents.baselines:NoMemoryAgent")
        with pytest.raises(ValueError, match="'mannrl' is already registered"):
            agent_registry.register_agent("mannrl", again)
    finally:
        agent_registry.REGISTRY.pop("hold_again")


def test_the_memory_learning_rate_is_the_agents_own_schedule(task):
    config = small_config(memory_lr=1e-3, memory_lr_decay_every=1, memory_lr_decay=0.1)
    experiment = MannRLExperiment(config, task)
    experiment.run_epoch(1, "epoch 2")
    assert experiment.agent.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    es = MannRLExperiment(small_config(agent="es", memory_lr_decay_every=1), task)
    es.run_epoch(1, "epoch 2")  # a schedule of its own (none), no optimizer attribute read
    assert es.agent.adam.param_groups[0]["lr"] == es.config.es_lr


def test_rollout_yields_the_reset_then_every_step_of_one_pass(task):
    config = small_config()
    env = MannRLVectorEnv(task, config, 16)
    agent = make_agent(config, env.layout, 16)
    steps = list(rollout(env, agent, seed=0))
    assert len(steps) == env.steps_per_pass
    assert steps[0].reward is None and all(s.reward is not None for s in steps[1:])
    assert all(s.update is None for s in steps)  # not training: nothing observed
    assert agent.cycle.step_in_cycle == 0
    learned = [s.update for s in rollout(env, agent, training=True, max_steps=100)]
    assert len(learned) == 101 and sum(u is not None for u in learned) == 100 // (
        config.settle + config.history)


def test_the_env_order_is_restored_through_its_public_state(task):
    config = small_config()
    env = MannRLVectorEnv(task, config, 16)
    env.reset(seed=3)
    saved = env.generator_state()
    first = env.reset()[1]["sequence"].copy()
    env.set_generator_state(saved)
    assert np.array_equal(env.reset()[1]["sequence"], first)


def test_paper_statistics_follow_the_frozen_weights_controls_schedule_exactly():
    """The reward-trained agents keep f's batch-norm statistics on the paper's agent's cycle:
    fed the same states, they match the frozen-weights control's to the bit."""
    config = small_config(settle=3, history=6, memory_samples=4)
    layout = MannRLVectorEnv(build_task(config), config, 8).layout
    control = make_agent(small_config(agent="frozen_weights", settle=3, history=6,
                                      memory_samples=4), layout, 8)
    statistics = PaperStatistics(copy.deepcopy(control.net), config, 8, layout.size, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(40):
        state = rng.random((8, layout.size)).astype(np.float32)
        valid = rng.random(8) > 0.2
        info = {"valid": valid, "sequence_start": np.zeros(8, bool)}
        control.observe(state, np.zeros(8, np.float32), info)
        statistics.observe(state, valid)
    ours, theirs = statistics.net.body[1], control.net.body[1]
    assert int(theirs.num_batches_tracked) > 0
    assert torch.equal(ours.running_mean, theirs.running_mean)
    assert torch.equal(ours.running_var, theirs.running_var)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_action_learner_reads_each_hidden_block_of_a(layers):
    net = ActionNet(5, 4, 8, 3, hidden_layers=layers)
    assert len(net.hidden_blocks) == layers and net.output_layer is net.body[-1]
    learner = ActionLearner(5, 4, 8, 3, lr=1e-3, clipping=1.0, double_softmax=True, seed=0,
                            hidden_layers=layers)
    assert len(learner.hidden) == layers
    assert learner.hidden[-1].running_mean.shape == (8,)


def test_vectors_import_nothing_of_the_tasks():
    code = "import sys, mannrl_gym.vectors; print('mannrl_gym.tasks' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "False"


def test_an_old_run_with_the_removed_optimizer_key_loads_and_resumes(tmp_path):
    run_dir = train(small_config(out_dir=str(tmp_path), run_name="old", epochs=1))
    state = checkpoint.load(run_dir / "checkpoint.pt")
    state["config"]["optimizer"] = "adam"  # what every run wrote before the key went
    checkpoint.save(run_dir / "checkpoint.pt", state)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**saved, "optimizer": "adam"}))
    assert load_run(run_dir).epochs_trained == 1
    from mannrl_gym.trainer import resume_config
    train(resume_config(run_dir, {"epochs": 2}), run_dir=run_dir, resume=True)
    assert load_run(run_dir).epochs_trained == 2
    assert "optimizer" not in yaml.safe_load((run_dir / "config.yaml").read_text())
    with pytest.raises(ConfigError, match=r"key 'optimizer' was removed: A is always trained"):
        from_mapping({"optimizer": "sgd"}, source="old.yaml")


def test_load_run_names_the_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config.yaml missing"):
        load_run(tmp_path)


def test_every_subpackage_is_packaged():
    """A package missing from pyproject's list works in an editable install and is absent
    from a wheel (mannrl_gym.replicas was, until 2026-11-27)."""
    import tomllib

    from conftest import ROOT

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {"mannrl_gym." + init.parent.name for init in (ROOT / "mannrl_gym").glob("*/__init__.py")}
    assert found - listed == set()
