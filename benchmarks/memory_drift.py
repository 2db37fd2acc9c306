"""How far reinforcement learning moved the memory-net: per run, the relative change of each
of f's weight tensors from its seeded initial value, ||W_end - W_0|| / ||W_0||.

A change near 0 means the memory-net stayed the random map it started as (the frozen-memory
ablation); Table 3's memory learning rate of 1e-7 is a case in point.

    python benchmarks/memory_drift.py benchmarks/results/sentence/paper-s0 runs/logic-...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mannrl_gym.agent_registry import has_memory_agent  # noqa: E402
from mannrl_gym.agents import make_agent  # noqa: E402
from mannrl_gym.envs.core import make_spaces  # noqa: E402
from mannrl_gym.rundir import load_run  # noqa: E402
from mannrl_gym.tasks import build_task  # noqa: E402


def drift(run_dir: Path) -> dict[str, float | str | int]:
    """{"run", "epochs", and per weight tensor of f: relative change from its initial value}."""
    saved = load_run(run_dir)
    config = saved.config
    if not has_memory_agent(config.agent):
        return {"run": run_dir.name, "agent": f"{config.agent} (no memory-net)"}
    _, _, layout = make_spaces(build_task(config), config.memory_size)
    agent = make_agent(config, layout, config.batch_size)  # the same seed: f's initial weights
    if not hasattr(agent, "net"):
        return {"run": run_dir.name, "agent": f"{config.agent} (no memory-net)"}
    initial = agent.net.state_dict()
    final = saved.experiment_state["agent"]["net"]
    row: dict[str, float | str | int] = {"run": run_dir.name, "epochs": saved.epochs_trained}
    for name, start in initial.items():  # linear weights and batch norm's gains
        if name.endswith("weight"):
            row[name] = float(torch.linalg.norm(final[name] - start) / torch.linalg.norm(start))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    rows = [drift(run_dir) for run_dir in parser.parse_args().run_dirs]
    for row in rows:
        cells = [f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()]
        print(" | ".join(cells))


if __name__ == "__main__":
    from mannrl_gym.cli import run_script
    raise SystemExit(run_script(main))
