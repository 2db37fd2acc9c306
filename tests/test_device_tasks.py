"""The device path on the other tasks: POS reads word vectors (UD English EWT), the sentence
tasks embed their characters (PUD), where ``../shared/data`` holds them; torch's CPU device
against the NumPy path."""

import pytest

from mannrl_gym.config import Config
from mannrl_gym.replicas.experiment import ReplicatedExperiment
from mannrl_gym.tasks import build_task
from mannrl_gym.tasks.pos import read_conllu

from conftest import SHARED_DATA, small_config
from test_pos import EWT, needs_ewt, write_vectors


def device_pass_matches_host_pass(keys: dict) -> None:
    """Seeds 0 and 1 of ``keys`` train one pass on the NumPy path and on torch's CPU device:
    most of it runs there, with the host's losses."""
    configs = [Config(**small_config(seed=seed, **keys).to_dict()).validate() for seed in (0, 1)]
    tasks = [build_task(c) for c in configs]
    stats = {}
    for device in (None, "cpu"):
        experiment = ReplicatedExperiment(configs, tasks, device)
        stats[device] = experiment.run_epoch(0, "test")
        if device is not None:  # most of the pass ran there
            assert experiment.device_pass.steps_run > 0.8 * experiment.env.steps_per_pass
    for mine, theirs in zip(stats["cpu"], stats[None]):
        assert mine["train_loss_running"] == pytest.approx(theirs["train_loss_running"],
                                                           rel=1e-5)
        assert mine["memory_loss"] == pytest.approx(theirs["memory_loss"], rel=1e-4)


@needs_ewt
def test_pos_with_word_vectors_runs_on_the_device_as_on_the_host(tmp_path):
    words = sorted({w for s, _ in read_conllu(EWT / "en_ewt-ud-test.conllu") for w in s})
    vectors = write_vectors(tmp_path / "v.txt", words[::2], dim=16)
    keys = {"task": "pos", "data_path": str(EWT / "en_ewt-ud-test.conllu"),
            "val_path": str(EWT / "en_ewt-ud-test.conllu"), "vectors_path": str(vectors),
            "cache_dir": str(tmp_path / "cache"), "memory_size": 16, "hidden_size": 32}
    device_pass_matches_host_pass(keys)


PUD = SHARED_DATA / "pud-en-fr" / "pud.en"


@pytest.mark.skipif(not PUD.exists(), reason="PUD sentences not in ../shared/data")
def test_sentences_with_embeddings_run_on_the_device_as_on_the_host():
    keys = {"task": "sentence", "data_path": str(PUD), "num_sentences": 200,
            "min_char_count": 8, "embed_size": 8, "hidden_layers": 2, "hidden_size": 32,
            "memory_size": 16, "history": 10, "settle": 6, "memory_samples": 8}
    device_pass_matches_host_pass(keys)


@pytest.mark.parametrize("keys", [{}, {"history": 4, "settle": 2, "memory_samples": 3}])
def test_logic_runs_on_the_device_as_on_the_host(keys):
    """Logic (f without embeddings): its update on the gathered pair rows (Table 1's 32
    stored steps hold more states than 8 pairs' rows) and on the distinct stored states (4
    stored steps, 3 pairs: ``forward_torch`` with an index and no fixed/embedded split)."""
    device_pass_matches_host_pass(keys)
