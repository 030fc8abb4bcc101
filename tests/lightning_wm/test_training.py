"""The whole library path on the tiny agent: learning, determinism and exact resume."""
from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.envs import make_env
from lightning_wm.testing import CrashAfter
from lightning_wm.training import LAST, MODEL, train

CFG = TrainingConfig(collect_every=50, updates_per_collect=20, prefill=100, batch_size=32,
                     eval_every=200, eval_episodes=3, checkpoint_every=200)


def _run(tmp, seed=0, budget=1000, callbacks=(), slip=0.1, config=CFG):
    L.seed_everything(seed, verbose=False)
    agent = make_agent("tiny_q", (8,), 2, True, {"eps_steps": 600})
    result = train(agent, lambda t: make_env("corridor", {"length": 8, "slip": slip}), [0], 2,
                   budget=budget, seed=seed, config=config, run_dir=tmp, callbacks=callbacks)
    return agent, result


def test_learns_the_corridor(tmp_path):
    _, result = _run(tmp_path, budget=2000)
    assert result.env_steps == 2000
    assert result.steps[0] == 0 and result.steps[-1] == 2000
    assert max(result.returns[-3:]) >= 0.8, result.returns  # optimal is 0.94
    # the evaluation curve also reaches the logger, beside the losses
    import csv
    rows = list(csv.DictReader(open(next((tmp_path).rglob("metrics.csv")))))
    logged = [(int(float(r["eval/env_steps"])), float(r["eval/return"])) for r in rows
              if r.get("eval/return")]
    assert logged == [(s, pytest.approx(x)) for s, x in zip(result.steps, result.returns)]


def test_same_seed_same_run(tmp_path):
    a, ra = _run(tmp_path / "a", budget=600)
    b, rb = _run(tmp_path / "b", budget=600)
    assert ra.returns == rb.returns and ra.updates == rb.updates
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_resume_continues_the_same_run(tmp_path):
    full_agent, full = _run(tmp_path / "full", budget=800)

    crash = CrashAfter(450, tmp_path / "cut/checkpoints" / LAST)

    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "cut", budget=800, callbacks=[crash])
    assert (tmp_path / "cut/checkpoints" / LAST).exists()
    agent, resumed = _run(tmp_path / "cut", budget=800)
    assert resumed.resumed_from_step > 0
    assert resumed.returns == full.returns
    assert resumed.updates == full.updates
    for (k, va), vb in zip(full_agent.state_dict().items(), agent.state_dict().values()):
        assert torch.equal(va, vb), k
    assert (tmp_path / "cut/checkpoints" / MODEL).exists()
    assert not (tmp_path / "cut/checkpoints" / LAST).exists()  # resume state dropped when done


def test_multi_task_run_records_each_tasks_score(tmp_path):
    """The curve of a multi-task run is the mean of per-task scores, which are kept beside it."""
    L.seed_everything(0, verbose=False)
    agent = make_agent("tiny_q", (8,), 2, True, {"eps_steps": 300})
    slips = [0.0, 0.5]
    result = train(agent, lambda t: make_env("corridor", {"length": 8, "slip": slips[t]}), [0, 1],
                   2, budget=600, seed=0, config=CFG, run_dir=tmp_path)
    assert len(result.task_returns) == len(result.returns) == 4
    for mean, per_task in zip(result.returns, result.task_returns):
        assert len(per_task) == 2 and mean == pytest.approx(sum(per_task) / 2)
    assert any(a != b for a, b in result.task_returns)  # the two tasks are scored apart
