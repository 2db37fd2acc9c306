"""The ``mannrl`` command line.

  mannrl train CONFIG [key=value ...]      run an experiment (progress bar, metrics, checkpoints)
  mannrl train --resume RUN_DIR [key=value ...]
                                           continue a run from its last checkpoint
  mannrl plot RUN_DIR [RUN_DIR ...]         learning curves and a memory heat map (PNG)
  mannrl sweep SWEEP_YAML [--trials N]      a wandb-format sweep, run locally with Optuna
  mannrl predict RUN_DIR [TEXT ...] [--train K] [--held-out K]
                                           sentence tasks: read each text (and K training and
                                           K held-out sentences), print what the trained
                                           model writes back
"""

from __future__ import annotations

import argparse
import sys

from mannrl_gym.checkpoint import CheckpointError
from mannrl_gym.config import ConfigError, load, parse_overrides
from mannrl_gym.numerics import NumericalError
from mannrl_gym.tasks import DataError


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    from mannrl_gym import trainer

    overrides = parse_overrides(extra)
    if args.resume:
        config = trainer.load_run_config(args.resume, overrides)
        run_dir = trainer.train(config, run_dir=args.resume, resume=True)
    else:
        if not args.config:
            raise ConfigError("command line: give a config file, or --resume RUN_DIR")
        config = load(args.config, overrides)
        run_dir = trainer.train(config)
    print(f"results: {run_dir}  (metrics.jsonl, summary.json, checkpoint.pt, wandb/)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from mannrl_gym.predict import Predictor
    from mannrl_gym.tasks.sentence import sentence_pairs

    if args.train < 0 or args.held_out < 0:
        raise ConfigError("command line: --train and --held-out must be >= 0")
    predictor = Predictor(args.run_dir)
    groups = [("your sentences", [(text, None) for text in args.texts])]
    groups += [(f"{label} sentences", sentence_pairs(predictor.task, split, count))
               for label, split, count in (("training", "train", args.train),
                                           ("held-out", "validation", args.held_out)) if count]
    texts = [source for _, pairs in groups for source, _ in pairs]
    if not texts:
        raise ConfigError("command line: give sentences to read, or --train K / --held-out K")
    print(f"{args.run_dir}: {predictor.config.task}, {predictor.epochs_trained} epochs trained")
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
            print(f"{exact}/{len(pairs)} {label} written back exactly\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mannrl", description="MANN-RL experiments")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a memory-net agent and its action network",
                                description="Overrides: key=value or --key=value, any config key.")
    train.add_argument("config", nargs="?", help="YAML config, e.g. configs/logic.yaml")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    plot = commands.add_parser("plot", help="learning curves and a memory heat map as PNG",
                               description="Several run directories: their curves side by side.")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    plot.add_argument("--out", help="folder for the PNG files (default: the first RUN_DIR)")
    plot.add_argument("--sequence", type=int, help="training sequence for the memory heat map")
    sweep = commands.add_parser("sweep", help="run a wandb-format sweep YAML locally with Optuna")
    sweep.add_argument("sweep_file", metavar="SWEEP_YAML")
    sweep.add_argument("--trials", type=int, default=10, help="trials to run now (default 10)")
    sweep.add_argument("--storage", help="database URL shared by machines (default: SQLite "
                                         "file in the sweep's folder)")
    sweep.add_argument("--study-name", help="default: the sweep file's name")
    sweep.add_argument("--out-dir", default="runs/sweeps")
    sweep.add_argument("--seed", type=int, default=0, help="seeds the sampler")
    sweep.add_argument("--heartbeat", type=int, default=30, help=argparse.SUPPRESS)
    sweep.add_argument("--grace-period", type=int, default=None, help=argparse.SUPPRESS)
    predict = commands.add_parser("predict", help="sentence tasks: read texts, print what the "
                                  "trained model writes back")
    predict.add_argument("run_dir", metavar="RUN_DIR")
    predict.add_argument("texts", nargs="*", metavar="TEXT", help="sentences to read")
    predict.add_argument("--train", type=int, default=3, metavar="K",
                         help="also read the K shortest training sentences and compare "
                              "(default 3)")
    predict.add_argument("--held-out", type=int, default=3, metavar="K",
                         help="also read the K shortest held-out sentences and compare "
                              "(default 3)")
    predict.add_argument("--drop-unknown", action="store_true",
                         help="remove characters never seen in training instead of failing")
    predict.add_argument("--max-chars", type=int, default=None,
                         help="stop writing after this many characters (default: 2 x input + 20)")
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "config", None) and "=" in args.config:  # an override, not a file
        extra.insert(0, args.config)
        args.config = None
    try:
        if args.command == "train":
            return _train(args, extra)
        if args.command == "sweep":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            from mannrl_gym.sweep import print_study, run_sweep
            study = run_sweep(args.sweep_file, args.trials, args.storage, args.study_name,
                              args.out_dir, args.seed, args.heartbeat, args.grace_period)
            print_study(study)
            return 0
        if args.command == "predict":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            return _predict(args)
        if args.command == "plot":
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            from mannrl_gym.plotting import plot as make_plots
            for path in make_plots(args.run_dirs, args.out, args.sequence):
                print(f"wrote {path}")
            return 0
    except (ConfigError, DataError, CheckpointError, FileNotFoundError) as exc:
        print(f"mannrl: error: {exc}", file=sys.stderr)
        return 2
    except NumericalError as exc:
        print(f"mannrl: stopped: {exc}. The last checkpoint is intact.", file=sys.stderr)
        return 3
    return 1


if __name__ == "__main__":
    sys.exit(main())
