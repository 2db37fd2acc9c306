"""A newcomer's first hour (issue 23): `mannrl list` and `--version`, a fast `--help`,
`agent=package.module:Class`, the ETA in the epoch line, text rendering, py.typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import resources

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mannrl_gym
from mannrl_gym import agent_registry, cli
from mannrl_gym.config import ConfigError
from mannrl_gym.presets import ENV_PRESETS
from mannrl_gym.trainer import _progress_line, new_run_dir

from conftest import ROOT, for_task, small_config

QUICK = ["num_sequences=300", "eval_batch_size=64", "wandb_mode=disabled", "progress=false"]


def run_cli(args: list[str], cwd, pythonpath: str = "") -> subprocess.CompletedProcess:
    """``python -m mannrl_gym.cli ARGS`` in a fresh process, ``pythonpath`` in front."""
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, os.environ.get("PYTHONPATH", ""))
                                         if p)}
    return subprocess.run([sys.executable, "-m", "mannrl_gym.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_version_names_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"mannrl-gym {mannrl_gym.__version__}"


def test_list_names_every_env_id_agent_and_task(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for name in [*ENV_PRESETS, *agent_registry.agent_names(), "logic", "jsonl", "pos",
                 "sentence", "translate"]:
        if agent_registry.is_spec(name):
            continue
        line = next((line for line in lines if line.split()[:1] == [name]), None)
        assert line is not None and len(line.split()) > 2, name  # the name and what it is


def test_help_version_and_list_import_neither_torch_nor_the_trainer():
    code = ("import sys\nfrom mannrl_gym import cli\n"
            "for argv in (['--help'], ['--version'], ['train', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "cli.main(['list'])\n"
            "print(sorted(m for m in ('torch', 'mannrl_gym.trainer', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_errors_of_modules_imported_late_still_print_one_line(tmp_path, capsys):
    run = tmp_path / "empty-run"
    run.mkdir()
    assert cli.main(["train", "--resume", str(run)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_py_typed_ships_with_the_package():
    assert resources.files("mannrl_gym").joinpath("py.typed").is_file()
    assert "py.typed" in (ROOT / "pyproject.toml").read_text()


# --- ETA ---------------------------------------------------------------------------------
def test_the_epoch_line_ends_with_the_time_left():
    row = {"epoch": 3, "minutes": 0.5, "train/f1": 0.9, "validation/f1": 0.6}
    assert _progress_line(row, 125.0).endswith("ETA 2m05s")
    assert _progress_line(row, 2 * 3600 + 5 * 60).endswith("ETA 2h05m")
    assert "ETA" not in _progress_line(row, None) and "ETA" not in _progress_line(row, 0.0)


def test_train_prints_an_eta_on_every_epoch_but_the_last(tmp_path, capsys):
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, "epochs=3",
                     f"out_dir={tmp_path}", "run_name=eta"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3
    assert all("ETA " in line for line in lines[:2]) and "ETA" not in lines[2]


def test_a_replicated_run_prints_an_eta_on_every_epoch_but_the_last(tmp_path, capsys):
    assert cli.main(["train", str(ROOT / "configs/logic.yaml"), *QUICK, "epochs=3",
                     "seeds=0-1", f"out_dir={tmp_path}", "run_name=eta"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3 and all("2 replicas" in line for line in lines)
    assert all("ETA " in line for line in lines[:2]) and "ETA" not in lines[2]


# --- render ------------------------------------------------------------------------------
def test_single_env_renders_the_last_step_as_text():
    env = gymnasium.make("MannRL-Logic-v0", render_mode="ansi", num_sequences=300)
    assert "ansi" in env.metadata["render_modes"]
    check_env(env.unwrapped)  # the render check included
    env.reset(seed=1)
    _, _, _, _, info = env.step(env.action_space.sample())
    frame = env.render()
    symbols = env.unwrapped.task.output_symbols
    assert f"target {symbols[info['target']]!r}" in frame
    assert f"prediction {symbols[info['prediction']]!r}" in frame
    assert ("ok" if info["correct"] else "wrong") in frame


def test_vector_env_renders_one_line_per_slot():
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=4, render_mode="ansi",
                             num_sequences=300, stagger=False)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.full((4, 48), 0.5, np.float32))
    lines = env.render().splitlines()
    assert len(lines) == 5 and lines[0].startswith("train pass, step 2/")
    symbols = env.task.output_symbols
    for slot, line in enumerate(lines[1:]):
        assert line.startswith(f"slot {slot:3d}")
        assert f"target {symbols[info['target'][slot]]!r}" in line


def test_a_render_mode_the_env_cannot_draw_renders_nothing():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's make_vec_env asks every env for rgb_array: silent
        env = gymnasium.make("MannRL-Logic-v0", render_mode="rgb_array", num_sequences=300)
    assert env.unwrapped.render_mode is None
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode 'rgb_array' is not one this env draws; it "
                                         "draws 'ansi'"):  # not "called without a render_mode"
        assert env.render() is None
    with pytest.warns(UserWarning, match="render_mode 'human' is not one this env draws: it "
                                         "draws 'ansi'") as caught:
        env = gymnasium.make("MannRL-Logic-v0", render_mode="human", num_sequences=300)
    assert env.unwrapped.render_mode is None
    assert caught[0].filename == __file__  # the user's line, not the library's


# --- agent=package.module:Class -------------------------------------------------------------
AGENT_MODULE = '''
"""A user's own memory agent, outside mannrl_gym."""
import numpy as np


class HalfAgent:
    """Writes 0.5 in every memory unit and counts its steps."""

    def __init__(self, layout, config, num_slots, seed):
        self.memory_size, self.steps = layout.memory_size, 0

    def act(self, observation):
        return np.full((observation.shape[0], self.memory_size), 0.5, np.float32)

    def explore(self, observation):
        return self.act(observation)

    def observe(self, observation, reward, info):
        self.steps += 1

    def start_epoch(self, epoch):
        pass

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


class WrongShape(HalfAgent):
    """Writes 3 memory units where the env has more."""

    def act(self, observation):
        return np.full((observation.shape[0], 3), 0.5, np.float32)


class KeepsArrays(HalfAgent):
    """Keeps a NumPy array in its state, which a checkpoint cannot hold; ``acts`` counts
    every act of every instance."""

    acts = 0

    def act(self, observation):
        KeepsArrays.acts += 1
        return super().act(observation)

    def state_dict(self):
        return {"steps": self.steps, "seen": np.zeros(3)}


class NotAnAgent:
    """Has none of the methods."""
'''


@pytest.fixture
def agent_folder(tmp_path):
    folder = tmp_path / "user_code"
    (folder / "my_agents").mkdir(parents=True)
    (folder / "my_agents" / "__init__.py").write_text("")
    (folder / "my_agents" / "half.py").write_text(textwrap.dedent(AGENT_MODULE))
    return folder


def test_a_custom_agent_trains_resumes_and_plots_from_the_command_line(tmp_path, agent_folder):
    spec = "my_agents.half:HalfAgent"
    run = tmp_path / "runs" / "custom"
    first = run_cli(["train", str(ROOT / "configs/logic.yaml"), f"agent={spec}", *QUICK,
                     "epochs=1", f"out_dir={run.parent}", "run_name=custom"], tmp_path,
                    str(agent_folder))
    assert first.returncode == 0, first.stderr
    assert f"agent: {spec}" in (run / "config.yaml").read_text()
    resumed = run_cli(["train", "--resume", str(run), "epochs=2"], tmp_path, str(agent_folder))
    assert resumed.returncode == 0, resumed.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    plotted = run_cli(["plot", str(run)], tmp_path, str(agent_folder))
    assert plotted.returncode == 0, plotted.stderr
    assert (run / "memory.png").exists() and (run / "curves.png").exists(), plotted.stdout
    lost = run_cli(["train", "--resume", str(run), "epochs=3"], tmp_path)  # no PYTHONPATH
    assert lost.returncode == 2 and "PYTHONPATH" in lost.stderr
    assert len(lost.stderr.strip().splitlines()) == 1


def test_a_custom_agents_wrong_action_or_state_is_one_line_at_once(tmp_path, agent_folder,
                                                                   monkeypatch, capsys):
    """A user's agent that acts with the wrong shape, or keeps what a checkpoint cannot hold,
    stops in one line naming the agent or the key, in its first epoch (the state: before it),
    not at a resume."""
    monkeypatch.syspath_prepend(str(agent_folder))
    base = ["train", str(ROOT / "configs/logic.yaml"), *QUICK, "epochs=2", "progress=false",
            "wandb_mode=disabled", f"out_dir={tmp_path / 'runs'}"]
    assert cli.main([*base, "agent=my_agents.half:WrongShape", "run_name=w"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("mannrl: error: agent my_agents.half:WrongShape: its act() gave an "
                           "action the env refuses, at epoch 1: action shape is") and \
        len(said.strip().splitlines()) == 1
    assert cli.main([*base, "agent=my_agents.half:KeepsArrays", "run_name=k"]) == 2
    captured = capsys.readouterr()
    said = captured.err
    assert "cannot keep state['experiment']" in said and "['seen'], a numpy.ndarray" in said
    assert len(said.strip().splitlines()) == 1
    from my_agents.half import KeepsArrays as imported

    assert "epoch    1" not in captured.out and imported.acts == 0  # before any epoch trains
    assert not (tmp_path / "runs" / "k").exists()  # and nothing kept of it


def test_a_custom_agent_spec_in_a_config_file_and_its_errors(tmp_path, agent_folder, monkeypatch):
    monkeypatch.syspath_prepend(str(agent_folder))
    config = small_config(agent="my_agents.half:HalfAgent")
    assert agent_registry.has_memory_agent(config.agent)
    assert new_run_dir(config).name.startswith("logic-HalfAgent-seed0-")  # no colon in a path
    assert agent_registry.entry(config.agent).summary == "Writes 0.5 in every memory unit and " \
                                                         "counts its steps."
    with pytest.raises(ConfigError, match="neither a memory agent"):
        small_config(agent="my_agents.half:NotAnAgent")
    with pytest.raises(ConfigError, match="has no 'Missing'"):
        small_config(agent="my_agents.half:Missing")
    with pytest.raises(ConfigError, match="cannot be imported .*PYTHONPATH"):
        small_config(agent="no_such_package.agents:Agent")
    with pytest.raises(ConfigError, match=r"or package.module:Class, got 'nonsense'"):
        small_config(agent="nonsense")

    from mannrl_gym.agents import make_agent
    from mannrl_gym.envs.core import make_spaces
    from mannrl_gym.tasks import build_task

    for spec, message in (("os.path:join", r"cannot be called as a memory agent, \(layout, "
                                           r"config, num_slots, seed\) -> agent: expected str"),
                          ("builtins:sorted", "cannot be called as a memory agent")):
        config = small_config(agent=spec)  # a callable: taken as a factory until it is called
        layout = make_spaces(build_task(config), config.memory_size)[2]
        with pytest.raises(ConfigError, match=message):
            make_agent(config, layout, 4)


def test_render_without_a_render_mode_warns_and_returns_none():
    env = gymnasium.make_vec("MannRL-Logic-v0", num_envs=2, num_sequences=300)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="without a render_mode") as caught:
        assert env.render() is None
    assert caught[0].filename == __file__  # the user's line, as the env's other warnings
    single = gymnasium.make("MannRL-Logic-v0", num_sequences=300)
    single.reset(seed=0)
    with pytest.warns(UserWarning, match="without a render_mode") as caught:
        assert single.render() is None
    assert caught[0].filename == __file__


def test_the_sb3_adapter_takes_the_envs_render_mode_without_a_warning():
    import warnings

    from mannrl_gym.agents.sb3 import SB3VecEnv
    from mannrl_gym.envs import make_vector_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        venv = SB3VecEnv(make_vector_env(num_envs=4, num_sequences=300, render_mode="ansi"))
    assert not [w for w in caught if "render_mode" in str(w.message)]  # was SB3's warning
    assert venv.render_mode == "ansi"


def test_a_conllu_sentence_config_without_its_data_names_conllu_too(tmp_path, capsys):
    """configs/sentence-ewt.yaml reads a treebank's '# text =' lines; the line said plain text."""
    assert cli.main(["train", str(ROOT / "configs/sentence-ewt.yaml"), *for_task("sentence", QUICK),
                     f"data_path={tmp_path / 'absent.conllu'}", f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "CoNLL-U file's '# text =' lines" in err and "data=sample" in err
