"""Absorbing-state sampling (Voskuil, "Pre-training World Models to efficiently learn related
tasks", Master's thesis, Leiden University, 2022, §5.2): short episodes padded past their end,
exact compatibility with EpisodeReplay when no padding is allowed, and the replay an agent's
declared data needs pick."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from lightning_wm.agents.protocol import AbsorbingOptions
from lightning_wm.data.absorbing import (AbsorbingReplay, make_replay, sample_absorbing,
                                         start_counts)
from lightning_wm.data.replay import FIELDS, EpisodeReplay

A = 4  # action width


def episode(ep_id: int, length: int, terminal: bool = True) -> dict[str, np.ndarray]:
    """obs[t] = (ep_id, t); rewards ep_id·100 + t (0 on the first step); actions one-hot."""
    t = np.arange(length)
    action = np.zeros((length, A), np.float32)
    action[1:, 1] = 1.0
    reward = (ep_id * 100 + t).astype(np.float32)
    reward[0] = 0.0
    return {"obs": np.stack([np.full(length, ep_id), t], 1).astype(np.float32),
            "action": action, "reward": reward, "is_first": t == 0,
            "is_terminal": (t == length - 1) & terminal}


def test_three_step_episode_into_eight_step_sequences():
    replay = AbsorbingReplay(100)
    replay.add_episode(episode(7, 3))
    assert replay.can_sample(8) and not EpisodeReplay.can_sample(replay, 8)
    batch = replay.sample(np.random.default_rng(0), 400, 8)
    assert set(batch) == {*FIELDS, "task_id", "is_absorbing"}
    assert batch["obs"].shape == (400, 8, 2) and batch["action"].shape == (400, 8, A)
    starts = batch["obs"][:, 0, 1].astype(int)
    assert set(starts) == {0, 1, 2}  # every real step starts some sequence
    for seq, o in zip(range(400), starts):
        real = 3 - o
        mask = batch["is_absorbing"][seq]
        np.testing.assert_array_equal(mask, np.arange(8) >= real)
        np.testing.assert_array_equal(batch["obs"][seq, :real, 1], np.arange(o, 3))
        assert (batch["obs"][seq, real:] == [7, 2]).all()      # the last observation, repeated
        assert (batch["reward"][seq, real:] == 0).all()
        assert batch["is_terminal"][seq, real - 1:].all()      # the real terminal, then absorbing
        assert not batch["is_first"][seq, real:].any()
        np.testing.assert_array_equal(batch["reward"][seq, :real], [0, 701, 702][o:])
    pad_actions = batch["action"][batch["is_absorbing"]]
    assert (pad_actions.sum(-1) == 1).all() and set(np.unique(pad_actions)) == {0.0, 1.0}
    counts = pad_actions.sum(0)  # uniform over the A actions
    assert counts.min() > 0.2 * len(pad_actions) and counts.max() < 0.3 * len(pad_actions)
    real_actions = batch["action"][~batch["is_absorbing"]]
    assert set(real_actions.argmax(-1)) <= {0, 1}             # real steps keep their actions


def test_no_padding_reproduces_episode_replay_exactly():
    plain, absorbing = EpisodeReplay(10_000), AbsorbingReplay(10_000, max_absorbing=0)
    for i, (n, task) in enumerate([(5, 0), (12, 1), (3, 0), (20, 1), (9, 0)]):
        plain.add_episode(episode(i, n), task)
        absorbing.add_episode(episode(i, n), task)
    a = plain.sample(np.random.default_rng(3), 64, 6)
    b = absorbing.sample(np.random.default_rng(3), 64, 6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not b["is_absorbing"].any()
    np.testing.assert_array_equal(start_counts(plain, 6, 0), [0, 7, 0, 15, 4])
    np.testing.assert_array_equal(start_counts(plain, 6), [5, 12, 3, 20, 9])
    with pytest.raises(ValueError, match="max_absorbing"):
        start_counts(plain, 6, 6)
    c = absorbing.sample(np.random.default_rng(3), 64, 6, rewarding=0.0)  # the data module's call
    np.testing.assert_array_equal(b["obs"], c["obs"])
    with pytest.raises(ValueError, match="reward_fraction"):
        absorbing.sample(np.random.default_rng(3), 64, 6, rewarding=0.25)


def test_tasks_stay_balanced_and_short_tasks_are_kept():
    replay = AbsorbingReplay(10_000)
    replay.add_episode(episode(0, 2), task_id=0)    # a task whose episodes are all short
    for i in range(1, 6):
        replay.add_episode(episode(i, 40), task_id=1)
    batch = replay.sample(np.random.default_rng(1), 2000, 8)
    share = (batch["task_id"][:, 0] == 0).mean()
    assert 0.45 < share < 0.55
    assert (batch["obs"][batch["task_id"][:, 0] == 0][:, 0, 0] == 0).all()


def test_continuous_padding_and_truncated_episodes():
    replay = AbsorbingReplay(100, discrete=False)
    replay.add_episode(episode(1, 2, terminal=False))  # cut by a time limit
    batch = replay.sample(np.random.default_rng(0), 50, 5)
    pad = batch["action"][batch["is_absorbing"]]
    assert pad.min() >= -1 and pad.max() <= 1 and np.abs(pad).sum(-1).min() > 0
    assert batch["is_terminal"][batch["is_absorbing"]].all()  # seed: discount 0 past the end
    assert not batch["is_terminal"][~batch["is_absorbing"]].any()


def test_declared_needs_pick_the_replay_and_state_round_trips():
    plain = make_replay(100, None)
    assert type(plain) is EpisodeReplay
    wrapped = make_replay(100, AbsorbingOptions(discrete=False))
    assert isinstance(wrapped, AbsorbingReplay) and not wrapped.discrete
    wrapped = make_replay(100, AbsorbingOptions())
    wrapped.add_episode(episode(0, 3))
    restored = AbsorbingReplay(1)
    restored.load_state_dict(pickle.loads(pickle.dumps(wrapped.state_dict())))
    x = sample_absorbing(wrapped, np.random.default_rng(5), 8, 6)
    y = restored.sample(np.random.default_rng(5), 8, 6)
    for k in x:
        np.testing.assert_array_equal(x[k], y[k])
    with pytest.raises(ValueError, match="no stored episode"):
        AbsorbingReplay(10).sample(np.random.default_rng(0), 1, 4)


def test_a_segment_that_continues_is_never_padded_and_round_trips():
    replay = AbsorbingReplay(10**6)
    replay.add_episode(episode(0, 6, terminal=False), continues=True)
    assert start_counts(replay, 4).tolist() == [3]  # 6 - 4 + 1 starts, no absorbing ones
    replay.add_episode(episode(1, 6), continues=False)
    assert start_counts(replay, 4).tolist() == [3, 6]  # the episode's last segment is padded
    batch = sample_absorbing(replay, np.random.default_rng(0), 64, 4)
    from_segment = batch["obs"][:, 0, 0] == 0  # the segment's windows (obs[t] = (0, t))
    assert from_segment.any() and not batch["is_absorbing"][from_segment].any()
    again = AbsorbingReplay(10**6)
    again.load_state_dict(replay.state_dict())
    assert list(again.continues) == [True, False]
