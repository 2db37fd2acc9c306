"""wandb logging, offline by default: no account and no network needed."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mannrl_gym.config import Config, ConfigError, wandb_mode_from_env

DEFAULT_WANDB_URL = "https://api.wandb.ai"


def wandb_key_found() -> bool:
    """Whether wandb would find an API key, looked up offline where wandb looks: the
    WANDB_API_KEY (or WANDB_IDENTITY_TOKEN_FILE) variable, else the netrc file (NETRC, else
    ~/.netrc or ~/_netrc) entry for the WANDB_BASE_URL host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_WANDB_URL).netloc
    candidates = ([Path(os.environ["NETRC"]).expanduser()] if os.environ.get("NETRC")
                  else [Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()])
    for path in candidates:
        try:
            entry = netrc.netrc(str(path)).authenticators(host)
        except (OSError, netrc.NetrcParseError):
            continue
        if entry and entry[2]:
            return True
    return False


def check_online_login(config: Config) -> None:
    """ConfigError before a ``wandb_mode: online`` run starts when no API key is at hand
    (wandb would otherwise stop the run at its first step, or ask on the terminal)."""
    if config.wandb_mode == "online" and not wandb_key_found():
        where = " (WANDB_MODE in the environment)" if wandb_mode_from_env() == "online" else ""
        raise ConfigError(f"{config.source}: key 'wandb_mode' is 'online'{where}, but no wandb "
                          f"API key is set (WANDB_API_KEY, or `wandb login`, which writes "
                          f"~/.netrc); log in, or use wandb_mode=offline and `wandb sync` later")


class Tracker:
    """Logs each epoch's metrics to wandb (``wandb_mode``: offline, online or disabled).

    A resumed run passes the saved ``run_id`` so wandb continues the same run; ``alongside``:
    other runs of this process log at the same time (replicas), each to its own wandb run.
    """

    def __init__(self, config: Config, run_dir: Path, run_id: str | None = None,
                 alongside: bool = False) -> None:
        self.run = None
        self.run_id = run_id
        if config.wandb_mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.run = wandb.init(project=config.wandb_project, dir=str(run_dir),
                              mode=config.wandb_mode, config=config.to_dict(),
                              name=Path(run_dir).name, id=run_id, resume="allow" if run_id else None,
                              settings=wandb.Settings(console="off", x_disable_stats=True),
                              **({"reinit": "create_new"} if alongside else {}))
        self.run_id = self.run.id

    def sweep_overrides(self) -> dict[str, Any]:
        """Under a wandb sweep agent: the swept config keys from ``wandb.config``."""
        if self.run is None or not os.environ.get("WANDB_SWEEP_ID"):
            return {}
        from mannrl_gym.config import KEYS
        return {k: v for k, v in dict(self.run.config).items() if k in KEYS}

    def log(self, row: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in row.items() if v is not None}, step=int(row["epoch"]))

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
