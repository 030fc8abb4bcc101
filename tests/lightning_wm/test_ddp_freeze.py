"""Every agent of the registry under 2-process gloo DDP with a ``freeze`` callback.

Freezing is decided at ``setup``, before DDP wraps the model, so DDP never registers the frozen
parameters and a backward that does not reach them is no error (it was: "parameters that were
not used in producing the loss", for every method that freezes). Each rank collects with its own
envs and seeds; the ranks must end with identical weights (gradients averaged), the frozen
``encoder`` bit-identical to its start, and every other trained component moved.

Lightning's DDP launcher re-runs the launching script once per rank, so this file is also that
script: ``python tests/lightning_wm/test_ddp_freeze.py OUT AGENT...`` trains each agent in turn
and writes ``AGENT-rank{r}.pt`` per rank into OUT.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from lightning_wm.agents import AGENTS, make_agent
from lightning_wm.envs import make_env
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.training import ddp_strategy, train
from lightning_wm.transfer import FreezeComponents, LossSchedule

REPO = Path(__file__).resolve().parents[2]
BUDGET = 120  # 60 env steps per rank: prefill 40, then two phases of 4 updates each

#: agent -> (env id, env options, obs shape, action width, discrete, agent config)
CASES = {
    "tiny_q": ("corridor", {}, (8,), 2, True, {}),
    "crar": ("simple_maze", {"max_steps": 20}, (8, 8), 4, True, {}),
    "dreamer": ("point", {"max_steps": 20}, (4,), 2, False, {"size": "tiny"}),
    "dreamer_v2": ("point", {"max_steps": 20, "discrete": True}, (4,), 5, True, {"size": "tiny"}),
    "ppo": ("point", {"max_steps": 20}, (4,), 2, False, {"epochs": 2, "minibatches": 2}),
    "efficientzero": ("corridor", {}, (8,), 2, True, {"size": "tiny"}),
}
#: the component each agent's run freezes (PPO on flat observations has no encoder; the MuZero
#: family calls its encoder the representation function)
FROZEN = {name: "encoder" for name in CASES} | {"ppo": "value", "efficientzero": "representation"}
#: on-policy agents take no random prefill: their first phase is an update's data already
PREFILL = {name: 40 for name in CASES} | {"ppo": 0}
#: updates per rank: prefill 40, then two phases of 4 updates; PPO: three phases of 4 iterations
UPDATES = {name: 8 for name in CASES} | {"ppo": 12}


def _train_one_rank(out: Path, name: str) -> None:
    env_id, options, obs_shape, action_dim, discrete, config = CASES[name]
    cfg = TrainingConfig(collect_every=20, updates_per_collect=4, prefill=PREFILL[name],
                         batch_size=4,
                         eval_every=1000, eval_episodes=1, checkpoint_every=1000)
    L.seed_everything(0, verbose=False)
    agent = make_agent(name, obs_shape, action_dim, discrete, config)
    initial = {k: v.detach().clone() for k, v in agent.state_dict().items()}
    result = train(agent, lambda task: make_env(env_id, options), [0], action_dim,
                   budget=BUDGET, seed=0, config=cfg, run_dir=out / name, accelerator="cpu",
                   devices=2, strategy="ddp", callbacks=[FreezeComponents([FROZEN[name]])])
    final = {k: v.detach().clone() for k, v in agent.state_dict().items()}
    torch.save({"initial": initial, "final": final, "updates": result.updates,
                "device": result.device, "episode_returns": result.episode_returns},
               out / f"{name}-rank{agent.global_rank}.pt")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(out), *CASES],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_every_registered_agent_is_covered():
    assert set(CASES) == set(AGENTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_ddp_with_freeze_averages_gradients_and_keeps_frozen_weights(ddp_runs, name):
    r0, r1 = (torch.load(ddp_runs / f"{name}-rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["device"].startswith("cpu x2") and r0["updates"] == r1["updates"] == UPDATES[name]
    final0, final1, initial = r0["final"], r1["final"], r0["initial"]
    for k in final0:
        assert torch.equal(final0[k], final1[k]), k
    components = {k.split(".")[1] for k in final0 if k.startswith("components.")}
    moved = {k.split(".")[1] for k in final0
             if k.startswith("components.") and not torch.equal(final0[k], initial[k])}
    assert FROZEN[name] not in moved
    assert moved, "nothing trained"
    # every component but the frozen one has a path to some loss term
    assert moved == components - {FROZEN[name]}


def test_find_unused_parameters_only_where_a_backward_can_miss_parameters():
    dreamer = make_agent("dreamer", (4,), 2, False, {"size": "tiny"})
    tiny_q = make_agent("tiny_q", (4,), 2, True)
    assert ddp_strategy(dreamer, [], "ddp", 2) == "ddp_find_unused_parameters_true"
    assert ddp_strategy(dreamer, [], "auto", 2) == "ddp_find_unused_parameters_true"
    assert ddp_strategy(dreamer, [], "auto", 1) == "auto"  # one device: no DDP at all
    assert ddp_strategy(tiny_q, [], "ddp", 2) == "ddp"
    # freezing happens before the wrap: no need to search for unused parameters
    assert ddp_strategy(tiny_q, [FreezeComponents("encoder")], "ddp", 2) == "ddp"
    # a term switched off can leave a component without gradient for a while
    off = LossSchedule("reward/*", 0.0, until_step=10)
    assert ddp_strategy(tiny_q, [off], "ddp", 2) == "ddp_find_unused_parameters_true"


if __name__ == "__main__":
    torch.set_num_threads(1)  # two ranks share the machine's cores
    for agent_name in sys.argv[2:]:
        _train_one_rank(Path(sys.argv[1]), agent_name)
