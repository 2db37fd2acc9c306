import pytest

from mannrl_gym import cli
from mannrl_gym.config import Config, ConfigError, from_mapping, load, parse_overrides

from conftest import ROOT


def write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_paper_config_loads_with_table_1_values(tmp_path):
    from conftest import ROOT
    config = load(ROOT / "configs/logic.yaml")
    assert (config.history, config.settle, config.batch_size, config.memory_size) == (32, 8, 16, 48)
    assert (config.lr, config.memory_lr, config.memory_samples, config.gamma) == (1e-4, 1e-5, 8, 0.99)
    assert config.double_softmax and not config.detach_target and config.carry_memory


@pytest.mark.parametrize("text, words", [
    ("histroy: 3\n", ["unknown key 'histroy'", "did you mean 'history'"]),
    ("learning_rate: 0.001\n", ["unknown key 'learning_rate'", "did you mean 'lr'"]),  # SB3's name
    ("lr: fast\n", ["key 'lr'", "float"]),
    ("epochs: 2.5\n", ["key 'epochs'", "int"]),
    ("carry_memory: 1\n", ["key 'carry_memory'", "bool"]),
    ("memory_samples: 32\nhistory: 32\n", ["key 'memory_samples'", "< history"]),
    ("lr: -0.1\n", ["key 'lr'", "> 0"]),
    ("gamma: 1.5\n", ["key 'gamma'"]),
    ("agent: ppo\n", ["key 'agent'", "mannrl"]),
    ("lr: [1\n", ["not valid YAML"]),
    ("- 1\n- 2\n", ["mapping"]),
])
def test_bad_config_names_key_and_file(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load(path)
    message = str(error.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_overrides_forms_and_types():
    parsed = parse_overrides(["lr=3e-4", "--carry-memory=false", "--epochs", "7", "run_name=x"])
    assert parsed == {"lr": "3e-4", "carry_memory": False, "epochs": 7, "run_name": "x"}
    config = from_mapping(parsed)  # YAML reads 3e-4 as text; the float key accepts it
    assert config.lr == 3e-4 and isinstance(config.lr, float)


def test_override_errors_name_the_override(tmp_path):
    path = write(tmp_path, "epochs: 3\n")
    with pytest.raises(ConfigError, match="override.*unknown key 'nope'"):
        load(path, {"nope": 1})
    with pytest.raises(ConfigError, match="key 'history'"):
        load(path, {"history": 1})


def test_cli_reports_bad_config_before_training(tmp_path, capsys):
    path = write(tmp_path, "memory_samples: 40\n")
    assert cli.main(["train", str(path), f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "memory_samples" in err and str(path) in err
    assert not any(tmp_path.glob("*/checkpoint.pt"))


def test_defaults_validate_and_round_trip():
    config = Config().validate()
    assert from_mapping(config.to_dict()) == config


@pytest.mark.parametrize("text, words", [
    ("num_sentences: 100\n", ["key 'num_sentences'", "'sentence' or 'translate', not 'logic'",
                              "it is 100 here"]),
    ("task: pos\ndata_path: a.conllu\nval_path: b.conllu\nmin_operands: 3\n",
     ["key 'min_operands'", "only read when task is 'logic', not 'pos'"]),
    ("data_path: words.txt\n", ["key 'data_path'", "'jsonl', 'pos', 'sentence' or 'translate'"]),
    ("task: sentence\ndata_path: a.txt\ntag_column: upos\n", ["key 'tag_column'", "'pos'"]),
    ("task: pos\ndata_path: a.conllu\nval_path: b.conllu\nholdout: random\n",
     ["key 'holdout'", "'logic' or 'jsonl', not 'pos'"]),
])
def test_a_key_the_task_never_reads_is_refused(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load(path)
    for word in [str(path)] + words:
        assert word in str(error.value)


def test_a_task_key_at_its_default_passes_and_saved_runs_still_load(tmp_path):
    from conftest import ROOT
    from mannrl_gym.config import as_saved
    # configs/logic.yaml spells out Logic's keys at their defaults: another task may start from it
    config = load(ROOT / "configs/logic.yaml", {"task": "jsonl", "data_path": "rows.jsonl"})
    assert config.task == "jsonl" and config.num_sequences == Config.num_sequences
    # a run saved before such keys were refused resumes: the key it never read goes to its default
    saved = {**Config().to_dict(), "num_sentences": 3, "tag_column": "upos"}
    config = from_mapping(as_saved(saved))
    assert (config.num_sentences, config.tag_column) == (Config.num_sentences, Config.tag_column)
    sentence = {**saved, "task": "sentence", "data_path": "a.txt"}
    assert from_mapping(as_saved(sentence)).num_sentences == 3  # read by its task: kept


def test_a_key_only_other_agents_read_is_refused_and_declared_agents_pass(tmp_path):
    from mannrl_gym import agent_registry
    from mannrl_gym.config import as_saved
    with pytest.raises(ConfigError, match=r"key 'es_sigma' is only read when agent is 'es', "
                                          r"not 'mannrl' \(it is 0.05 here"):
        from_mapping({"es_sigma": 0.05})
    with pytest.raises(ConfigError, match="'agent_window' is only read when agent is 'es', "
                                          "'pg', 'repaired' or 'reward_grad', not 'lstm'"):
        from_mapping({"agent": "lstm", "agent_window": 64})
    assert from_mapping({"agent": "pg", "agent_window": 64, "pg_sigma": 0.5}).pg_sigma == 0.5
    # an agent that declares nothing (a user's, or package.module:Class) may be given any key
    agent_registry.register_agent("undeclared_test_agent", "agents.baselines:NoMemoryAgent")
    try:
        assert from_mapping({"agent": "undeclared_test_agent", "es_sigma": 0.05}).es_sigma == 0.05
    finally:
        del agent_registry.REGISTRY["undeclared_test_agent"]
    # a run saved before such keys were refused loads, the key at its default
    saved = from_mapping(as_saved({**Config().to_dict(), "repaired_tau": 0.5}))
    assert saved.repaired_tau == Config.repaired_tau


def test_a_memory_net_key_given_to_an_agent_without_one_is_refused():
    """`agent=lstm memory_lr=1e-3` would train the run without it: refused; the config file's
    own memory-net values (one file for every agent of a task) and agents with a memory-net
    pass; compare gives a common memory-net key to the agents that read it only."""
    from conftest import ROOT

    from mannrl_gym import compare
    from mannrl_gym.config import load

    sentence = ROOT / "configs/sentence-pg.yaml"
    file_lr = load(sentence).memory_lr
    with pytest.raises(ConfigError, match=r"key 'memory_lr' is a memory-net key that agent "
                                          r"'lstm' never reads \(an LSTM .*\): memory_lr=0.001 "
                                          r"would change nothing; drop it"):
        load(sentence, {"agent": "lstm", "memory_lr": 1e-3})
    with pytest.raises(ConfigError, match="key 'gamma' is a memory-net key"):
        load(sentence, {"agent": "lstm", "gamma": 0.5})
    with pytest.raises(ConfigError, match="key 'history' is a memory-net key"):  # not: the
        load(sentence, {"agent": "lstm", "history": 4})  # memory_samples too large for it
    assert load(sentence, {"agent": "lstm", "memory_lr": file_lr}).memory_lr == file_lr
    assert load(sentence, {"agent": "lstm", "lr": 1e-3}).memory_lr == file_lr
    assert load(sentence, {"agent": "mannrl", "memory_lr": 1e-3}).memory_lr == 1e-3
    assert load(sentence, {"agent": "pg", "gamma": 0.5}).gamma == 0.5  # its returns
    # the keys of the paper's step of f change no run of the others (tests/test_agent_keys.py)
    for agent in ("frozen_weights", "frozen_memory", "no_memory", "es", "pg", "reward_grad"):
        with pytest.raises(ConfigError, match=f"'memory_lr' is a memory-net key that agent "
                                              f"'{agent}' never reads"):
            load(sentence, {"agent": agent, "memory_lr": 1e-3})
    assert load(sentence, {"agent": "frozen_weights", "history": 12}).history == 12  # its BN
    assert load(sentence, {"agent": "frozen_memory", "carry_memory": False}).carry_memory is False
    with pytest.raises(ConfigError, match="'carry_memory' is a memory-net key"):
        load(sentence, {"agent": "no_memory", "carry_memory": False})
    assert compare._read_by("lstm", {"memory_lr": 1e-3, "lr": 1e-3}) == {"lr": 1e-3}
    assert compare._read_by("mannrl", {"memory_lr": 1e-3}) == {"memory_lr": 1e-3}
    assert compare._read_by("frozen_weights", {"memory_lr": 1e-3, "history": 4}) == {"history": 4}



def test_wandb_mode_comes_from_the_environment_where_no_key_gives_it(monkeypatch):
    from pathlib import Path

    logic = Path(__file__).resolve().parents[1] / "configs" / "logic.yaml"
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert from_mapping({}).wandb_mode == "offline" and load(logic).wandb_mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert from_mapping({}).wandb_mode == "disabled"
    assert load(logic).wandb_mode == "disabled"  # the shipped configs leave the key out
    assert from_mapping({"wandb_mode": "offline"}).wandb_mode == "offline"  # a key stands
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # wandb's older name for offline
    assert from_mapping({}).wandb_mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "bogus")
    with pytest.raises(ConfigError, match="environment: WANDB_MODE is 'bogus'; .* offline, "
                                          "disabled, online"):
        from_mapping({})
    assert from_mapping({"wandb_mode": "disabled"}).wandb_mode == "disabled"  # not read


def test_a_default_run_name_names_the_data_file(monkeypatch):
    from mannrl_gym.replicas.trainer import parent_dir
    from mannrl_gym.trainer import new_run_dir

    pg = from_mapping({"task": "sentence", "data_path": "/nowhere/pg.en", "seed": 3})
    assert new_run_dir(pg).name.startswith("sentence-pg-mannrl-seed3-")
    assert parent_dir(pg).name.startswith("sentence-pg-mannrl-replicas-")
    assert new_run_dir(from_mapping({"task": "translate", "data": "sample",
                                     "agent": "lstm"})).name.startswith(
        "translate-sample-lstm-seed0-")
    assert new_run_dir(from_mapping({})).name.startswith("logic-mannrl-seed0-")  # no data file
    # Logic generates its data: data=sample changes nothing, and is not in the name
    assert new_run_dir(from_mapping({"data": "sample"})).name.startswith("logic-mannrl-seed0-")
    assert new_run_dir(from_mapping({"run_name": "mine"})).name == "mine"
    joined = from_mapping({"task": "sentence", "data_path": "/a/dev.conllu:/a/test.conllu"})
    assert new_run_dir(joined).name.startswith("sentence-dev+test-mannrl-seed0-")


def test_joined_data_files_are_named_by_what_tells_them_apart():
    from mannrl_gym.trainer import data_files_name

    assert data_files_name(["/d/en_ewt-ud-dev.conllu", "/d/en_ewt-ud-test.conllu"]) == \
        "en_ewt-ud-dev+test"
    assert data_files_name(["/a/x.en", "/b/x.en"]) == "x+1"  # nothing tells them apart
    assert data_files_name(["/a/pg.en"]) == "pg"
    long = [f"/a/{'w' * 36}{i}.txt" for i in range(3)]
    assert data_files_name(long) == f"{'w' * 36}0+2"  # too long joined: how many more


def test_a_config_file_without_keys_is_refused(tmp_path):
    """An empty (or comments-only) file would train every default, Table 1's Logic, for what
    was meant as another run."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("# my sentence run\n")
    with pytest.raises(ConfigError, match="holds no keys"):
        load(empty)


def test_load_takes_the_command_lines_overrides_as_a_list():
    assert load(ROOT / "configs" / "logic.yaml", ["epochs=3", "--lr=0.001"]).epochs == 3
    with pytest.raises(ConfigError, match="overrides must be a mapping"):
        load(ROOT / "configs" / "logic.yaml", 3)


def test_a_path_given_beside_data_sample_is_refused_not_replaced(tmp_path):
    """data=sample stands in for a config file's paths, but a path given with it in the same
    place (the command line, an env's kwargs) is one or the other."""
    data = tmp_path / "mine.en"
    data.write_text("Hello there.\n")
    config = load(ROOT / "configs" / "sentence-pg.yaml", {"data": "sample"})
    assert "sample" in config.data_path  # the file's data_path replaced by the sample's
    with pytest.raises(ConfigError, match="data='sample' reads the sample .* not data_path"):
        load(ROOT / "configs" / "sentence-pg.yaml", {"data": "sample", "data_path": str(data)})
    import gymnasium

    with pytest.raises(ConfigError, match="environment kwargs: data='sample' .* not data_path"):
        gymnasium.make("MannRL-Sentence-v0", data="sample", data_path=str(data))
    # a saved run's config names the sample where it lay then: read back, it is today's
    saved = from_mapping({"task": "sentence", "data": "sample",
                          "data_path": "/old/checkout/sample_data/sentences.en"})
    assert saved.data_path == config.data_path


def test_free_text_keys_keep_what_was_typed_and_paths_may_be_pathlib(tmp_path):
    assert parse_overrides(["run_name=2026", "wandb_project=yes", "data_path=notes:"]) == {
        "run_name": "2026", "wandb_project": "yes", "data_path": "notes:"}
    assert parse_overrides(["data_path=null", "run_name='a b'", "epochs=7"]) == {
        "data_path": None, "run_name": "a b", "epochs": 7}
    data = tmp_path / "mine.en"
    data.write_text("Hello there.\n")
    config = from_mapping({"task": "sentence", "data_path": data, "num_sentences": 1,
                           "curriculum_chunk": 1})
    assert config.data_path == str(data)


def test_a_path_from_the_home_folder_is_read_as_a_shell_would(tmp_path, monkeypatch):
    """``~`` in a config file or a quoted value is the home folder, in every part of a
    joined path and in out_dir (else a folder named '~' appears in the current one)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.en").write_text("Hello there.\n")
    (tmp_path / "b.en").write_text("Go on.\n")
    path = write(tmp_path, "task: sentence\ndata_path: ~/a.en:~/b.en\nnum_sentences: 2\n"
                           "curriculum_chunk: 2\nout_dir: ~/runs\n")
    config = load(path)
    assert config.data_path == f"{tmp_path}/a.en:{tmp_path}/b.en"
    assert config.out_dir == f"{tmp_path}/runs"
    assert load(path, ["data_path=~/b.en"]).data_path == f"{tmp_path}/b.en"


def test_a_config_file_completed_by_the_command_line_loads(tmp_path):
    """A file may leave a required key (a sentence task's data_path) to the command line;
    without it, the file is named."""
    (tmp_path / "a.en").write_text("Hello there.\n")
    path = write(tmp_path, "task: sentence\nnum_sentences: 1\ncurriculum_chunk: 1\n")
    assert load(path, [f"data_path={tmp_path / 'a.en'}"]).data_path == str(tmp_path / "a.en")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'data_path' is required"):
        load(path)
    with pytest.raises(ConfigError, match=rf"^{path} \(with overrides\): key 'data_path' is "
                                          rf"required"):
        load(path, ["epochs=2"])
