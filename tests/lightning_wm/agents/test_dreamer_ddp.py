"""Dreamer under Lightning DDP: two CPU processes (gloo), each collecting with its own envs.

Dreamer optimises manually (three optimisers, and the world model's ``requires_grad`` toggled
off during the actor step): each ``manual_backward`` reaches one optimiser's parameters only, so
``train`` asks DDP to detect unused parameters (``DreamerAgent.ddp_find_unused_parameters``).
The test trains tiny Dreamer on ``point`` with ``strategy="ddp"`` and checks that the ranks saw
different data yet end with identical weights (so every optimiser's gradients were averaged)
that moved from the initial ones.

Lightning's DDP launcher re-runs the launching script once per rank, so this file is also that
script: ``python tests/lightning_wm/agents/test_dreamer_ddp.py OUT`` trains and writes one
``rank{r}.pt`` per rank into OUT.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.data.module import TrainingConfig
from lightning_wm.envs import make_env
from lightning_wm.training import ddp_strategy, train

REPO = Path(__file__).resolve().parents[3]
BUDGET = 120  # 60 env steps per rank: prefill 40, then two phases of 4 updates each


def _train_one_rank(out: Path) -> None:
    torch.set_num_threads(1)  # two ranks share the machine's cores
    cfg = TrainingConfig(collect_every=20, updates_per_collect=4, prefill=40, batch_size=4,
                         eval_every=1000, eval_episodes=1, checkpoint_every=1000)
    L.seed_everything(0, verbose=False)
    agent = make_agent("dreamer", (4,), 2, False, {"size": "tiny", "free_nats": 0.0})
    initial = {k: v.detach().clone() for k, v in agent.state_dict().items()}
    result = train(agent, lambda task: make_env("point", {"max_steps": 20}), [0], 2,
                   budget=BUDGET, seed=0, config=cfg, run_dir=out / "run", accelerator="cpu",
                   devices=2, strategy="ddp")
    final = {k: v.detach().clone() for k, v in agent.state_dict().items()}
    torch.save({"initial": initial, "final": final, "updates": result.updates,
                "device": result.device, "episode_returns": result.episode_returns},
               out / f"rank{agent.global_rank}.pt")


@pytest.mark.slow
def test_dreamer_ddp_two_cpu_processes_average_gradients(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["device"].startswith("cpu x2") and r0["updates"] == r1["updates"] == 8
    # each rank collected with its own envs and seeds ...
    assert r0["episode_returns"] != r1["episode_returns"]
    # ... yet the weights agree exactly: DDP averaged every optimiser's gradients
    final0, final1 = r0["final"], r1["final"]
    assert final0.keys() == final1.keys()
    for k in final0:
        assert torch.equal(final0[k], final1[k]), k
    moved = {k.split(".")[1] for k in final0
             if k.startswith("components.") and not torch.equal(final0[k], r0["initial"][k])}
    assert moved == {"encoder", "representation", "transition", "decoder", "reward", "value",
                     "actor"}


def test_train_asks_ddp_to_find_unused_parameters_for_dreamer():
    dreamer = make_agent("dreamer", (4,), 2, False, {"size": "tiny"})
    assert ddp_strategy(dreamer, "ddp", 2) == "ddp_find_unused_parameters_true"
    assert ddp_strategy(dreamer, "ddp_spawn", 2) == "ddp_spawn_find_unused_parameters_true"
    assert ddp_strategy(dreamer, "auto", 2) == "ddp_find_unused_parameters_true"  # Lightning's pick
    assert ddp_strategy(dreamer, "auto", 1) == "auto"  # one device: no DDP at all
    tiny_q = make_agent("tiny_q", (4,), 2, True)  # one backward per update: plain DDP
    assert ddp_strategy(tiny_q, "ddp", 2) == "ddp"


if __name__ == "__main__":
    _train_one_rank(Path(sys.argv[1]))
