"""The small sample of every data format shipped inside the package (``mannrl_gym/sample_data``,
its README.md: what it is, its licence) and the one-line errors that point at it.

``data: sample`` (a config key; ``mannrl train CONFIG data=sample``) reads the sample instead
of the config's path keys; an env id given no ``data_path`` steps through it too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from mannrl_gym import agent_registry
from mannrl_gym.config import PATH_KEYS, missing_files
from mannrl_gym.errors import DataError, not_a_file

SAMPLE_FILES: dict[str, dict[str, str]] = {  # task -> {path key: file in sample_data/}
    "jsonl": {"data_path": "symbolic.jsonl"},
    "pos": {"data_path": "pos-train.conllu", "val_path": "pos-val.conllu",
            "vectors_path": "vectors-16d.txt"},
    "sentence": {"data_path": "sentences.en"},
    "translate": {"data_path": "sentences.en", "target_path": "sentences.fr"},
}
FULL_DATA = {  # where a task's full data comes from (one clause each)
    "pos": "the full data is a CoNLL-U treebank pair (Table 2: Universal Dependencies English "
           "EWT, from universaldependencies.org)",
    "sentence": "the full data is plain text, a sentence a line, or a CoNLL-U file's "
                "'# text =' lines (Table 3: WMT 2014 "
                "news-commentary v9; configs/sentence.yaml: the Parallel UD sentences, from "
                "universaldependencies.org)",
    "translate": "the full data is two line-aligned plain-text files (WMT's corpus.en / "
                 "corpus.fr layout; configs/translate.yaml: the Parallel UD English and French "
                 "sentences, from universaldependencies.org)",
}
SAMPLE_HINT = "or run on the sample shipped with mannrl-gym: data=sample"


def sample_folder() -> Path:
    """The installed ``mannrl_gym/sample_data`` folder."""
    return Path(str(resources.files("mannrl_gym").joinpath("sample_data")))


def sample_paths(task: str) -> dict[str, Any]:
    """The path keys of ``task`` pointing at the sample (every path key of the task; keys the
    task does not read are None). Logic has no files: {}."""
    if task not in SAMPLE_FILES:
        return {}
    files = SAMPLE_FILES[task]
    return {key: str(sample_folder() / files[key]) if key in files else None
            for key in PATH_KEYS}


def check_files(config) -> None:
    """DataError in one line for the first path key of ``config`` that names no file: where
    the full data comes from and how to run on the sample instead."""
    if config.task not in FULL_DATA:  # jsonl: the user's own file; its reader names it
        return
    keys = [key for key in SAMPLE_FILES[config.task] if getattr(config, key)]
    if not agent_registry.entry(config.agent).reads_features:  # these read no vectors
        keys = [key for key in keys if key != "vectors_path"]
    for key in keys:
        value = getattr(config, key)
        missing = missing_files(value, joined=config.task in ("sentence", "translate"))
        if not missing:
            continue
        path = missing[0]
        if key == "vectors_path":
            config_file = config.source.split(" (")[0]
            config_file = config_file if config_file.endswith((".yaml", ".yml")) else "CONFIG"
            raise DataError(f"{config.source}: key 'vectors_path': {path}: {not_a_file(path)}; "
                            f"write stand-in vectors there with `mannrl vectors {config_file}` "
                            f"(pip install 'mannrl-gym[vectors]'), or give GloVe / word2vec text; "
                            f"{SAMPLE_HINT}")
        raise DataError(f"{config.source}: key '{key}': {path}: {not_a_file(path)}; "
                        f"{FULL_DATA[config.task]}; {SAMPLE_HINT}")
