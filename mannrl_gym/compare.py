"""``mannrl compare``: train agents x seeds on one task and tabulate them against a control.

Each (agent, seed) is an ordinary run directory under ``out``: ``<agent>-s<seed>`` for a run
of its own, ``<agent>-s<a>-<b>/seed<seed>`` for a replica (agents that can be replicated,
``mannrl_gym/replicas``, train their missing seeds together in one process; the others run
one after another, in this process, so an agent registered with
``agent_registry.register_agent`` works too). A finished run with the same config is read,
not trained again; a run killed part-way is resumed. The table gives, per agent, the mean ±
sample standard deviation over seeds of each metric (a run's figure: its mean over its last 5
evaluations), then the paired differences against the control agent: mean ± sd of the
per-seed differences and on how many seeds the agent is ahead / behind. ``out`` receives
``compare.md``, ``compare.json``, ``compare.png`` (the figure metric per seed per agent) and
``compare-curves.png`` (its mean and spread over seeds at every evaluated epoch).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml
from tqdm import tqdm

from mannrl_gym import agent_registry, checkpoint, compare_figures, provenance
from mannrl_gym.config import (PATH_KEYS, Config, ConfigError, did_you_mean, load, path_parts,
                               same_value, wandb_mode_from_env)
from mannrl_gym.errors import DataError
from mannrl_gym.samples import check_files
from mannrl_gym.seed_table import (LAST_EVALUATIONS, complete, evaluated, evaluated_rows,
                                   final_metrics, finished, markdown_table, paired_stats,
                                   seed_stats, started)

# per task: the table's metrics (metrics.jsonl keys, column title); the figure plots
# FIGURE_KEYS[task] (default FIGURE_KEY)
TASK_METRICS: dict[str, list[tuple[str, str]]] = {
    "logic": [("train/answer_acc", "train answer acc"),
              ("validation/answer_acc", "held-out answer acc"),
              ("validation/long_range_acc", "held-out long-range acc"),
              ("validation/f1", "held-out F1")],
    "pos": [("train/f1", "train F1"), ("train/answer_acc", "train acc, ambiguous words"),
            ("validation/f1", "held-out F1"),
            ("validation/answer_acc", "held-out acc, ambiguous words")],
    "sentence": [("train/f1", "train F1"),
                 ("train/answer_acc_sentence", "train writing acc"),
                 ("train/answer_exact_sentence", "train exact"),
                 ("train/answer_exact_character", "train chars exact"),
                 ("validation/f1", "held-out F1")],
}
TASK_METRICS["translate"] = TASK_METRICS["sentence"]
TASK_METRICS["jsonl"] = [("train/f1", "train F1"), ("train/answer_acc", "train answer acc"),
                         ("validation/f1", "held-out F1"),
                         ("validation/answer_acc", "held-out answer acc")]
FIGURE_KEY = "validation/answer_acc"
# memorization is scored on the training sentences (the paper's Table 3: train F1)
FIGURE_KEYS: dict[str, str] = {"sentence": "train/f1", "translate": "train/f1"}
# task -> keys compare sets unless the command line gives them
TASK_DEFAULTS: dict[str, dict[str, Any]] = {"logic": {"holdout_distinct": 100}}
# agent -> keys compare sets unless the command line gives them: the LSTM peer's own recipe,
# as every table of this project trains it (benchmarks/learning.py's "lstm" variant)
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {"lstm": {"lr": 1e-3, "clipping": 1.0}}
# keys that name where a run goes, how it reports or how long one sitting may train
# (max_minutes: a table built over sittings raises it), not what it computes
PLACE_KEYS = ("out_dir", "run_name", "progress", "wandb_mode", "wandb_project", "max_minutes")
DEFAULT_EPOCHS = 30


@dataclass
class Request:
    """What to compare: ``agents`` (labels) x ``seeds`` on the config file ``config_path``
    with ``overrides``, ``epochs`` each, tabulated against ``control`` (one of ``agents``).
    ``agent_of`` maps a label to its registered agent (default: the label itself);
    ``label_overrides`` holds one label's own keys (e.g. the LSTM's learning rate)."""

    config_path: Path
    agents: list[str]
    seeds: list[int]
    out: Path
    epochs: int = DEFAULT_EPOCHS
    control: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    agent_of: dict[str, str] = field(default_factory=dict)
    label_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "compare"  # the tables' and figure's file stem under ``out``


def task_config(task: str) -> Path:
    """The packaged config file of ``task`` (``configs/<task>.yaml``)."""
    path = Path(str(resources.files("mannrl_gym.configs").joinpath(f"{task}.yaml")))
    if not path.is_file():
        known = sorted(p.stem for p in Path(path.parent).glob("*.yaml"))
        raise ConfigError(f"command line: --task {task!r} has no config{did_you_mean(task, known)}; "
                          f"choose from {', '.join(known)} (or give --config FILE)")
    return path


def parse_agents(text: str) -> dict[str, str]:
    """``"mannrl,es,slow=mannrl"`` -> {label: registered agent} (``label=agent`` runs an agent
    under another label, e.g. with its own keys; a ``package.module:Class`` spec is imported
    and labelled ``Class``); ConfigError naming the registered agents."""
    entries = [n.strip() for n in text.split(",") if n.strip()]
    if not entries:
        raise ConfigError(f"command line: --agents names no agent (got {text!r}); e.g. "
                          f"--agents mannrl,frozen_weights")
    # a ``package.module:Class`` spec is labelled by its class, as `mannrl train` names its runs
    pairs = [tuple(p.strip() for p in e.split("=", 1)) if "=" in e
             else (e.rpartition(":")[2].rpartition(".")[2], e) for e in entries]
    for _, agent in pairs:
        if agent not in agent_registry.agent_names() and agent_registry.is_spec(agent):
            try:
                agent_registry.resolve(agent)  # imported and registered under the spec
            except ConfigError as exc:  # "is 'spec', but ...": the spec's own words
                raise ConfigError(f"command line: --agents names{str(exc).removeprefix('is')}"
                                  ) from None
    unknown = [agent for _, agent in pairs if agent not in agent_registry.agent_names()]
    if unknown:
        raise ConfigError(f"command line: --agents has unknown agent(s) {', '.join(unknown)}; "
                          f"registered: {', '.join(agent_registry.agent_names())}")
    labels = [label for label, _ in pairs]
    bad = [label for label in labels
           if not label or "/" in label or "." in label or any(c.isspace() for c in label)]
    if bad:
        raise ConfigError(f"command line: --agents label(s) {bad} must be non-empty, without "
                          f"'/', '.' or spaces (each names run folders)")
    repeated = sorted({n for n in labels if labels.count(n) > 1})
    if repeated:
        raise ConfigError(f"command line: --agents repeats {', '.join(repeated)}")
    return dict(pairs)


def split_overrides(overrides: dict[str, Any], labels: list[str]
                    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``{"lr": 1e-4, "lstm.lr": 1e-3}`` -> keys for every agent, and each label's own."""
    common: dict[str, Any] = {}
    own: dict[str, dict[str, Any]] = {}
    read_as = {name.replace("-", "_"): name for name in labels}  # key=value reads - as _
    for key, value in overrides.items():
        label, dot, name = key.partition(".")
        if not dot:
            common[key] = value
        elif label in read_as:
            own.setdefault(read_as[label], {})[name] = value
        else:
            raise ConfigError(f"command line: override {key!r} names {label!r}, which is not "
                              f"among --agents ({', '.join(labels)})")
    return common, own


def configs_for(request: Request) -> dict[str, Config]:
    """Each agent's config (seed set per run), all validated before anything trains."""
    return _configs_and_defaults(request)[0]


def _configs_and_defaults(request: Request) -> tuple[dict[str, Config], dict[str, Any]]:
    """``configs_for``'s configs, and the table defaults compare added to them (every
    label's: ``_defaults``)."""
    if request.control is not None and request.control not in request.agents:
        raise ConfigError(f"command line: --control {request.control!r} is not among --agents "
                          f"({', '.join(request.agents)})")
    given = [request.overrides, *request.label_overrides.values()]
    if any(k in keys for keys in given for k in ("seed", "seeds", "agent", "epochs")):
        raise ConfigError("command line: give agents with --agents, seeds with --seeds and "
                          "epochs with --epochs, not as key=value")
    _refuse_keys_no_agent_reads(request)
    configs, every_default = {}, {}
    for label in request.agents:
        asked, defaults = _asked_and_defaults(request, label)
        every_default.update(defaults)
        # wandb off unless asked for (wandb_mode=offline, or WANDB_MODE): a table's runs are
        # many and short
        keys = {**defaults, "wandb_mode": wandb_mode_from_env() or "disabled",
                **asked, "epochs": request.epochs, "out_dir": str(request.out),
                "progress": False, "seed": request.seeds[0]}
        with _naming_defaults(defaults):
            configs[label] = load(request.config_path, keys)
    return configs, every_default


def _asked_and_defaults(request: Request, label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys the command line gives ``label`` (with its agent), and the table defaults
    (``_defaults``) that compare adds where they leave a key at Config's default."""
    agent = request.agent_of.get(label, label)
    asked = {**_read_by(agent, request.overrides), **request.label_overrides.get(label, {}),
             "agent": agent}
    return asked, _defaults(load(request.config_path, asked))


@contextlib.contextmanager
def _naming_defaults(defaults: dict[str, Any]) -> Iterator[None]:
    """A ConfigError about a key that compare set by default (``defaults``) says so, and how
    to give another value: the user never typed it."""
    try:
        yield
    except ConfigError as refused:
        key = next((key for key in defaults if f"'{key}'" in str(refused)), None)
        if key is None:
            raise
        raise ConfigError(f"{refused} ({key}={defaults[key]} is compare's default for its "
                          f"tables; give {key}=... or {key}=null for the config's "
                          f"own)") from None


def _refuse_keys_no_agent_reads(request: Request) -> None:
    """ConfigError for a command-line key that every agent of ``request`` declares it never
    reads (``agent_registry.unread_keys``): it would change no run of the table."""
    agents = [request.agent_of.get(label, label) for label in request.agents]
    for key in request.overrides:
        if all(key in agent_registry.unread_keys(agent) for agent in agents):
            readers = agent_registry.specific_keys().get(key)
            who = (f"only {', '.join(readers)} read{'s' if len(readers) == 1 else ''} it"
                   if readers else "a memory-net key none of them reads")
            raise ConfigError(f"command line: key '{key}' is read by none of --agents "
                              f"({', '.join(request.agents)}): {who}; drop it, or add an "
                              f"agent that reads it")


def _read_by(agent: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The command line's keys for every agent, less the keys that ``agent`` declares it does
    not read (``agent_window=64`` goes to es and pg, not to the control; ``memory_lr`` not
    to the LSTM: ``agent_registry.unread_keys``); a label's own (``LABEL.key=value``) are
    checked as given."""
    unread = agent_registry.unread_keys(agent)
    return {key: value for key, value in overrides.items() if key not in unread}


def _defaults(base: Config) -> dict[str, Any]:
    """TASK_DEFAULTS and AGENT_DEFAULTS for ``base``, each where ``base`` (its config file and
    the command line) leaves that key at Config's own default."""
    plain = Config()
    wanted = {**TASK_DEFAULTS.get(base.task, {}), **AGENT_DEFAULTS.get(base.agent, {})}
    if base.holdout != "distinct":  # holdout_distinct applies to distinct held-out sequences
        wanted.pop("holdout_distinct", None)
    return {k: v for k, v in wanted.items() if getattr(base, k) == getattr(plain, k)}


def same_config(run_dir: Path, config: Config) -> bool:
    """Whether ``run_dir/config.yaml`` computes what ``config`` asks (place keys aside, and
    keys newer than the run, which its config file does not hold)."""
    return not _differences(run_dir, config)


def _differences(run_dir: Path, config: Config, files_here: bool = True) -> list[str]:
    """How ``run_dir``'s config differs from ``config``: each key, as 'key A there, B now'. A
    data file found at another path is the same file when it holds what the run read (its
    sha256 in ``summary.json``): a table's runs read back on another machine, or the data
    moved. Without the files here (``files_here`` False: ``--status`` on a machine without
    the data), the path keys are compared by their files' names."""
    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    changed = {k: v for k, v in config.to_dict().items()
               if k not in PLACE_KEYS and k in saved and not same_value(k, saved[k], v)}
    if any(key in PATH_KEYS for key in changed):
        read = _read_data_sha256(run_dir)
        changed = {k: v for k, v in changed.items()
                   if not (k in PATH_KEYS and (provenance.same_files(k, read, config)
                                               or not files_here
                                               and _file_names(saved[k]) == _file_names(v)))}
    return ([f"{k} {saved[k]!r} there, {v!r} now" for k, v in changed.items()]
            + _changed_at_resumes(run_dir))


def _file_names(value: str | None) -> list[str]:
    """The names (no folders) of the files a path key's value names."""
    return [Path(part).name for part in path_parts(value)]


def _changed_at_resumes(run_dir: Path) -> list[str]:
    """The keys a resume of ``run_dir`` changed that change what it computes (its
    ``resumes.jsonl``): its config.yaml holds the last value alone, so a table reading it back
    would take the run as trained with that value throughout."""
    path = run_dir / "resumes.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()
               if line.strip()] if path.is_file() else []
    return [f"{key} {change.get('from')!r} until epoch {entry['at_epoch']}, then "
            f"{change.get('to')!r} (a resume changed it)"
            for entry in entries for key, change in entry.get("changed", {}).items()
            if key not in PLACE_KEYS + ("epochs", "num_threads")]


def _read_data_sha256(run_dir: Path) -> dict[str, list[str]] | None:
    """The sha256 of the files ``run_dir`` read: its summary's, else (a run not finished)
    its checkpoint's; None for a run from before they were kept."""
    if (run_dir / "summary.json").is_file():
        return _summary(run_dir).get("data_sha256")
    if (run_dir / "checkpoint.pt").is_file():
        return checkpoint.load(run_dir / "checkpoint.pt").get("data_sha256")
    return None


def _summary(run_dir: Path) -> dict[str, Any]:
    """``run_dir/summary.json`` as data ({} before the run has finished)."""
    path = run_dir / "summary.json"
    return json.loads(path.read_text() or "{}") if path.is_file() else {}


def _seeded(config: Config, seed: int) -> Config:
    return Config(**{**config.to_dict(), "seed": seed}, source=config.source).validate()


def whole_run(out: Path, agent: str, seed: int) -> Path | None:
    """The run of ``agent`` and ``seed`` under ``out`` that trained all its epochs."""
    found = finished(out, agent, seed)
    return found if found is not None and complete(found) else None


def partial_run(out: Path, agent: str, seed: int) -> Path | None:
    """The run of ``agent`` and ``seed`` under ``out`` to go on with: killed part-way (or
    training now), or stopped by ``max_minutes`` before its epochs."""
    found = finished(out, agent, seed)
    return started(out, agent, seed) or (found if found is not None and not complete(found)
                                         else None)


def finished_run(out: Path, agent: str, seed: int, config: Config) -> Path | None:
    """The finished run of ``agent`` and ``seed`` under ``out`` (all its epochs trained);
    ConfigError when it was trained with another config (the table would mix them)."""
    found = whole_run(out, agent, seed)
    changed = _differences(found, _seeded(config, seed)) if found is not None else []
    if changed:
        hint = ""
        saved_epochs = (yaml.safe_load((found / "config.yaml").read_text()) or {}).get("epochs")
        if len(changed) == 1 and isinstance(saved_epochs, int) and saved_epochs < config.epochs:
            from mannrl_gym.replicas.trainer import is_replicated_run
            whole = found.parent if is_replicated_run(found.parent) else found
            hint = f", or train it further: mannrl train --resume {whole} epochs={config.epochs}"
        raise ConfigError(f"{found}: a finished run of {agent} seed {seed} with another config "
                          f"({'; '.join(changed[:3])}); give another --out or remove it{hint}")
    if found is not None:
        provenance.check_same_data(_summary(found).get("data_sha256"), config, found,
                                   "the table would mix runs on other data")
    return found


def _train_alone(config: Config, run_dir: Path) -> None:
    from mannrl_gym import trainer
    resume = (run_dir / "checkpoint.pt").exists()
    if run_dir.exists() and not resume:  # killed before its first checkpoint
        import shutil
        shutil.rmtree(run_dir)
    trainer.train(config, run_dir=run_dir, resume=resume)


def _train_together(config: Config, seeds: list[int], parent: Path) -> None:
    from mannrl_gym.replicas import trainer as replicas_trainer
    from mannrl_gym.replicas.spec import replicas
    if replicas_trainer.is_replicated_run(parent):
        names = _replica_names(parent)
        if names != [f"seed{s}" for s in seeds]:
            raise ConfigError(f"{parent}: holds replicas {names}, not the missing seeds "
                              f"{seeds}; remove it or give another --out")
        replicas_trainer.resume_replicas(parent, {"epochs": config.epochs,
                                                  "max_minutes": config.max_minutes})
        return
    replicas_trainer.train_replicas(replicas(config, seeds, None), parent)


def _replica_names(parent: Path) -> list[str] | None:
    """The replica folders a replicated run's index lists (``seed0``, ...)."""
    from mannrl_gym.replicas import trainer as replicas_trainer
    return (yaml.safe_load((parent / replicas_trainer.INDEX).read_text()) or {}).get("replicas")


@dataclass(frozen=True)
class Unit:
    """What one process trains: ``seeds`` of ``label`` under ``out``, as replicas of one
    run directory (``together``: ``<label>-s<a>-<b>/seed<s>``) or one run alone
    (``<label>-s<seed>``)."""

    label: str
    seeds: tuple[int, ...]
    config: Config
    out: Path
    together: bool
    resuming: bool = False  # a run killed part-way, picked up from its last checkpoint
    # the agent's registry entry, for a process of its own (--jobs): one registered at run
    # time (``register_agent`` in the user's script) is registered there too
    agent: agent_registry.AgentEntry | None = None

    @property
    def name(self) -> str:
        if self.together:
            return f"{self.label} seeds {self.seeds[0]}..{self.seeds[-1]} as replicas"
        return f"{self.label} seed {self.seeds[0]}"

    @property
    def run_dirs(self) -> list[Path]:
        if self.together:
            parent = self.out / f"{self.label}-s{self.seeds[0]}-{self.seeds[-1]}"
            return [parent / f"seed{seed}" for seed in self.seeds]
        return [self.out / f"{self.label}-s{self.seeds[0]}"]

    def in_use(self) -> bool:
        """Whether another process trains one of its runs now (``rundir.in_use``)."""
        from mannrl_gym.rundir import in_use
        return any(in_use(run_dir) for run_dir in self.run_dirs)

    def train(self) -> None:
        agent = self.agent
        if agent is not None and agent.name not in agent_registry.agent_names():
            agent_registry.register_agent(agent.name, agent.entry_point, agent.summary,
                                          agent.kind, agent.reads_features, agent.reads)
        if self.together:
            _train_together(self.config, list(self.seeds), self.run_dirs[0].parent)
        else:
            _train_alone(_seeded(self.config, self.seeds[0]), self.run_dirs[0])


def plan(label: str, seeds: list[int], config: Config, out: Path, jobs: int) -> list[Unit]:
    """The units that train ``seeds`` (those without a finished run) of ``label``: a run
    killed part-way is resumed where it lies (a replicated one with its own seeds, a single
    one alone); the other seeds go together as replicas where the agent allows and ``jobs``
    is 1 (replicas share one process), else each alone (``jobs`` > 1: one process a seed)."""
    from mannrl_gym.replicas import agents as replica_agents
    from mannrl_gym.replicas import trainer as replicas_trainer
    entry = agent_registry.REGISTRY.get(config.agent)
    units, left = [], list(seeds)
    for seed in seeds:
        run_dir = partial_run(out, label, seed)
        if run_dir is None or seed not in left:
            continue
        parent = run_dir.parent
        if run_dir.name == f"seed{seed}" and replicas_trainer.is_replicated_run(parent):
            names = _replica_names(parent) or []
            together = tuple(s for s in left if f"seed{s}" in names)
            if parent.name == f"{label}-s{together[0]}-{together[-1]}":
                units.append(Unit(label, together, config, out, True, True, entry))
                left = [s for s in left if s not in together]
        elif run_dir.name == f"{label}-s{seed}":
            units.append(Unit(label, (seed,), config, out, False, True, entry))
            left.remove(seed)
    if len(left) > 1 and jobs == 1 and replica_agents.replicable(config.agent):
        return units + [Unit(label, tuple(left), config, out, True, agent=entry)]
    return units + [Unit(label, (seed,), config, out, False, agent=entry) for seed in left]


def in_order(units: list[Unit]) -> list[Unit]:
    """The runs killed part-way first, then seed by seed across the agents (each seed's
    agents in ``--agents``' order): a long table's paired rows fill in as it grows."""
    return sorted(units, key=lambda unit: (not unit.resuming, unit.seeds[0]))


class TableIncomplete(Exception):
    """The table waits for runs this command did not finish (it trained the rest): not an
    error; the same command again goes on (`mannrl compare` exits 75)."""

    def __init__(self, message: str, trained: int) -> None:
        super().__init__(f"{trained} run(s) trained now; {message} (--status says where they "
                         f"stand)")
        self.trained = trained


class TableWaits(TableIncomplete):
    """The table needs runs that another process trains now."""

    def __init__(self, busy: list[Unit], trained: int) -> None:
        dirs = ", ".join(str(run_dir) for unit in busy for run_dir in unit.run_dirs)
        super().__init__(f"the table waits for {sum(len(unit.seeds) for unit in busy)} run(s) "
                         f"that another process trains ({dirs}): run the same command again "
                         f"once they are done", trained)
        self.busy = busy


def run_all(request: Request, configs: dict[str, Config],
            say: Callable[[str], None] = tqdm.write, jobs: int = 1) -> dict[str, int]:
    """Train every (agent, seed) without a finished run, ``jobs`` processes at a time (1:
    here, one after another): the runs killed part-way first, then seed by seed across the
    agents. Runs that another process trains now (another `mannrl compare` on the same
    ``out``, say) are left to it: ``TableWaits`` once the others are trained, unless they
    have finished by then. Return how many runs each agent trained now. One progress bar
    over all runs."""
    out = request.out
    todo = {a: [s for s in request.seeds if finished_run(out, a, s, configs[a]) is None]
            for a in request.agents}
    units = in_order([unit for agent, seeds in todo.items()
                      for unit in plan(agent, seeds, configs[agent], out, jobs)])
    busy = [unit for unit in units if unit.in_use()]
    units = [unit for unit in units if unit not in busy]
    for unit in busy:
        say(f"{unit.name}: another process trains it now; left to it")
    total = len(request.agents) * len(request.seeds)
    with tqdm(total=total, desc="compare", unit="run", disable=None) as bar:
        bar.update(total - sum(len(s) for s in todo.values()))

        def done(unit: Unit, seconds: float) -> None:
            bar.update(len(unit.seeds))
            say(f"{unit.name}: trained in {seconds:.0f} s")

        if jobs > 1 and len(units) > 1:
            from mannrl_gym.compare_jobs import run_in_processes
            run_in_processes(units, jobs, done, lambda text: bar.set_postfix_str(text))
        else:
            for unit in units:
                if unit.in_use():  # another command took it up since this one began
                    say(f"{unit.name}: another process trains it now; left to it")
                    busy.append(unit)
                    continue
                bar.set_postfix_str(unit.name)
                tic = time.perf_counter()
                unit.train()
                done(unit, time.perf_counter() - tic)
    trained = {agent: len(seeds) for agent, seeds in todo.items()}
    for unit in busy:
        trained[unit.label] -= len(unit.seeds)
    waiting = [unit for unit in busy
               if any(finished_run(out, unit.label, s, configs[unit.label]) is None
                      for s in unit.seeds)]
    if waiting:
        raise TableWaits(waiting, sum(trained.values()))
    short = [(agent, seed) for agent, seeds in todo.items() for seed in seeds
             if whole_run(out, agent, seed) is None]
    if short:  # max_minutes stopped them before --epochs
        raise BudgetSpent(short, configs[short[0][0]], sum(trained.values()))
    return trained


class BudgetSpent(TableIncomplete):
    """Runs the table needs stopped at ``max_minutes`` before their epochs: the same command
    with a larger budget (or none) goes on with them."""

    def __init__(self, short: list[tuple[str, int]], config: Config, trained: int) -> None:
        super().__init__(f"{len(short)} stopped at max_minutes={config.max_minutes} before "
                         f"{config.epochs} epochs ({', '.join(f'{a} seed {s}' for a, s in short)}"
                         f"): the table waits for them; run the same command with a larger "
                         f"max_minutes (or none) to go on", trained)


def collect(request: Request, configs: dict[str, Config]) -> list[dict[str, Any]]:
    """One row per (agent, seed): its run directory, epochs and final metrics."""
    keys = [k for k, _ in TASK_METRICS[configs[request.agents[0]].task]]
    rows = []
    for agent in request.agents:
        for seed in request.seeds:
            run_dir = finished_run(request.out, agent, seed, configs[agent])
            if run_dir is None:
                raise ConfigError(f"{request.out}: no finished run of {agent} seed {seed}")
            evaluated = evaluated_rows(run_dir)
            rows.append({"agent": agent, "seed": seed, "dir": str(run_dir),
                         "epochs": evaluated[-1]["epoch"] if evaluated else 0,
                         **final_metrics(evaluated, keys)})
    return rows


def summarise(request: Request, task: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The table as data: per agent mean/sd, and paired differences against the control."""
    metrics = TASK_METRICS[task]
    by_agent = {a: [r for r in rows if r["agent"] == a] for a in request.agents}
    result: dict[str, Any] = {
        "task": task, "agents": request.agents, "seeds": request.seeds, "epochs": request.epochs,
        "control": request.control, "overrides": request.overrides,
        "figure_metric": FIGURE_KEYS.get(task, FIGURE_KEY),
        "metrics": [{"key": k, "title": t} for k, t in metrics],
        "runs": rows,
        "per_agent": {a: {k: seed_stats([r[k] for r in mine]) for k, _ in metrics}
                      for a, mine in by_agent.items()},
        "paired": {}}
    if request.control is not None:
        control = by_agent[request.control]
        result["paired"] = {a: {k: paired_stats([r[k] for r in mine], [r[k] for r in control])
                                for k, _ in metrics}
                            for a, mine in by_agent.items() if a != request.control}
    return result


def markdown(summary: dict[str, Any]) -> str:
    """Both tables as markdown, with what they measure."""
    metrics = [(m["key"], m["title"]) for m in summary["metrics"]]
    seeds = summary["seeds"]
    epochs = f"{summary['epochs']} epoch{'s' if summary['epochs'] != 1 else ''}"
    head = (f"{summary['task']}, {epochs} a run, seeds "
            f"{', '.join(map(str, seeds))} ({len(seeds)}); a run's figure is its mean over its "
            f"last {LAST_EVALUATIONS} evaluations (all of them where it has fewer); mean ± sd "
            f"over seeds")
    table = markdown_table([{"agent": a, **{t: _pm(s[k]) for k, t in metrics}}
                            for a, s in summary["per_agent"].items()])
    text = f"{head}\n\n{table}\n"
    if summary["paired"]:
        text += (f"\npaired: agent minus {summary['control']} on the same seed, mean ± sd of the "
                 f"per-seed differences (seeds ahead / behind)\n\n")
        text += markdown_table([{"agent": f"{a} - {summary['control']}",
                                 **{t: _diff(s[k]) for k, t in metrics}}
                                for a, s in summary["paired"].items()]) + "\n"
    return text


def _pm(stats: dict[str, float]) -> str:
    """mean ± sd; the mean alone for one seed (no spread to give)."""
    if stats["n"] < 2:
        return f"{stats['mean']:.3f}"
    return f"{stats['mean']:.3f} ± {stats['sd']:.3f}"


def _diff(stats: dict[str, Any]) -> str:
    spread = f" ± {stats['sd']:.3f}" if stats["n"] > 1 else ""
    return f"{stats['mean']:+.3f}{spread} ({stats['ahead']} / {stats['behind']})"


def status(request: Request) -> list[dict[str, Any]]:
    """Where each (agent, seed) stands, training nothing: one row each with ``state``
    (finished; training: another process holds it now; partial: killed part-way; missing),
    ``epochs`` (its last epoch so far, of ``request.epochs``),
    ``dir``, the task's first metric at its last evaluation (None before one) and
    ``changed``: how the run's config differs from the one asked for now (empty when it
    does not; such a run is reported, where training would stop at it)."""
    from mannrl_gym.rundir import in_use
    configs = configs_for(request)
    unchecked = None  # no data here (the kept runs read back elsewhere): said, not an error
    for config in configs.values():
        try:
            check_files(config)
        except DataError as missing:
            unchecked = str(missing).split("; ")[0]
    key, title = TASK_METRICS[configs[request.agents[0]].task][0]
    rows = []
    for agent in request.agents:
        for seed in request.seeds:
            done = whole_run(request.out, agent, seed)
            run_dir = done or partial_run(request.out, agent, seed)
            changed = (_differences(run_dir, _seeded(configs[agent], seed), unchecked is None)
                       if run_dir else [])
            if done:  # a file edited since: the table would stop at it
                changed += [f"{key}: its file holds other bytes than the run read" for key in
                            provenance.changed_files(_summary(done).get("data_sha256"),
                                                     configs[agent])]
            state = ("finished" if done else "missing" if not run_dir
                     else "training" if in_use(run_dir) else "partial")
            row = {"agent": agent, "seed": seed, "dir": str(run_dir) if run_dir else None,
                   "state": state, "epochs": 0, "metric": title, "value": None,
                   "changed": changed, "minutes": 0.0, "pace": None, "left": None,
                   "replicas": _replicas_beside(run_dir), "unchecked": unchecked}
            if run_dir is not None:  # a run killed mid-write: its torn last line skipped
                metrics = checkpoint.MetricsLog(run_dir / "metrics.jsonl").read()
                row["epochs"] = metrics[-1]["epoch"] if metrics else 0
                timed = [line for line in metrics if "minutes" in line]  # a trainer's rows
                row["minutes"] = timed[-1]["minutes"] if timed else 0.0
                row["pace"] = _pace(timed)
                last = evaluated(metrics)
                row["value"] = last[-1].get(key) if last else None
            rows.append(row)
    _estimate_left(rows, request.epochs)
    return rows


PACE_EPOCHS = 64  # a run's pace: its training minutes an epoch over its last this many epochs


def _pace(metrics: list[dict[str, Any]]) -> float | None:
    """Minutes of training an epoch (evaluations included) over a run's last
    ``PACE_EPOCHS`` epochs; None before its first epoch."""
    if not metrics:
        return None
    last = metrics[-1]
    earlier = [row for row in metrics[:-1] if row["epoch"] >= last["epoch"] - PACE_EPOCHS]
    if not earlier:
        return last["minutes"] / last["epoch"]
    first = earlier[0]
    return (last["minutes"] - first["minutes"]) / max(last["epoch"] - first["epoch"], 1)


def _replicas_beside(run_dir: Path | None) -> int:
    """How many replicas train in ``run_dir``'s process: its replicated run's count, else 1
    (their clock is the process's, shared by all of them)."""
    from mannrl_gym.replicas.trainer import is_replicated_run
    if run_dir is None or not is_replicated_run(run_dir.parent):
        return 1
    return len(_replica_names(run_dir.parent) or [run_dir.name])


def _estimate_left(rows: list[dict[str, Any]], epochs: int) -> None:
    """Each row's ``left``: estimated minutes of training to ``epochs`` (0 when finished; a
    started run at its recent pace, a missing one at the mean pace, minutes over epochs,
    of its agent's other runs, a replica's minutes shared by its replicas; None when no
    run of the agent has trained an epoch yet). A replica's ``left`` is its replicated
    run's, which ``_time_left`` counts once."""
    paces: dict[str, list[float]] = {}
    for row in rows:
        if row["epochs"] and row["minutes"] and not row["changed"]:
            paces.setdefault(row["agent"], []).append(
                row["minutes"] / row["epochs"] / row["replicas"])
    for row in rows:
        if row["changed"]:
            continue
        if row["state"] == "finished":
            row["left"] = 0.0
            continue
        known = paces.get(row["agent"])
        pace = row["pace"] if row["pace"] is not None else (
            sum(known) / len(known) if known else None)
        row["left"] = None if pace is None else max(epochs - row["epochs"], 0) * pace


def status_markdown(rows: list[dict[str, Any]], epochs: int) -> str:
    """``status``'s rows as a table, a count, and the estimate of the training left."""
    from mannrl_gym.trainer import format_duration

    title = rows[0]["metric"] if rows else ""

    def duration(minutes: float | None) -> str:
        return "" if minutes is None else format_duration(minutes * 60)  # 0: "0s"

    lines = [f"| agent | seed | state | epochs of {epochs} | {title}, last evaluation | "
             f"trained for | left (estimate) | run |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        value = "" if row["value"] is None else f"{row['value']:.3f}"
        state = row["state"] + (", other config" if row["changed"] else "")
        lines.append(f"| {row['agent']} | {row['seed']} | {state} | {row['epochs']} | "
                     f"{value} | {duration(row['minutes'] if row['dir'] else None)} | "
                     f"{duration(row['left'])} | {row['dir'] or ''} |")
    other = [row for row in rows if row["changed"]]
    done = sum(row["state"] == "finished" and not row["changed"] for row in rows)
    partial = sum(row["state"] == "partial" and not row["changed"] for row in rows)
    training = sum(row["state"] == "training" and not row["changed"] for row in rows)
    counts = ", ".join([f"{done} of {len(rows)} runs finished"]
                       + [f"{training} training in another process"] * bool(training)
                       + [f"{partial} partial"])
    if not other:
        left = ", leaves the ones in training to their process" if training else ""
        lines.append(f"\n{counts} (the same command without --status resumes the partial ones"
                     f"{left} and trains the missing ones)")
        lines += _time_left(rows)
        return "\n".join(lines + _unchecked_note(rows))
    lines.append(f"\n{counts}, {len(other)} of another config: the same command without "
                 f"--status would stop at them; give the overrides they ran with, another "
                 f"--out, or remove them:")
    lines += [f"  {row['dir']}: {'; '.join(row['changed'][:3])}" for row in other]
    return "\n".join(lines + _unchecked_note(rows))


def _unchecked_note(rows: list[dict[str, Any]]) -> list[str]:
    """A line where the data files are not here: the runs' files compared by name alone."""
    unchecked = next((row["unchecked"] for row in rows if row.get("unchecked")), None)
    if unchecked is None:
        return []
    return [f"data not here ({unchecked}): the runs' data files are compared by their names, "
            f"not their bytes; training needs them"]


def _time_left(rows: list[dict[str, Any]]) -> list[str]:
    """The estimate of the training left, summed over the runs not finished (a line; none
    when all are)."""
    from mannrl_gym.trainer import format_duration

    waiting = [row for row in rows if row["state"] != "finished"]
    if not waiting:
        return []
    processes = {}  # a replicated run's replicas train in one process: counted once
    for row in waiting:
        if row["left"] is not None:
            key = str(Path(row["dir"]).parent) if row["replicas"] > 1 else id(row)
            processes[key] = max(processes.get(key, 0.0), row["left"])
    known = list(processes.values())
    unknown = sum(row["left"] is None for row in waiting)
    line = (f"about {format_duration(sum(known) * 60)} of training left at the pace of the "
            f"runs so far, one process at a time (--jobs N trains N at once, each slower "
            f"where they share cores)" if known else "")
    if unknown:
        line += (f"{'; ' if line else ''}{unknown} run{'s' if unknown > 1 else ''} of agents "
                 f"that have trained no epoch yet not estimated")
    return [line]


def compare(request: Request, say: Callable[[str], None] = tqdm.write, jobs: int = 1
            ) -> dict[str, Any]:
    """Train what is missing (``jobs`` processes at a time: ``run_all``), then write
    ``<name>.md``, ``<name>.json``, ``<name>.png`` and ``<name>-curves.png`` under
    ``request.out``; return the summary (``trained``: runs
    trained now, per agent; ``curves``: ``compare_figures.curves``)."""
    configs, defaults = _configs_and_defaults(request)
    task = configs[request.agents[0]].task
    request.out.mkdir(parents=True, exist_ok=True)
    with _naming_defaults(defaults):  # the data a default asks too much of, say
        trained = run_all(request, configs, say, jobs)
    summary = summarise(request, task, collect(request, configs))
    summary["trained"] = trained
    out, name = request.out, request.name
    checkpoint.atomic_write_text(out / f"{name}.md", markdown(summary))
    summary["curves"] = compare_figures.curves(summary)
    checkpoint.atomic_write_text(out / f"{name}.json", json.dumps(summary, indent=2))
    compare_figures.final_values(summary, out / f"{name}.png")
    compare_figures.curves_figure(summary, out / f"{name}-curves.png")
    return summary
