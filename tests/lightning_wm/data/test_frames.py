"""Frame-stack packing of stored episodes: lossless on stacks, untouched otherwise, and the
replays sample, evict and round-trip packed episodes as if they were stored whole."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from lightning_wm.data.absorbing import AbsorbingReplay
from lightning_wm.data.frames import StoredEpisode, pack, stack_block, unpack
from lightning_wm.data.replay import EpisodeReplay


def stacked(length: int, depth: int = 3, channels: int = 2, size: int = 4, first: int = 1):
    """An episode whose frame t has every pixel t + first; observations stack the last ``depth``
    frames oldest first, the stack at t = 0 filled with frame 0 (as the Atari adapter resets).
    ``reward[t] = t`` marks each step."""
    frame = np.arange(length)[:, None, None, None] + first + np.zeros((1, channels, size, size))
    index = np.maximum(np.arange(length)[:, None] - np.arange(depth)[::-1], 0)  # [T, depth]
    obs = frame[index].reshape(length, depth * channels, size, size).astype(np.uint8)
    return {"obs": obs, "action": np.eye(2, dtype=np.float32)[np.arange(length) % 2],
            "reward": np.arange(length, dtype=np.float32),
            "is_first": np.arange(length) == 0, "is_terminal": np.zeros(length, bool)}


def test_a_frame_stack_is_kept_once_per_frame_and_rebuilt_exactly():
    ep = stacked(10)
    assert stack_block(ep["obs"]) == 2  # 3 frames of 2 channels: shifted by 2 channels a step
    frames = pack(ep["obs"], 2)
    assert frames.shape == (3 - 1 + 10, 2, 4, 4)  # the first stack, then one frame a step
    assert np.array_equal(unpack(frames, 3, 0, 10), ep["obs"])
    stored = StoredEpisode.of(ep)
    assert stored.packed and np.array_equal(stored["obs"], ep["obs"])
    for start, stop in [(0, 1), (0, 10), (4, 7), (9, 10)]:
        assert np.array_equal(stored.window("obs", start, stop), ep["obs"][start:stop])
        assert np.array_equal(stored.window("reward", start, stop), ep["reward"][start:stop])
    # obs bytes: 12 frames of 2 × 4 × 4 instead of 10 stacks of 6 × 4 × 4
    assert stored.nbytes == 12 * 32 + sum(ep[k].nbytes for k in ep if k != "obs")
    assert sorted(stored) == sorted(ep)


def test_observations_that_are_not_shifted_stacks_are_kept_as_they_came():
    rng = np.random.default_rng(0)
    noise = {**stacked(6), "obs": rng.integers(0, 255, (6, 6, 4, 4)).astype(np.uint8)}
    broken = stacked(6)
    broken["obs"][3, :2] = 99  # one step whose older frames differ from the previous newest
    vectors = {**stacked(6), "obs": rng.normal(size=(6, 6)).astype(np.float32)}
    for ep in (noise, broken, vectors, stacked(1)):
        stored = StoredEpisode.of(ep)
        assert not stored.packed and stored["obs"] is not None
        assert np.array_equal(stored["obs"], ep["obs"])
        assert stored.nbytes == sum(v.nbytes for v in ep.values())


@pytest.mark.parametrize("absorbing", [False, True])
def test_replays_sample_packed_episodes_as_if_stored_whole(absorbing):
    replay = AbsorbingReplay(40) if absorbing else EpisodeReplay(40)
    for length in (12, 9, 15, 7):  # 43 steps: the first episode is evicted
        replay.add_episode(stacked(length))
    assert [len(ep["reward"]) for ep in replay.episodes] == [9, 15, 7]
    assert all(ep.packed for ep in replay.episodes)
    batch = replay.sample(np.random.default_rng(0), 64, 5)
    # every window's stacks hold frames max(t − 2, 0) + 1 .. t + 1 for its steps' t = reward
    t = batch["reward"].astype(int)
    if absorbing:  # padding repeats the last observation: its t is the episode's last
        t = np.maximum.accumulate(np.where(batch["is_absorbing"], -1, t), axis=1)
    want = np.maximum(t[..., None] - np.arange(3)[::-1], 0) + 1  # [B, L, depth]
    assert np.array_equal(batch["obs"][:, :, ::2, 0, 0], want)


def test_a_packed_replay_round_trips_through_a_weights_only_checkpoint():
    replay = EpisodeReplay(100)
    replay.add_episode(stacked(8))
    replay.add_episode({**stacked(5), "obs": np.zeros((5, 6, 4, 4), np.uint8) + 7})
    buffer = io.BytesIO()
    torch.save(replay.state_dict(), buffer)
    buffer.seek(0)
    again = EpisodeReplay(1)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    a, b = (r.sample(np.random.default_rng(3), 16, 4) for r in (replay, again))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [ep.packed for ep in again.episodes] == [ep.packed for ep in replay.episodes]
