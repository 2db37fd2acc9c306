"""``mannrl sweep``: a wandb-format sweep file run locally by Optuna.

spec      the sweep file: loading, checking, grid points, one suggestion per parameter
samplers  Optuna samplers whose draws depend on (seed, trial number) only
study     the study's database, its search space and the summary table
trial     one trial: a ``mannrl train`` child process that dies with its worker
stopping  SIGINT / SIGTERM: stop the trials, mark them, exit with one line
workers   the worker processes that pull trials from the study
"""
