#!/usr/bin/env python3
"""Set up (or reuse) ./.venv and run the main job or the tests. Needs only Python 3.10+.

    python3 bootstrap.py train [key=value ...]   train Logic with the paper's recipe (offline)
    python3 bootstrap.py train CONFIG [key=value ...]   train another config, e.g. configs/pos.yaml
    python3 bootstrap.py train --resume RUN_DIR [key=value ...]   go on with a stopped run
    python3 bootstrap.py test  [pytest args ...]  run the test suite
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# torch pinned: this exact CPU build is what the project is tested with (an unpinned torch
# would pull a multi-GB CUDA build).
TORCH = "torch==2.13.0"


def python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> None:
    """Create .venv and install the project with its test extras, once per pyproject change."""
    stamp = VENV / ".mannrl-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + TORCH.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and python().exists():
        return
    if not python().exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print(f"installing {TORCH} and mannrl-gym (editable, with test extras)", flush=True)
    subprocess.run(pip + [TORCH], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[test]"], check=True)
    stamp.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("train", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    env = {**os.environ, "WANDB_SILENT": "true"}
    if argv[0] == "train":
        # the trainer's "resume with: ..." line names this command, as the user typed it
        env["MANNRL_TRAIN_COMMAND"] = "python3 bootstrap.py train"
        resuming = any(arg == "--resume" or arg.startswith("--resume=") for arg in argv[1:])
        # a config named first, or with --config, is the user's; else Table 1's
        first = argv[1] if len(argv) > 1 else ""
        given = (first and not first.startswith("-") and "=" not in first) or any(
            arg == "--config" or arg.startswith("--config=") for arg in argv[1:])
        config = [] if resuming or given else ["configs/logic.yaml"]  # --resume: the run's own
        command = [str(python()), "-m", "mannrl_gym.cli", "train", *config, *argv[1:]]
    else:
        command = [str(python()), "-m", "pytest", "-q", *argv[1:]]
    sys.stdout.flush()
    # become the job: `kill PID` (SIGTERM) reaches the trainer; SIGINT too where the shell
    # leaves it on (a script's background job ignores it, as the shell sets it)
    if os.name == "posix":
        os.chdir(ROOT)
        os.execve(command[0], command, env)
    child = subprocess.Popen(command, cwd=ROOT, env=env)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the child too (one process group): it
            continue               # stops cleanly and says how to resume; wait for that


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
