"""``docs/config.md``, generated from :class:`~mannrl_gym.config.Config` and the agent registry.

Types and defaults are read from ``Config``; each key's meaning is written here, and the
tests check that every key has one and that ``docs/config.md`` is what ``render()`` writes:

    python -m mannrl_gym.config_docs > docs/config.md
"""

from __future__ import annotations

import typing
from dataclasses import fields

from mannrl_gym import agent_registry
from mannrl_gym.config import KEYS, REMOVED_KEYS, Config

SECTIONS: dict[str, dict[str, str]] = {
    "Task and data": {
        "task": "`logic` (section 4.1), `jsonl` (your own symbolic task), `pos` (CoNLL-U + word "
                "vectors, section 4.2), `sentence`, `translate` (plain text, a sentence a line, or "
                "CoNLL-U `# text = ` lines, section 4.3)",
        "data_path": "jsonl / pos (CoNLL-U): the training file; sentence / translate: the "
                     "source text (a sentence a line, or CoNLL-U: its `# text = ` lines); several "
                     "files joined with `:` are read in order as one",
        "target_path": "translate: the target-language file, line-aligned with `data_path`",
        "val_path": "jsonl / pos: held-out data (jsonl: else split from `data_path`)",
        "num_sentences": "sentence / translate: train on the N shortest pairs (translation: "
                         "both directions; validation: the next 5%), within the length band "
                         "of `min_chars` / `max_chars`",
        "min_chars": "sentence / translate: keep only pairs whose source (the `data_path` "
                     "sentence, cleaned) has at least this many characters, then take the "
                     "`num_sentences` shortest (null: no lower bound)",
        "max_chars": "sentence / translate: keep only pairs whose source has at most this "
                     "many characters (null: no upper bound); a band holding fewer than "
                     "`num_sentences` + 1 pairs stops with the file's counts per length band",
        "min_char_count": "sentence / translate: characters seen fewer times become a space "
                          "(reference: 8)",
        "reading_fill": "sentence / translate: the target while reading (`digits`: the "
                        "reference; `empty`: the paper's text)",
        "curriculum_every": "sentence / translate: add the next chunk of pairs (by length) "
                            "every N epochs (the configs: the reference's 1,000)",
        "curriculum_chunk": "sentence / translate: training sequences per curriculum chunk "
                            "(translate: each direction of a pair is one); one as large as "
                            "the training sequences holds them all (one chunk)",
        "tag_column": "pos: `xpos` (the paper's Penn Treebank tags) or `upos`",
        "data": "`files`: read the path keys; `sample`: read the small sample shipped in the "
                "package instead (`mannrl_gym/sample_data`, its README: a few hundred "
                "sentences written for this project, MIT) and set the path keys to it; a "
                "missing data file's error names this switch",
        "vectors_path": "pos: GloVe / word2vec text (default: `glove.840B.300d.txt` in "
                        "`cache_dir`)",
        "cache_dir": "binary vector caches (default `~/.cache/mannrl-gym`)",
        "num_sequences": "logic: sequences drawn from the generator",
        "min_operands": "logic: fewest operands in a sequence",
        "max_operands": "logic: most operands in a sequence",
        "val_fraction": "logic / jsonl / sentence / translate: share of the data held out for "
                        "validation (pos reads its own `val_path`)",
        "holdout": "logic / jsonl: `distinct`: validation holds whole distinct sequences never trained on; "
                   "`random`: the paper's plain split (only 460 distinct Logic sequences exist, "
                   "so most validation sequences also occur in training)",
        "holdout_distinct": "logic with `holdout: distinct`: hold out this many distinct "
                            "sequences, drawn uniformly, one copy each in validation (their "
                            "other copies leave training); null: 100, or a quarter of the "
                            "distinct sequences drawn when that is fewer (Table 1's 10,000 "
                            "draws: 100, as in the Logic table of README.md); 0 (the default before "
                            "issue 23) holds out whole sequences until `val_fraction` of the "
                            "draws, which at seed 0 is 534 draws of only 17 distinct sequences; "
                            "`holdout: random` is the reference's split; a run saved without the key resumes "
                            "with 0, its split",
        "seed": "every random draw: data, split, weights, replay sampling",
    },
    "Action network A (supervised)": {
        "epochs": "passes over the training data",
        "batch_size": "B: slots of the batched env, A's batch (the paper: 16)",
        "eval_batch_size": "slots of the evaluation envs (figures do not depend on it, see "
                           "docs/design.md)",
        "hidden_size": "A's hidden width (the paper does not give it)",
        "hidden_layers": "A's linear-BN-relu blocks (sentence tasks: 2)",
        "embed_size": "width of a learned embedding of the input (and, in f, of the output); "
                      "sentence tasks: 96",
        "lr": "A's Adam step size",
        "clipping": "A's max gradient norm",
    },
    "Memory-net f (reinforcement learning)": {
        "agent": "what writes the memory: a name of the agent registry (table below), or your "
                 "own class as `package.module:Class` (its folder on `PYTHONPATH`)",
        "memory_size": "M, the memory vector's width",
        "history": "batch-states kept for each memory update",
        "settle": "steps after an update before states are kept again",
        "memory_train_iterations": "updates of f per cycle",
        "memory_optimizer": "f's optimizer",
        "memory_lr": "f's step size",
        "memory_clipping": "f's max gradient norm",
        "memory_samples": "pairs (s_k, s_k+1) sampled from the history per update (< history)",
        "memory_lr_decay_every": "multiply `memory_lr` by `memory_lr_decay` every N epochs (the "
                                 "reference's POS run: 100)",
        "memory_lr_decay": "the step decay's factor",
        "memory_clamp": "the reward is -min(A's loss, memory_clamp)",
        "gamma": "discount of f's Q-learning target",
        "memory_sees_output": "false: the output block of f's state (and every memory agent's "
                              "observation) holds zeros instead of A's output probabilities, "
                              "so f writes from the memory and the input alone (the paper's "
                              "open question: are the outputs required?)",
    },
    "Memory-nets trained from the reward (agent=es, pg, repaired, reward_grad)": {
        "agent_window": "env steps per update (an ES generation; a policy-gradient batch; "
                        "`repaired`: an actor-critic update; `reward_grad`: one Adam step "
                        "on the summed gradient)",
        "es_population": "perturbed memory-nets acting side by side (even; divides "
                         "`batch_size`; slot b acts with member b % P)",
        "es_sigma": "perturbation scale of the searched weights",
        "es_lr": "Adam step size on the ES gradient estimate",
        "pg_sigma": "exploration noise of the memory writes, in pre-sigmoid units",
        "pg_lr": "Adam step size of the policy and its baseline",
        "pg_clip": "PPO-style clip of each memory unit's probability ratio",
        "repaired_sigma": "`repaired`: exploration noise of the memory writes, in pre-sigmoid "
                          "units",
        "repaired_actor_lr": "`repaired`: Adam step size of f (the actor)",
        "repaired_critic_lr": "`repaired`: Adam step size of the critic Q(s, m)",
        "repaired_tau": "`repaired`: Polyak step of the target critic per update",
        "repaired_gamma": "`repaired`: discount of the critic's bootstrap",
        "repaired_explore_units": "`repaired`: memory units that explore per slot and step "
                                  "(0: all)",
        "reward_grad_lr": "`reward_grad`: Adam step size of f along the gradient of A's loss "
                          "in the memory it wrote",
        "reward_grad_trace": "`reward_grad`: lambda in [0, 1]; 0 (one write, the previous "
                             "memory held constant) or > 0: each unit's trace also follows "
                             "its own recurrence, discounted by lambda (forward in time, "
                             "no BPTT)",
    },
    "The reference implementation's quirks (the defaults do as the reference does)": {
        "double_softmax": "A ends in a softmax and cross-entropy applies another",
        "detach_target": "false (the reference): the gradient also flows through gamma * f(s')",
        "carry_memory": "true (the reference): memory is not reset between the sequences of a "
                        "slot",
        "batching": "`refill` (the reference): a free slot takes the next sequence at once; "
                    "`static`: sequence k goes to slot k % B, leaving a long idle tail each "
                    "pass (measured worse: docs/results-logic.md, Fidelity)",
        "stagger": "delay each slot's first sequence by 0 to mean length - 1 idle steps, so "
                   "equal-length sequences never align across slots (aligned, batch norm in "
                   "training mode erases an input shared by every row)",
    },
    "Evaluation": {
        "bn_statistics": "A's batch norm at evaluation: `recalibrated` re-estimates the "
                         "statistics over one training pass first (precise BN); `running` uses "
                         "the running averages; `batch` each evaluation batch's own",
        "eval_every": "epochs between evaluations; the last epoch is always evaluated",
    },
    "Running": {
        "out_dir": "where run directories go",
        "run_name": "the run directory's name (default: task-data-agent-seed-time, data the "
                    "data file's name less its suffix: "
                    "`sentence-pg-mannrl-seed0-20261207-140000`)",
        "wandb_mode": "`offline` (default, no network), `disabled` or `online`; where neither "
                      "the config file nor the command line gives it, `WANDB_MODE` if set",
        "wandb_project": "the wandb project",
        "num_threads": "torch threads (NumPy's BLAS stays on one, A's step runs on one: "
                       "`mannrl_gym.threads`); one suits small batches and shared machines, "
                       "two the sentence task's larger networks on a machine of its own. "
                       "`mannrl train` applies it for the run; an env applies it to your "
                       "process only when you pass it, and always in an async worker",
        "device": "where a replicated run's (`seeds=`, `replicas=`) batched steps run: `cpu` "
                  "(NumPy, equal to single runs), `cuda`, `cuda:N` or `mps` (torch; the same "
                  "arithmetic, other rounding; docs/replicas.md), or `torch-cpu` (the device "
                  "path's torch code on torch's CPU device: to check it where there is no "
                  "GPU). Evaluation, checkpoints and single runs stay on the CPU",
        "max_minutes": "stop after the epoch that crosses this wall-clock budget, counted over the run's whole training time (a resume counts the minutes before it: `--resume RUN max_minutes=M` with M above them)",
        "progress": "progress bars (on a terminal)",
    },
}


def _type_name(key: str) -> str:
    hint = typing.get_type_hints(Config)[key]
    args = typing.get_args(hint)
    optional = type(None) in args
    union = typing.get_origin(hint) is typing.Union
    inner = [a for a in args if a is not type(None)] if union else [hint]
    names = []
    for option in inner:
        if typing.get_origin(option) is typing.Literal:
            names.append(" \\| ".join(f"`{v}`" for v in typing.get_args(option)))
        else:
            names.append(option.__name__)
    return " or ".join(names) + (" or null" if optional else "")


def _default(key: str) -> str:
    value = {f.name: f.default for f in fields(Config)}[key]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value}`"


def _skipped_memory_keys() -> str:
    """Each registered memory agent's memory-net keys that it declares it never reads
    (``agent_registry.unread_keys``), agents with the same ones together; ``all but ...``
    where it reads fewer than it skips."""
    everything = agent_registry.MEMORY_NET_KEYS
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in agent_registry.memory_agent_names():
        skipped = tuple(k for k in everything if k in agent_registry.unread_keys(name))
        if skipped:
            groups.setdefault(skipped, []).append(name)

    def keys(names) -> str:
        return ", ".join(f"`{key}`" for key in names)
    parts = []
    for skipped, names in groups.items():
        read = [key for key in everything if key not in skipped]
        said = f"all but {keys(read)}" if len(read) < len(skipped) else keys(skipped)
        parts.append(f"{keys(names)}: {said}")
    return "; ".join(parts)


def render() -> str:
    """The whole of ``docs/config.md``."""
    lines = ["# Config keys", "",
             "<!-- generated by `python -m mannrl_gym.config_docs > docs/config.md`; "
             "tests/test_readme.py checks it -->", "",
             "A config is a YAML mapping of these keys (`configs/logic.yaml` is the paper's "
             "Table 1, `pos.yaml` Table 2, `sentence.yaml` and `translate.yaml` Table 3). The "
             "same keys are `mannrl train` overrides (`key=value`) and keyword arguments of "
             "`gymnasium.make` / `make_vec`. Every key is checked before anything runs: an "
             "unknown key, a wrong type or an impossible value stops with the file and the key "
             "(another library's name for a key, such as `learning_rate`, names ours). A key "
             "that the task never reads (those whose meaning below starts with the tasks that "
             "read them, such as `num_sentences` on Logic), or that only other agents read "
             "(`agent_window`, `es_*`, `pg_*`, `repaired_*`, `reward_grad_*` below), must keep "
             "its default: another value would change nothing, so it stops with the tasks or "
             "agents that read it. The memory-net's keys (`memory_*`, `history`, `settle`, "
             "`gamma`, `detach_target`, `carry_memory`) given on the command line to an agent "
             "without one (`lstm`, `most_frequent_tag`, `perfect_memory`) stop the same way, "
             f"as do those a memory agent never reads ({_skipped_memory_keys()}); a config "
             "file's values stand (one file serves every agent of its task). A key given twice "
             "in a file is an error; on the command line the last value wins, as with argparse."]
    for section, docs in SECTIONS.items():
        lines += ["", f"## {section}", "", "| key | type | default | meaning |",
                  "|---|---|---|---|"]
        lines += [f"| `{key}` | {_type_name(key)} | {_default(key)} | {text} |"
                  for key, text in docs.items()]
    lines += ["", "## Agents (`agent`)", "",
              "Memory agents play the memory-net in the batched env; experiments are whole "
              "baselines with no memory-net. `mannrl_gym.agent_registry.register_agent` adds "
              "your own, and so does `agent=package.module:Class`; `mannrl list` prints these "
              "names.", "", "| name | kind | what it is |", "|---|---|---|"]
    lines += [f"| `{e.name}` | {e.kind.replace('_', ' ')} | {e.summary} |"
              for e in agent_registry.REGISTRY.values() if not agent_registry.is_spec(e.name)]
    lines += ["", "## Removed keys", "",
              "Configs and checkpoints of earlier versions may hold these. A value that meant "
              "what the code does now is dropped on load (old runs resume); any other value "
              "stops with the reason.", "", "| key | loads when | why it went |", "|---|---|---|"]
    lines += [f"| `{key}` | {', '.join(f'`{v}`' for v in removed.same_as_now) or 'never'} | "
              f"{removed.why} |" for key, removed in REMOVED_KEYS.items()]
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """Config keys without a meaning here, and documented names that are not keys."""
    documented = [key for docs in SECTIONS.values() for key in docs]
    return sorted(set(KEYS) ^ set(documented))


if __name__ == "__main__":
    print(render(), end="")
