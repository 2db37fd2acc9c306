"""``mannrl list``: the env ids, agents and tasks, one line each (imports no network code)."""

from __future__ import annotations

import typing

from mannrl_gym import agent_registry
from mannrl_gym.config import Config
from mannrl_gym.presets import ENV_PRESETS

ENV_SUMMARIES = {
    "MannRL-Logic-v0": "the paper's logic task (section 4.1, Table 1); generated, no data files",
    "MannRL-Symbolic-v0": "your own symbolic task from a JSON-lines file (data_path=...)",
    "MannRL-POS-v0": "part-of-speech tagging (section 4.2, Table 2): CoNLL-U and word vectors",
    "MannRL-Sentence-v0": "read a sentence character by character, write it back (section 4.3)",
    "MannRL-Translate-v0": "read a sentence, write its translation (section 4.3, footnote 5)",
}
TASK_SUMMARIES = {
    "logic": "and / or / xor sequences from the paper's generator (num_sequences, ...)",
    "jsonl": "JSON lines of input and target symbols (data_path, val_path)",
    "pos": "a CoNLL-U treebank's tags from word vectors (data_path, val_path, vectors_path)",
    "sentence": "plain text, a sentence a line, written back from memory (data_path)",
    "translate": "line-aligned source and target text (data_path, target_path)",
}


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {text}" for name, text in rows]


def listing() -> str:
    """The text ``mannrl list`` prints."""
    envs = [(env_id, f"{ENV_SUMMARIES.get(env_id, '')} [{ENV_PRESETS[env_id][0]}]")
            for env_id in ENV_PRESETS]
    agents = [(e.name, ("experiment: " if e.kind == "experiment" else "") + e.summary)
              for e in agent_registry.REGISTRY.values()
              if not agent_registry.is_spec(e.name)]  # names, not package.module:Class specs
    tasks = [(task, TASK_SUMMARIES.get(task, ""))
             for task in typing.get_args(typing.get_type_hints(Config)["task"])]
    return "\n".join(
        ["Environment ids (gymnasium.make / gymnasium.make_vec, after `import mannrl_gym`):",
         *_table(envs), "",
         "Agents (agent=NAME; your own: agent=package.module:Class):", *_table(agents), "",
         "Tasks (task=NAME):", *_table(tasks)]) + "\n"
