"""The on-policy stream: exactly the latest phase's transitions, in order, cut where the phase
cuts them (SegmentSource + Collector.flush_in_flight)."""
from __future__ import annotations

import numpy as np
import pytest

from lightning_wm.data.collector import Collector
from lightning_wm.envs import make_env
from lightning_wm.pipeline import SegmentSource


def _collector(num_envs=1, max_steps=7):
    return Collector(lambda t: make_env("point", {"dim": 1, "max_steps": max_steps}), [0],
                     num_envs, 1, seed=3)


def _policy(obs, is_first):
    return np.full((len(obs), 1), 0.5, np.float32)


def test_a_phase_is_its_own_steps_in_order_and_cut_at_its_end():
    collector, source = _collector(), SegmentSource()
    source.refill(_policy, collector, 10)  # one 7-step episode, then 3 steps of the next
    batch = source.sample()
    assert batch["obs"].shape == (10, 2, 2) and batch["is_last"].shape == (10,)
    assert np.flatnonzero(batch["is_last"].numpy()).tolist() == [6, 9]
    # windows chain: each one's second observation is the next one's first within a segment
    obs = batch["obs"].numpy()
    assert all(np.array_equal(obs[i, 1], obs[i + 1, 0]) for i in range(9) if i != 6)
    assert np.flatnonzero(batch["is_first"][:, 0].numpy()).tolist() == [0, 7]  # the two resets
    assert not batch["is_terminal"].any()  # point-mass episodes are truncated, never terminal
    # the next phase starts from the cut episode's last observation, with none of the old steps
    source.refill(_policy, collector, 4)
    nxt = source.sample()
    assert len(nxt["is_last"]) == 4 and np.array_equal(nxt["obs"][0, 0], obs[9, 1])
    assert not nxt["is_first"][0, 0]  # a continuation, not a reset
    assert np.flatnonzero(nxt["is_last"].numpy()).tolist() == [3]  # the episode ends at step 7


def test_every_slot_contributes_its_steps():
    collector, source = _collector(num_envs=3), SegmentSource()
    source.refill(_policy, collector, 12)
    assert len(source) == 12 == collector.env_steps
    assert int(source.sample()["is_last"].sum()) == 3  # one cut segment per slot


def test_state_round_trips_and_a_self_filling_source_refills_after_each_phase():
    source = SegmentSource(_collector(), _policy, steps_per_phase=5)
    source.after_phase(0)
    before = source.sample()
    clone = SegmentSource(_collector(), _policy, steps_per_phase=5)
    clone.load_state_dict(source.state_dict())
    assert all(np.array_equal(before[k], v) for k, v in clone.sample().items())
    source.after_phase(5), clone.after_phase(5)
    assert all(np.array_equal(source.sample()[k], v) for k, v in clone.sample().items())
    assert source.env_steps == 10


def test_a_self_filling_source_needs_its_collector_and_policy():
    with pytest.raises(ValueError, match="collector, a policy"):
        SegmentSource(_collector(), None, 5)
