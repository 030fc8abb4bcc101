"""The driver on its own (no Trainer): phases, update ratio, streams, evaluation points, resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.data.collector import Collector
from lightning_wm.data.replay import EpisodeReplay
from lightning_wm.envs import make_env
from lightning_wm.pipeline import Driver, Evaluator, OfflineSource, ReplaySource, TrainingConfig

CFG = TrainingConfig(collect_every=50, updates_per_collect=3, prefill=100, batch_size=4,
                     eval_every=200, eval_episodes=1)


def _driver(budget=400, cfg=CFG):
    collector = Collector(lambda t: make_env("corridor", {"length": 8}), [0], 1, 2, seed=0)
    main = ReplaySource(EpisodeReplay(10_000), np.random.default_rng(0), cfg.batch_size, 2)
    return Driver(collector, main, Evaluator([0], cfg.eval_every, cfg.eval_episodes), cfg, budget)


def _episodes():
    rng = np.random.default_rng(1)
    return [{"obs": rng.random((6, 8), np.float32), "action": np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1]],
             "reward": rng.random(6), "is_first": np.eye(6, dtype=bool)[0],
             "is_terminal": np.eye(6, dtype=bool)[5]} for _ in range(3)]


def test_phases_follow_the_update_to_data_ratio():
    torch.manual_seed(0)
    driver, agent = _driver(), make_agent("tiny_q", (8,), 2, True)
    batches = list(driver.batches(agent))
    # 8 phases of 50 steps: two random (prefill 100); updates follow every phase from the one
    # that completes the prefill on, 3 each
    assert len(batches) == 7 * 3 and driver.phase == 8
    assert driver.env_steps == 400 and agent.env_steps == 400
    assert all(set(b) == {"main"} and b["main"]["obs"].shape == (4, 2, 8) for b in batches)
    assert [s for s, _ in driver.evaluator.curve] == [0, 200, 400]


def test_added_streams_join_every_batch_and_names_are_checked():
    torch.manual_seed(0)
    driver, agent = _driver(200), make_agent("tiny_q", (8,), 2, True)
    driver.add_source("offline", OfflineSource(_episodes(), np.random.default_rng(2), 5, 2))
    batches = list(driver.batches(agent))
    assert batches and all(set(b) == {"main", "offline"} for b in batches)
    assert batches[0]["offline"]["obs"].shape == (5, 2, 8)
    for bad in ("main", "offline", "a:b", ""):
        with pytest.raises(ValueError):
            driver.add_source(bad, OfflineSource(_episodes(), np.random.default_rng(2), 5, 2))


def test_state_round_trip_and_stream_mismatch():
    torch.manual_seed(0)
    agent = make_agent("tiny_q", (8,), 2, True)
    a = _driver()
    it = a.batches(agent)
    for _ in range(4):
        next(it)
    state = a.state_dict()
    b = _driver()
    b.load_state_dict(state)
    assert (b.phase, b.pending_updates, b.env_steps) == (a.phase, a.pending_updates, a.env_steps)
    assert b.evaluator.curve == a.evaluator.curve
    c = _driver()
    c.add_source("offline", OfflineSource(_episodes(), np.random.default_rng(2), 5, 2))
    with pytest.raises(RuntimeError, match="streams"):
        c.load_state_dict(state)


def test_offline_source_needs_long_enough_episodes():
    short = [{k: v[:1] for k, v in ep.items()} for ep in _episodes()]
    with pytest.raises(ValueError, match="2 steps"):
        OfflineSource(short, np.random.default_rng(0), 4, 2)


@pytest.mark.parametrize("segment_steps, learns", [(0, False), (25, True)])
def test_a_replay_agent_learns_inside_episodes_that_outlast_the_budget(tmp_path, segment_steps,
                                                                        learns):
    # a 400-cell corridor walked at random never ends within 300 decisions: without segments
    # the replay holds nothing to sample and no update runs
    from lightning_wm.training import train
    torch.manual_seed(0)
    agent = make_agent("tiny_q", (400,), 2, True)
    cfg = TrainingConfig(collect_every=50, updates_per_collect=2, prefill=50, batch_size=4,
                         eval_every=300, eval_episodes=1, segment_steps=segment_steps)
    result = train(agent, lambda t: make_env("corridor", {"length": 400}), [0], 2, budget=300,
                   seed=0, config=cfg, run_dir=tmp_path)
    assert (result.updates > 0) == learns


@pytest.mark.parametrize("agent_name, steps, match", [
    ("tiny_q", 2, "must exceed the agent's window length"),
    ("ppo", 25, "replay-based agents"),
])
def test_segment_steps_are_checked_against_the_agent(tmp_path, agent_name, steps, match):
    from lightning_wm.training import train
    agent = make_agent(agent_name, (8,), 2, True)
    cfg = TrainingConfig(collect_every=50, prefill=0, segment_steps=steps)
    with pytest.raises(ValueError, match=match):
        train(agent, lambda t: make_env("corridor", {"length": 8}), [0], 2, budget=100, seed=0,
              config=cfg, run_dir=tmp_path)
