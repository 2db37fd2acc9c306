"""Experiment configuration: one flat, typed, validated record.

A config is a YAML mapping whose keys are the fields of :class:`Config`. Every key is checked
before training starts: an unknown key, a value of the wrong type or an impossible value raises
:class:`ConfigError` naming the key and the file it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from mannrl_gym import agent_registry
from mannrl_gym.errors import ConfigError, not_a_file, read_utf8


MAX_SEED = 2**32 - 1  # numpy, torch and Gymnasium all take it (replicas add small offsets)
MAX_THREADS = 1024  # far beyond any machine; a million threads crash OpenMP
MAX_NAME_BYTES = 200  # a folder name (the file system's limit is 255; checkpoints add a suffix)


@dataclass
class Config:
    """All settings of one MANN-RL experiment (defaults: the paper's Table 1, Logic)."""

    # --- task and data -------------------------------------------------------------------
    task: Literal["logic", "jsonl", "pos", "sentence", "translate"] = "logic"
    data: Literal["files", "sample"] = "files"  # sample: the path keys become the package's sample (mannrl_gym/sample_data)
    data_path: Optional[str] = None  # jsonl / pos (CoNLL-U) / sentence, translate (source text, a sentence a line)
    target_path: Optional[str] = None  # translate: the target-language file, line-aligned with data_path
    num_sentences: int = 500  # sentence / translate: train on the N shortest pairs (validation: the next 5%)
    min_chars: Optional[int] = None  # sentence / translate: keep sources of >= this many characters (cleaned), then the N shortest
    max_chars: Optional[int] = None  # sentence / translate: keep sources of <= this many characters (cleaned), then the N shortest
    min_char_count: int = 8  # sentence / translate: characters seen fewer times become a space (reference: 8)
    reading_fill: Literal["digits", "empty"] = "digits"  # sentence / translate: target while reading (reference: digits)
    curriculum_every: Optional[int] = None  # sentence / translate: add the next chunk of pairs every N epochs (reference: 1000)
    curriculum_chunk: int = 500  # sentence / translate: training pairs per curriculum chunk, by length
    val_path: Optional[str] = None  # jsonl / pos: held-out data (jsonl: else split from data_path)
    tag_column: Literal["xpos", "upos"] = "xpos"  # pos: XPOS = the paper's Penn Treebank tags
    vectors_path: Optional[str] = None  # pos: GloVe/word2vec text (default: glove.840B.300d.txt in cache_dir)
    cache_dir: Optional[str] = None  # binary vector caches (default ~/.cache/mannrl-gym)
    num_sequences: int = 10_000  # logic: sequences drawn from the generator
    min_operands: int = 2
    max_operands: int = 20
    val_fraction: float = 0.05
    holdout: Literal["distinct", "random"] = "distinct"  # distinct: validation sequences never trained on
    holdout_distinct: Optional[int] = None  # logic, distinct: hold out this many distinct sequences, one copy each (null: 100, fewer for small num_sequences; 0: by val_fraction)
    seed: int = 0

    # --- action network (supervised) -----------------------------------------------------
    epochs: int = 512
    batch_size: int = 16
    eval_batch_size: int = 256
    hidden_size: int = 64
    hidden_layers: int = 1  # A's linear-BN-relu blocks (sentence tasks: 2)
    embed_size: Optional[int] = None  # learned input (and memory-net output) embedding width (sentence: 96)
    lr: float = 1e-4
    clipping: float = 0.01  # max gradient norm of the action network

    # --- memory-net (reinforcement learning) ---------------------------------------------
    agent: str = "mannrl"  # a name in mannrl_gym.agent_registry (docs/config.md lists them) or package.module:Class
    memory_size: int = 48
    history: int = 32
    settle: int = 8
    memory_train_iterations: int = 2
    memory_optimizer: Literal["rmsprop", "adam"] = "rmsprop"
    memory_lr: float = 1e-5
    memory_clipping: float = 0.001  # max gradient norm of the memory-net
    memory_samples: int = 8
    memory_lr_decay_every: Optional[int] = None  # epochs; multiply memory_lr by memory_lr_decay
    memory_lr_decay: float = 0.5
    memory_clamp: float = 10.0
    gamma: float = 0.99
    memory_sees_output: bool = True  # False: f's state holds zeros where A's output was (paper's open question)

    # --- memory-nets trained by the reward alone (agent=es, agent=pg; agents/es_agent.py, pg_agent.py)
    agent_window: int = 128  # env steps per update (an ES generation; a policy-gradient batch)
    es_population: int = 16  # perturbed memory-nets acting side by side (even; divides batch_size)
    es_sigma: float = 0.01  # perturbation scale of the searched weights
    es_lr: float = 0.002  # Adam step size on the ES gradient estimate
    pg_sigma: float = 0.2  # exploration noise of the memory writes, in pre-sigmoid units
    pg_lr: float = 1e-3  # Adam step size of the policy and its baseline
    pg_clip: float = 0.2  # PPO-style clip of each memory unit's probability ratio
    # agent=repaired (agents/repaired_agent.py): actor f along a TD critic's per-unit credit
    repaired_sigma: float = 0.3  # exploration noise of the memory writes, in pre-sigmoid units
    repaired_actor_lr: float = 1e-4  # Adam step size of f (the actor)
    repaired_critic_lr: float = 1e-3  # Adam step size of the critic Q(s, m)
    repaired_tau: float = 0.01  # Polyak step of the target networks per update
    repaired_gamma: float = 0.9  # discount of the critic's bootstrap
    repaired_explore_units: int = 0  # memory units that explore per slot and step (0: all)
    # agent=reward_grad (agents/reward_grad_agent.py): f along dA's loss/dmemory, one write
    reward_grad_lr: float = 1e-3  # Adam step size of f
    reward_grad_trace: float = 0.0  # lambda: 0 one write; > 0 also each unit's own recurrence

    # --- the reference implementation's quirks (True = as the reference does) -------------
    double_softmax: bool = True  # action net ends in softmax, then cross-entropy softmaxes again
    detach_target: bool = False  # reference: gradient flows through gamma * f(s_{t+1})
    carry_memory: bool = True  # reference: memory is not reset between sequences
    batching: Literal["refill", "static"] = "refill"  # reference: a free slot takes the next sequence at once
    stagger: bool = True  # delay each slot's first sequence by 0..mean length-1 idle steps (no aligned batches)

    # --- evaluation ----------------------------------------------------------------------------
    bn_statistics: Literal["recalibrated", "running", "batch"] = "recalibrated"  # A's BN at eval
    eval_every: int = 1  # epochs between evaluations (the last epoch is always evaluated)

    # --- running ---------------------------------------------------------------------------
    out_dir: str = "runs"
    run_name: Optional[str] = None
    wandb_mode: Literal["offline", "disabled", "online"] = "offline"
    wandb_project: str = "mannrl-gym"
    num_threads: int = 1  # torch threads, NumPy's BLAS on one (mannrl_gym.threads)
    device: str = "cpu"  # replicated runs (seeds=...): where their batched steps run (cpu, torch-cpu, cuda)
    max_minutes: Optional[float] = None  # stop after the epoch that crosses this wall-clock budget
    progress: bool = True

    source: str = field(default="<defaults>", repr=False, compare=False)

    # ------------------------------------------------------------------------------------
    def validate(self) -> "Config":
        """Raise :class:`ConfigError` for the first impossible value; return self."""
        positive_ints = ["num_sequences", "epochs", "batch_size", "eval_batch_size", "hidden_size",
                         "memory_size", "history", "memory_train_iterations", "memory_samples",
                         "num_threads", "min_operands", "num_sentences", "min_char_count",
                         "hidden_layers", "eval_every", "curriculum_chunk"]
        for name in positive_ints:
            if getattr(self, name) < 1:
                self._fail(name, f"must be >= 1, got {getattr(self, name)}")
        for name in ["lr", "memory_lr", "clipping", "memory_clipping", "memory_clamp", "es_sigma",
                     "es_lr", "pg_sigma", "pg_lr", "pg_clip", "repaired_sigma", "repaired_actor_lr",
                     "repaired_critic_lr", "reward_grad_lr"]:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                self._fail(name, f"must be a finite number > 0, got {value}")
        for name in ["repaired_tau", "repaired_gamma"]:
            value = getattr(self, name)
            if not 0.0 < value <= 1.0 or (name == "repaired_gamma" and value == 1.0):
                self._fail(name, f"must lie in (0, 1{']' if name == 'repaired_tau' else ')'}, "
                           f"got {value}")
        if not 0.0 <= self.reward_grad_trace <= 1.0:
            self._fail("reward_grad_trace", f"must lie in [0, 1], got {self.reward_grad_trace}")
        if not 0 <= self.repaired_explore_units <= self.memory_size:
            self._fail("repaired_explore_units", f"must lie in [0, memory_size="
                       f"{self.memory_size}], got {self.repaired_explore_units}")
        if not re.fullmatch(r"cpu|torch-cpu|cuda(:[0-9]+)?|mps", self.device):
            self._fail("device", f"must be cpu, torch-cpu, cuda, cuda:N or mps, got "
                       f"'{self.device}'")
        if self.holdout_distinct is not None and self.holdout_distinct < 0:
            self._fail("holdout_distinct", f"must be >= 0 or null, got {self.holdout_distinct}")
        if self.holdout_distinct and (self.task != "logic" or self.holdout != "distinct"):
            self._fail("holdout_distinct", f"is {self.holdout_distinct}, but it applies only to "
                       f"task logic with holdout: distinct (here task {self.task}, holdout "
                       f"{self.holdout}); set it to 0 or change those keys")
        try:
            agent_registry.resolve(self.agent)
        except KeyError:
            names = agent_registry.agent_names()
            hint = did_you_mean(self.agent, names) or (
                " (a name that a script registers with register_agent exists only while that "
                "script runs: resume or plot its runs from it, through mannrl_gym.cli.main, or "
                "name the agent as package.module:Class)")
            self._fail("agent", f"must be one of {names} or package.module:Class, got "
                       f"{self.agent!r}{hint}")
        except ConfigError as exc:
            self._fail("agent", str(exc))
        self._validate_agent_keys()
        if self.settle < 0:
            self._fail("settle", f"must be >= 0, got {self.settle}")
        if self.history < 2:
            self._fail("history", f"must be >= 2 (pairs of consecutive states), got {self.history}")
        if self.memory_samples >= self.history:
            self._fail("memory_samples", f"must be < history ({self.history}): only "
                       f"{self.history - 1} consecutive pairs exist, got {self.memory_samples}")
        if self.agent_window < 2:
            self._fail("agent_window", f"must be >= 2 env steps, got {self.agent_window}")
        if self.es_population < 2 or self.es_population % 2:
            self._fail("es_population", f"must be an even number >= 2 (antithetic pairs), "
                       f"got {self.es_population}")
        if self.agent == "es" and self.batch_size % self.es_population:
            self._fail("es_population", f"must divide batch_size ({self.batch_size}): each "
                       f"member acts on batch_size / es_population slots, got {self.es_population}")
        if self.memory_lr_decay_every is not None and self.memory_lr_decay_every < 1:
            self._fail("memory_lr_decay_every", f"must be >= 1 epoch, got {self.memory_lr_decay_every}")
        if not 0.0 < self.memory_lr_decay <= 1.0:
            self._fail("memory_lr_decay", f"must lie in (0, 1], got {self.memory_lr_decay}")
        if not 0.0 <= self.gamma <= 1.0:
            self._fail("gamma", f"must lie in [0, 1], got {self.gamma}")
        if not 0.0 < self.val_fraction < 1.0:
            self._fail("val_fraction", f"must lie in (0, 1), got {self.val_fraction}")
        if self.max_operands < self.min_operands:
            self._fail("max_operands", f"must be >= min_operands ({self.min_operands})")
        if self.min_operands < 2:
            self._fail("min_operands", f"must be >= 2, got {self.min_operands}")
        if self.batch_size < 2:
            self._fail("batch_size", "must be >= 2: the networks use batch norm")
        if self.embed_size is not None and self.embed_size < 1:
            self._fail("embed_size", f"must be >= 1 or null, got {self.embed_size}")
        if self.task in ("jsonl", "pos", "sentence", "translate") and not self.data_path:
            self._fail("data_path", f"is required when task is '{self.task}'")
        if self.task == "pos" and not self.val_path:
            self._fail("val_path", "is required when task is 'pos'")
        if self.task == "translate" and not self.target_path:
            self._fail("target_path", "is required when task is 'translate' (the target-language "
                       "file, line-aligned with data_path)")
        self._validate_task_keys()
        self._validate_curriculum()
        if self.run_name is not None and (re.search(r"[/\\]", self.run_name)
                                          or self.run_name in ("", ".", "..")):
            self._fail("run_name", f"must be a plain folder name inside out_dir (no '/', '\\', "
                       f"'.' or '..'), got {self.run_name!r}")
        if self.run_name is not None and len(self.run_name.encode()) > MAX_NAME_BYTES:
            self._fail("run_name", f"must be at most {MAX_NAME_BYTES} bytes (a folder name), got "
                       f"{len(self.run_name.encode())}")
        self._validate_length_band()
        if self.max_minutes is not None and not self.max_minutes > 0:  # NaN too
            self._fail("max_minutes", f"must be > 0, got {self.max_minutes}")
        if not 0 <= self.seed <= MAX_SEED:  # Gymnasium refuses < 0, torch > 64 bits
            self._fail("seed", f"must lie in [0, {MAX_SEED}], got {self.seed}")
        if not 1 <= self.num_threads <= MAX_THREADS:  # OpenMP crashes far beyond the cores
            self._fail("num_threads", f"must lie in [1, {MAX_THREADS}], got {self.num_threads}")
        return self

    def _validate_task_keys(self) -> None:
        """A key that this task never reads (``TASK_KEYS``) may not be given a value other
        than its default: it would change nothing, silently."""
        for key, tasks in TASK_KEYS.items():
            value = getattr(self, key)
            if self.task in tasks or value == getattr(Config, key):
                continue
            counterpart = TASK_KEY_COUNTERPARTS.get(key)
            hint = (f"; task '{self.task}' reads '{counterpart}'"
                    if counterpart and self.task in TASK_KEYS[counterpart] else "")
            self._fail(key, f"is only read when task is {alternatives(tasks)}, not "
                       f"'{self.task}' (it is {value!r} here: remove it, or set task{hint})")

    def _validate_agent_keys(self) -> None:
        """A key only other agents read (``agent_registry.specific_keys``) may not be given
        a value other than its default; an agent that declares nothing (``reads`` None, e.g.
        ``package.module:Class``) may be given any."""
        agent = agent_registry.REGISTRY.get(self.agent)
        if agent is None or agent.reads is None:
            return
        for key, readers in agent_registry.specific_keys().items():
            value = getattr(self, key)
            if key in agent.reads or value == getattr(Config, key):
                continue
            self._fail(key, f"is only read when agent is {alternatives(readers)}, not "
                       f"'{self.agent}' (it is {value!r} here: remove it, or set agent)")

    def _validate_curriculum(self) -> None:
        if self.curriculum_every is None:
            return
        if self.curriculum_every < 1:
            self._fail("curriculum_every", f"must be >= 1 epoch or null, got {self.curriculum_every}")

    def _validate_length_band(self) -> None:
        for key in ("min_chars", "max_chars"):
            value = getattr(self, key)
            if value is None:
                continue
            if value < 1:
                self._fail(key, f"must be >= 1 character or null, got {value}")
        if self.min_chars is not None and self.max_chars is not None \
                and self.max_chars < self.min_chars:
            self._fail("max_chars", f"must be >= min_chars ({self.min_chars}), "
                       f"got {self.max_chars}")

    def _fail(self, key: str, message: str) -> typing.NoReturn:
        raise ConfigError(f"{self.source}: key '{key}' {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON, wandb and checkpoints), without the source path."""
        data = dataclasses.asdict(self)
        data.pop("source")
        return data


# keys that only some tasks read (a value other than the default on any other task is a
# ConfigError: it would change nothing); holdout_distinct has its own check (it needs holdout
# distinct too, and runs saved before it existed hold 0 whatever their task)
_SENTENCE_TASKS = ("sentence", "translate")
TASK_KEYS: dict[str, tuple[str, ...]] = {
    "data_path": ("jsonl", "pos") + _SENTENCE_TASKS,
    "target_path": ("translate",),
    "val_path": ("jsonl", "pos"),
    "num_sentences": _SENTENCE_TASKS, "min_chars": _SENTENCE_TASKS,
    "max_chars": _SENTENCE_TASKS, "min_char_count": _SENTENCE_TASKS,
    "reading_fill": _SENTENCE_TASKS, "curriculum_every": _SENTENCE_TASKS,
    "curriculum_chunk": _SENTENCE_TASKS,
    "tag_column": ("pos",), "vectors_path": ("pos",),
    "num_sequences": ("logic",), "min_operands": ("logic",), "max_operands": ("logic",),
    "holdout": ("logic", "jsonl"),
    "val_fraction": ("logic", "jsonl") + _SENTENCE_TASKS,
}
TASK_KEY_COUNTERPARTS = {"num_sequences": "num_sentences", "num_sentences": "num_sequences"}

_HINTS = typing.get_type_hints(Config)
KEYS = [f.name for f in fields(Config) if f.name != "source"]


PATH_KEYS = ("data_path", "val_path", "target_path", "vectors_path")  # the files a run reads


HOME_KEYS = PATH_KEYS + ("cache_dir", "out_dir")  # where ``~`` is the home folder, as in a shell


def expand_home(value: str) -> str:
    """``~`` and ``~user`` at the start of each ``os.pathsep``-joined part made the home
    folder, as a shell does (a config file or a quoted value gets no shell to do it)."""
    return os.pathsep.join(os.path.expanduser(part) for part in value.split(os.pathsep))


def path_parts(value: str | None) -> list[str]:
    """The files a path key's value names: one path, or several joined with ``os.pathsep``
    (``:`` on POSIX, as in ``PATH``; the sentence tasks read several files so)."""
    return [part for part in str(value or "").split(os.pathsep) if part]


def missing_files(value: str | None, joined: bool = True) -> list[Path]:
    """The files a path key's value names that are not there, in order; ``joined``: the
    value may join several (``path_parts``), else it is one path."""
    parts = path_parts(value) if joined else [str(value)]
    return [Path(part) for part in parts if not Path(part).is_file()]


def absolute_path(value: str | None, only_existing: bool = False) -> str | None:
    """A path key's value made absolute against the current directory (each part of an
    ``os.pathsep``-joined list: the sentence tasks read several files joined so); with
    ``only_existing``, a part that names nothing stays as given."""
    if not value:
        return value
    return os.pathsep.join(os.path.abspath(part)
                           if part and (not only_existing or os.path.exists(part)) else part
                           for part in str(value).split(os.pathsep))


def with_absolute_paths(config: Config) -> Config:
    """``config`` with its path keys absolute (``absolute_path``): a run directory saves the
    files it read wherever it is resumed, predicted or plotted from. A path that names nothing
    stays as given, for the error that says where it was looked for."""
    changed = {key: absolute_path(getattr(config, key), only_existing=True) for key in PATH_KEYS}
    if all(changed[key] == getattr(config, key) for key in PATH_KEYS):
        return config
    return dataclasses.replace(config, **changed)


def same_value(key: str, saved: Any, now: Any) -> bool:
    """Whether a saved config's ``key`` asks what ``now`` asks: path keys as the files they
    name from here (a run saved before its paths were stored absolute, or given again by
    another spelling of the same file), any other key as an equal value."""
    if key in PATH_KEYS and isinstance(saved, str) and isinstance(now, str):
        return absolute_path(saved) == absolute_path(now)
    return saved == now


@dataclass(frozen=True)
class RemovedKey:
    """A key of an earlier version: why it went, and the values that meant what the code does
    now (a config or checkpoint holding one of those loads, the key dropped; any other value
    raises ConfigError with ``why``)."""

    why: str
    same_as_now: tuple[Any, ...] = ()


REMOVED_KEYS = {  # keys of earlier versions
    "echo_copies": RemovedKey("the sentence tasks now add one character sequence per vocabulary "
                              "character, as the paper's code does, instead of whole-sentence "
                              "echo copies"),
    "echo_marker": RemovedKey("there are no echo copies left to mark (see docs/results-sentence.md)"),
    "optimizer": RemovedKey("A is always trained by Adam; the key allowed 'adam' alone and "
                            "nothing read it", same_as_now=("adam",)),
}


CHANGED_DEFAULTS = {  # key -> the default before it changed (issue 23)
    "holdout_distinct": 0,  # a run saved without the key split by val_fraction
}


def as_saved(data: dict[str, Any]) -> dict[str, Any]:
    """A run's saved config (config.yaml, a checkpoint's) with the keys it lacks because it
    predates them set to what it ran with (``CHANGED_DEFAULTS``), so a resume reads the
    same data, and the keys its task or agent never read (``TASK_KEYS``,
    ``agent_registry.specific_keys``: a run saved before they were refused may hold any value
    there) at their defaults."""
    saved = {**CHANGED_DEFAULTS, **data}
    task = saved.get("task", Config.task)
    agent = agent_registry.REGISTRY.get(saved.get("agent", Config.agent))
    unread = {key for key in agent_registry.specific_keys()
              if agent is not None and agent.reads is not None and key not in agent.reads}
    unread |= {key for key, tasks in TASK_KEYS.items() if task not in tasks}
    return {key: getattr(Config, key) if key in unread else value for key, value in saved.items()}


def without_removed_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` less the removed keys whose value is what the code does now; ConfigError
    naming ``source`` and the key for a removed key with any other value."""
    kept = {}
    for key, value in data.items():
        removed = REMOVED_KEYS.get(key)
        if removed is None:
            kept[key] = value
        elif value not in removed.same_as_now:
            raise ConfigError(f"{source}: key '{key}' was removed: {removed.why}")
    return kept


# what other libraries (Stable-Baselines3, PyTorch, CleanRL) call some keys: named as ours
KEY_ALIASES = {"learning_rate": "lr", "n_epochs": "epochs", "num_epochs": "epochs",
               "max_grad_norm": "clipping", "grad_clip": "clipping", "clip_grad_norm": "clipping",
               "n_envs": "batch_size", "num_envs": "batch_size", "hidden_dim": "hidden_size",
               "memory_dim": "memory_size", "n_layers": "hidden_layers", "discount": "gamma"}


def unknown_key_hint(key: str) -> str:
    """`` (did you mean 'lr'?)`` for an unknown config key: another library's name for one of
    ours (``KEY_ALIASES``), else the closest key; '' when none is close."""
    if key in KEY_ALIASES:
        return f" (did you mean '{KEY_ALIASES[key]}'?)"
    return did_you_mean(key, KEYS)


def alternatives(names: typing.Sequence[str]) -> str:
    """``'a', 'b' or 'c'``."""
    quoted = [f"'{name}'" for name in names]
    return " or ".join(filter(None, [", ".join(quoted[:-1]), quoted[-1]]))


def did_you_mean(value: Any, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``value``, else ''."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_type(key: str, value: Any, source: str) -> Any:
    """Return ``value`` coerced to the declared type of ``key`` or raise ConfigError."""
    hint = _HINTS[key]
    origin = typing.get_origin(hint)
    allowed: tuple = typing.get_args(hint) if origin is typing.Union else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ConfigError(f"{source}: key '{key}' may not be null")
    for option in allowed:
        if option is type(None):
            continue
        if typing.get_origin(option) is Literal:
            if value in typing.get_args(option):
                return value
            raise ConfigError(f"{source}: key '{key}' must be one of "
                              f"{list(typing.get_args(option))}, got {value!r}"
                              f"{did_you_mean(value, typing.get_args(option))}")
        if option is bool:
            if isinstance(value, bool):
                return value
        elif option is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif option is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
                try:
                    return float(value)
                except ValueError:
                    pass
        elif option is str:
            if isinstance(value, str):
                return value
    names = "/".join(getattr(a, "__name__", str(a)) for a in allowed if a is not type(None))
    raise ConfigError(f"{source}: key '{key}' must be {names}, got {type(value).__name__} {value!r}")


WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}  # wandb's older names


def wandb_mode_from_env() -> str | None:
    """``WANDB_MODE`` from the environment as a ``wandb_mode`` (wandb's ``dryrun`` and
    ``run`` too), or None when unset or empty; a ConfigError for any other value."""
    value = os.environ.get("WANDB_MODE", "").strip()
    if not value:
        return None
    mode = WANDB_MODE_ALIASES.get(value, value)
    allowed = typing.get_args(_HINTS["wandb_mode"])
    if mode not in allowed:
        raise ConfigError(f"environment: WANDB_MODE is {value!r}; mannrl-gym's runs take "
                          f"{', '.join(allowed)} (or wandb's dryrun, run): set one, unset it, "
                          f"or give wandb_mode=... on the command line")
    return mode


def from_mapping(data: dict[str, Any], source: str = "<mapping>", validate: bool = True) -> Config:
    """Build and validate a Config from a plain mapping (each key's type always; the values
    together only with ``validate``: a layer that others complete). ``wandb_mode``, where the
    mapping does not give it, is ``WANDB_MODE`` from the environment if set, else offline."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values, "
                          f"got {type(data).__name__}")
    checked: dict[str, Any] = {}
    for key, value in without_removed_keys(data, source).items():
        if key not in KEYS:
            raise ConfigError(f"{source}: unknown key '{key}'{unknown_key_hint(key)}")
        if isinstance(value, os.PathLike) and _takes_text(key):  # a pathlib.Path, say
            value = os.fspath(value)
        checked[key] = _check_type(key, value, source)
        if key in HOME_KEYS and isinstance(checked[key], str):
            checked[key] = expand_home(checked[key])
    if "wandb_mode" not in checked and (mode := wandb_mode_from_env()):
        checked["wandb_mode"] = mode
    if checked.get("data") == "sample":  # the package's sample replaces the path keys
        from mannrl_gym.samples import sample_paths
        checked.update(sample_paths(checked.get("task", "logic")))
    config = Config(**checked, source=source)
    return config.validate() if validate else config


def refuse_paths_beside_sample(layer: dict[str, Any], source: str) -> None:
    """ConfigError when one layer a user wrote (a config file, the command line's overrides,
    an env's kwargs) gives ``data='sample'`` and a path key: the sample would replace the
    path unsaid. (A saved run's config, whose paths are the sample's, is not such a layer.)"""
    if layer.get("data") == "sample":
        given = [key for key in PATH_KEYS if layer.get(key)]
        if given:
            raise ConfigError(f"{source}: data='sample' reads the sample shipped with "
                              f"mannrl-gym, not {given[0]}={layer[given[0]]!r}; give one of "
                              f"them (data=files, the default, reads {given[0]})")


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """Parse ``key=value``, ``--key=value`` and ``--key value`` into a mapping.

    Values are read as YAML scalars, so ``lr=3e-4`` is a float and ``carry_memory=false`` a bool;
    a key of free text (a name, a path) keeps what was typed (``run_name=2026`` is the name
    '2026'; ``data_path=null`` clears the key; ``_text_value``).
    A key given twice takes its last value (a script can append to a base list of
    overrides), where a config file refuses it, as the commands' own options do
    (``--resume``, ``--out``: ``cli._StoreOnce``).
    """
    result: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            arg = arg[2:]
            if "=" not in arg:
                if i + 1 >= len(args):
                    raise ConfigError(f"command line: override '--{arg}' has no value")
                arg = f"{arg}={args[i + 1]}"
                i += 1
        if "=" not in arg:
            first = (" (a config file goes first: mannrl train CONFIG key=value ...)"
                     if arg.endswith((".yaml", ".yml")) else "")
            raise ConfigError(f"command line: expected key=value, got '{arg}'{first}")
        key, raw = arg.split("=", 1)
        key = key.replace("-", "_")
        result[key] = _text_value(key, raw) if _takes_text(key) else _yaml_value(raw)
        i += 1
    return result


def _yaml_value(raw: str) -> Any:
    """A command-line value read as YAML (the text itself where YAML cannot read it)."""
    try:
        return yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        return raw


def _text_value(key: str, raw: str) -> str | None:
    """A free-text key's command-line value as typed (``run_name=2026``, ``run_name=#3``,
    ``data_path=notes:``), but null for ``null``, ``~`` or nothing and a quoted string
    unquoted; a list or mapping is refused (several files are joined with ``:``)."""
    text = raw.strip()
    if text in ("", "null", "Null", "NULL", "~"):
        return None
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        value = _yaml_value(text)
        return value if isinstance(value, str) else raw
    if text[0] in "[{" and isinstance(_yaml_value(text), (list, dict)):
        raise ConfigError(f"command line: key '{key}' takes one text, got {raw!r}"
                          + (f"; several files are joined with '{os.pathsep}': "
                             f"{key}=a.txt{os.pathsep}b.txt" if key in PATH_KEYS else ""))
    return raw


def _takes_text(key: str) -> bool:
    """Whether config key ``key`` holds free text (a name or a path: ``str`` or ``str |
    None``), which a command line gives as it is typed, not read as YAML."""
    hint = _HINTS.get(key)
    return hint is str or (typing.get_origin(hint) is typing.Union
                            and str in typing.get_args(hint))


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping key given twice (plain YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)) and key in lines:
                    raise ConfigError(f"key '{key}' is given twice (lines {lines[key]} and "
                                      f"{line}); keep one")
                lines[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """The data of a UTF-8 YAML file. DataError / ConfigError in one line naming the file and
    line: bytes that are not UTF-8, invalid YAML, a mapping key given twice."""
    try:
        return yaml.load(read_utf8(path), Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)  # one line: where and what, not the excerpt
        where = f":{mark.line + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{path}{where}: not valid YAML: {what}") from None
    except ConfigError as exc:  # a key given twice
        raise ConfigError(f"{path}: {exc}") from None


def load(path: str | Path,
         overrides: dict[str, Any] | typing.Sequence[str] | None = None) -> Config:
    """Read a YAML config file, apply ``overrides`` (a mapping, or the command line's
    ``key=value`` strings) and validate everything. A file without keys is refused: it
    would train every default (Table 1's Logic) for what was meant as another run."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {not_a_file(path, 'config file')}")
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides([str(item) for item in overrides])
    elif overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"{path}: overrides must be a mapping of keys to values or a list "
                          f"of 'key=value' strings, got {type(overrides).__name__}")
    data = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: holds no keys (empty, or comments only), so the run would "
                          f"be every default: write its keys, e.g. task: logic, or start from "
                          f"a shipped config (configs/logic.yaml is Table 1)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    refuse_paths_beside_sample(data, str(path))
    try:
        config = from_mapping(data, source=str(path))
    except ConfigError:
        if not overrides:
            raise
        # the overrides may complete the file (its data_path given on the command line):
        # the values are checked together below
        config = from_mapping(data, source=str(path), validate=False)
    if overrides:
        merged = {**config.to_dict(), **overrides}
        if merged.get("data") == "sample":  # the sample stands in for the file's paths
            refuse_paths_beside_sample({**overrides, "data": "sample"},
                                       f"{path} (with overrides)")
            merged.update({key: None for key in PATH_KEYS if key not in overrides})
        unknown = [k for k in overrides if k not in KEYS]
        source = f"{path} (with overrides)"
        if unknown:
            from_mapping({unknown[0]: overrides[unknown[0]]}, source=source)
        # before the values' own checks: `agent=lstm history=4` is a key lstm never reads,
        # not a memory_samples too large for that history
        _refuse_memory_net_keys(merged, config, overrides, source)
        config = from_mapping(merged, source=source)
    return config


def yaml_text(value: Any) -> str:
    """A value as a config file writes it: ``null``, ``true`` / ``false``, else its text."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def _refuse_memory_net_keys(merged: dict[str, Any], file_config: Config,
                            overrides: dict[str, Any], source: str) -> None:
    """ConfigError for an override of a memory-net key (``agent_registry.MEMORY_NET_KEYS``)
    that ``merged``'s agent declares it never reads (``agent_registry.unread_keys``: an
    experiment without a memory-net, such as the LSTM; a memory agent that does not take the
    paper's step of f): the run would be the one without it. A config file's own values
    stand (one file serves every agent of a task)."""
    agent = merged.get("agent")
    if not isinstance(agent, str) or agent not in agent_registry.agent_names():
        return  # a spec is imported, an unknown name refused, by the checks that follow
    unread = agent_registry.unread_keys(agent) & set(agent_registry.MEMORY_NET_KEYS)
    for key in overrides:
        if key in unread and not same_value(key, merged[key], getattr(file_config, key)):
            entry = agent_registry.entry(agent)
            raise ConfigError(f"{source}: key '{key}' is a memory-net key that agent "
                              f"'{agent}' never reads ({entry.summary}): {key}="
                              f"{merged[key]!r} would change nothing; drop it")
