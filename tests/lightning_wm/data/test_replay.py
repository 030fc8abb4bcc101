"""EpisodeReplay: sequences stay inside episodes, task balance, capacity, state round trip."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from lightning_wm.data.replay import FIELDS, EpisodeReplay


def make_episode(ep_id: int, length: int, action_dim: int = 3) -> dict[str, np.ndarray]:
    """obs[t] = (ep_id, t); the other fields are also derived from (ep_id, t)."""
    t = np.arange(length)
    obs = np.stack([np.full(length, ep_id), t], axis=1).astype(np.float32)
    action = np.zeros((length, action_dim), np.float32)
    action[1:, 0] = ep_id
    action[1:, 1] = t[1:]
    reward = (ep_id * 1000 + t).astype(np.float32)
    reward[0] = 0.0
    is_first = t == 0
    is_terminal = t == length - 1
    return {"obs": obs, "action": action, "reward": reward,
            "is_first": is_first, "is_terminal": is_terminal}


def fill(replay: EpisodeReplay, lengths, task_ids=None, start_id: int = 0):
    for i, n in enumerate(lengths):
        replay.add_episode(make_episode(start_id + i, n), 0 if task_ids is None else task_ids[i])


def assert_contiguous(batch, length):
    obs = batch["obs"]
    for seq in obs:
        ep_ids, ts = seq[:, 0], seq[:, 1]
        assert np.all(ep_ids == ep_ids[0]), seq
        np.testing.assert_array_equal(ts, ts[0] + np.arange(length))


def test_sequences_never_cross_episode_boundaries():
    replay = EpisodeReplay(capacity=10_000)
    fill(replay, [5, 9, 3, 12, 7, 4, 20])
    rng = np.random.default_rng(0)
    for length in (2, 3, 4):
        batch = replay.sample(rng, 256, length)
        assert_contiguous(batch, length)
        # every field follows its episode step
        ep, t = batch["obs"][..., 0], batch["obs"][..., 1]
        np.testing.assert_array_equal(batch["is_first"], t == 0)
        np.testing.assert_array_equal(batch["reward"][t > 0], (ep * 1000 + t)[t > 0])
        np.testing.assert_array_equal(batch["action"][..., 1][t > 0], t[t > 0])


def test_sequences_reach_the_last_step_of_episodes():
    replay = EpisodeReplay(capacity=10_000)
    fill(replay, [6])
    batch = replay.sample(np.random.default_rng(0), 500, 3)
    starts = batch["obs"][:, 0, 1]
    assert set(starts.astype(int)) == {0, 1, 2, 3}  # all valid offsets, none beyond
    assert batch["is_terminal"][:, -1].sum() > 0


def test_shapes_are_batch_by_length():
    replay = EpisodeReplay(capacity=1000)
    fill(replay, [10, 10])
    batch = replay.sample(np.random.default_rng(1), 7, 4)
    assert set(batch) == set(FIELDS) | {"task_id"}
    assert batch["obs"].shape == (7, 4, 2)
    assert batch["action"].shape == (7, 4, 3)
    for key in ("reward", "is_first", "is_terminal", "task_id"):
        assert batch[key].shape == (7, 4), key
    assert batch["is_first"].dtype == bool and batch["is_terminal"].dtype == bool


def test_task_id_per_sequence():
    replay = EpisodeReplay(capacity=10_000)
    # episode id encodes the task: ids 0..4 are task 3, ids 5..9 task 7
    for i in range(10):
        replay.add_episode(make_episode(i, 6), task_id=3 if i < 5 else 7)
    batch = replay.sample(np.random.default_rng(2), 300, 3)
    ep_ids = batch["obs"][:, 0, 0]
    expected = np.where(ep_ids < 5, 3, 7)
    np.testing.assert_array_equal(batch["task_id"], np.repeat(expected[:, None], 3, axis=1))
    assert set(np.unique(batch["task_id"])) == {3, 7}


def test_episodes_shorter_than_length_are_never_sampled():
    replay = EpisodeReplay(capacity=10_000)
    # even ids are short (3 steps), odd ids long enough
    for i in range(10):
        replay.add_episode(make_episode(i, 3 if i % 2 == 0 else 8))
    batch = replay.sample(np.random.default_rng(3), 500, 5)
    assert np.all(batch["obs"][:, 0, 0] % 2 == 1)
    assert_contiguous(batch, 5)


def test_exact_length_episode_is_sampled_from_its_start():
    replay = EpisodeReplay(capacity=10_000)
    fill(replay, [4, 2, 1])
    batch = replay.sample(np.random.default_rng(0), 50, 4)
    assert np.all(batch["obs"][:, :, 0] == 0)
    assert np.all(batch["obs"][:, 0, 1] == 0)


def test_sampling_with_no_long_enough_episode_raises():
    replay = EpisodeReplay(capacity=10_000)
    fill(replay, [3, 4, 2])
    assert replay.can_sample(4)
    assert not replay.can_sample(5)
    with pytest.raises(ValueError, match="5"):
        replay.sample(np.random.default_rng(0), 4, 5)


def test_sampling_an_empty_replay_raises():
    replay = EpisodeReplay(capacity=100)
    assert not replay.can_sample(1)
    with pytest.raises(ValueError):
        replay.sample(np.random.default_rng(0), 2, 2)


def test_mismatched_field_lengths_rejected():
    ep = make_episode(0, 5)
    ep["obs"] = ep["obs"][:4]
    replay = EpisodeReplay(capacity=100)
    with pytest.raises(ValueError):
        replay.add_episode(ep)
    assert len(replay) == 0 and len(replay.episodes) == 0


def test_len_counts_steps():
    replay = EpisodeReplay(capacity=1000)
    fill(replay, [3, 5, 7])
    assert len(replay) == 15


def test_capacity_evicts_oldest_episodes():
    replay = EpisodeReplay(capacity=25)
    fill(replay, [10, 10, 10])
    assert len(replay) == 20
    assert [int(ep["obs"][0, 0]) for ep in replay.episodes] == [1, 2]
    assert list(replay.task_ids) == [0, 0]
    batch = replay.sample(np.random.default_rng(0), 300, 2)
    assert set(np.unique(batch["obs"][:, :, 0]).astype(int)) == {1, 2}
    fill(replay, [24], start_id=3)
    # 20 + 24 > 25: evict oldest until within capacity (only the newest one is left)
    assert [int(ep["obs"][0, 0]) for ep in replay.episodes] == [3]
    assert len(replay) == 24


def test_capacity_eviction_keeps_task_ids_aligned():
    replay = EpisodeReplay(capacity=12)
    for i, task in enumerate([5, 6, 7, 8]):
        replay.add_episode(make_episode(i, 4), task)
    assert list(replay.task_ids) == [6, 7, 8]
    batch = replay.sample(np.random.default_rng(0), 200, 2)
    np.testing.assert_array_equal(batch["task_id"][:, 0], batch["obs"][:, 0, 0] + 5)


def test_single_episode_larger_than_capacity_is_kept():
    replay = EpisodeReplay(capacity=5)
    fill(replay, [8])
    assert len(replay) == 8 and len(replay.episodes) == 1
    assert replay.can_sample(8)


def _two_task_replay(balance: bool) -> EpisodeReplay:
    replay = EpisodeReplay(capacity=100_000, balance_tasks=balance)
    for i in range(10):
        replay.add_episode(make_episode(i, 100), task_id=0)        # long episodes
    for i in range(10, 30):
        replay.add_episode(make_episode(i, 4), task_id=1)          # short episodes
    return replay


def test_balanced_tasks_are_drawn_equally():
    replay = _two_task_replay(True)
    batch = replay.sample(np.random.default_rng(0), 8000, 2)
    frac = (batch["task_id"][:, 0] == 1).mean()
    assert abs(frac - 0.5) < 0.03, frac
    assert_contiguous(batch, 2)


def test_unbalanced_tasks_are_drawn_by_steps():
    replay = _two_task_replay(False)
    batch = replay.sample(np.random.default_rng(0), 8000, 2)
    frac = (batch["task_id"][:, 0] == 1).mean()
    # valid start points: task 0: 10 * 99, task 1: 20 * 3 -> ~5.7% for task 1
    expected = 60 / (990 + 60)
    assert abs(frac - expected) < 0.015, frac
    assert frac < 0.1


def test_balanced_task_with_no_long_enough_episode_is_not_sampled():
    replay = EpisodeReplay(capacity=10_000, balance_tasks=True)
    for i in range(3):
        replay.add_episode(make_episode(i, 10), task_id=0)
    for i in range(3, 6):
        replay.add_episode(make_episode(i, 2), task_id=1)
    batch = replay.sample(np.random.default_rng(0), 200, 4)
    assert np.all(batch["task_id"] == 0)


def test_balance_within_a_task_is_by_start_points():
    replay = EpisodeReplay(capacity=10_000, balance_tasks=True)
    replay.add_episode(make_episode(0, 91), 0)  # 90 starts for L=2
    replay.add_episode(make_episode(1, 11), 0)  # 10 starts
    replay.add_episode(make_episode(2, 5), 1)
    batch = replay.sample(np.random.default_rng(0), 8000, 2)
    ep = batch["obs"][:, 0, 0]
    assert abs((ep == 2).mean() - 0.5) < 0.03
    assert abs((ep == 0).mean() - 0.45) < 0.03
    assert abs((ep == 1).mean() - 0.05) < 0.015


def test_deterministic_under_seeded_generator():
    replay = EpisodeReplay(capacity=10_000)
    fill(replay, [5, 9, 13, 2, 8], task_ids=[0, 1, 0, 1, 2])
    a = replay.sample(np.random.default_rng(42), 64, 3)
    b = replay.sample(np.random.default_rng(42), 64, 3)
    c = replay.sample(np.random.default_rng(43), 64, 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["obs"], c["obs"])


def test_state_dict_round_trip_gives_identical_samples():
    src = EpisodeReplay(capacity=60)
    fill(src, [10, 12, 7, 15, 9, 20], task_ids=[0, 1, 0, 1, 0, 1])
    state = pickle.loads(pickle.dumps(src.state_dict()))  # as a checkpoint would
    dst = EpisodeReplay(capacity=1)
    dst.load_state_dict(state)
    assert dst.capacity == 60
    assert len(dst) == len(src)
    assert list(dst.task_ids) == list(src.task_ids)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    for length in (2, 5):
        a, b = src.sample(rng_a, 32, length), dst.sample(rng_b, 32, length)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    # the rng is advanced identically, and both evict the same way afterwards
    src_next, dst_next = copy.deepcopy(src), copy.deepcopy(dst)
    fill(src_next, [30], task_ids=[1], start_id=50)
    fill(dst_next, [30], task_ids=[1], start_id=50)
    assert len(src_next) == len(dst_next) <= 60
    assert list(src_next.task_ids) == list(dst_next.task_ids)
    a, b = src_next.sample(rng_a, 16, 3), dst_next.sample(rng_b, 16, 3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


# -- reward-skewed sampling -------------------------------------------------------------------------
def _sparse_replay() -> EpisodeReplay:
    """Ten 30-step episodes; only (episode 3, t 7) and (episode 8, t 29) pay a positive reward."""
    replay = EpisodeReplay(10_000)
    for i in range(10):
        ep = make_episode(i, 30)
        ep["reward"][:] = -0.1
        replay.add_episode(ep)
    replay.episodes[3]["reward"][7] = 1.0
    replay.episodes[8]["reward"][29] = 1.0
    return replay


def test_rewarding_fraction_draws_sequences_that_end_on_a_positive_reward():
    replay = _sparse_replay()
    batch = replay.sample(np.random.default_rng(0), 40, 3, rewarding=0.25)
    assert_contiguous(batch, 3)
    ends = batch["reward"][:, -1] > 0
    assert ends.sum() >= 10  # 10 drawn on purpose; plain draws may add a few more
    ended = {(int(s[-1, 0]), int(s[-1, 1])) for s in batch["obs"][ends]}
    assert ended == {(3, 7), (8, 29)}  # both rewarding steps, each as a sequence's last step
    plain = replay.sample(np.random.default_rng(0), 400, 3)
    assert (plain["reward"][:, -1] > 0).mean() < 0.05


def test_rewarding_zero_or_without_rewards_is_plain_sampling():
    replay = _sparse_replay()
    a = replay.sample(np.random.default_rng(5), 16, 2)
    b = replay.sample(np.random.default_rng(5), 16, 2, rewarding=0.0)
    assert all(np.array_equal(a[k], b[k]) for k in a)  # same draws, same random stream
    for ep in replay.episodes:
        ep["reward"][:] = -0.1
    batch = replay.sample(np.random.default_rng(5), 16, 2, rewarding=0.5)
    assert batch["obs"].shape[0] == 16 and not (batch["reward"] > 0).any()


def test_rewarding_draws_follow_added_and_evicted_episodes():
    """The rewarding sequences are cached between batches; adding or evicting an episode must
    renew them, so skewed draws match those of a replay built afresh with the same episodes."""
    replay = _sparse_replay()
    replay.capacity = 300  # room for exactly the ten 30-step episodes
    replay.sample(np.random.default_rng(0), 8, 3, rewarding=0.5)      # builds the cache
    extra = make_episode(10, 30)
    extra["reward"][:] = -0.1
    extra["reward"][12] = 1.0
    replay.add_episode(extra)                                          # evicts episode 0
    fresh = EpisodeReplay(300)
    fresh.load_state_dict(copy.deepcopy(replay.state_dict()))
    a = replay.sample(np.random.default_rng(1), 60, 3, rewarding=0.5)
    b = fresh.sample(np.random.default_rng(1), 60, 3, rewarding=0.5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    ended = {(int(s[-1, 0]), int(s[-1, 1])) for s in a["obs"][a["reward"][:, -1] > 0]}
    assert ended == {(3, 7), (8, 29), (10, 12)}


@pytest.mark.parametrize("absorbing", [False, True])
def test_ages_count_the_steps_stored_since_a_windows_first_step(absorbing):
    from lightning_wm.agents.protocol import AbsorbingOptions
    from lightning_wm.data.absorbing import make_replay

    lengths = [5, 3, 7, 4]
    replay = make_replay(17, AbsorbingOptions() if absorbing else None, ages=True)
    fill(replay, lengths)  # capacity 17: the first episode (5 steps) is evicted
    assert len(replay) == 14
    # the newest step has age 1; episode e's step t: the steps of later episodes + len(e) - t
    expected = {(1, t): 3 - t + 11 for t in range(3)}
    expected |= {(2, t): 7 - t + 4 for t in range(7)}
    expected |= {(3, t): 4 - t for t in range(4)}
    batch = replay.sample(np.random.default_rng(0), 64, 2)
    first = batch["obs"][:, 0].astype(int)
    assert batch["age"].dtype == np.int64 and batch["age"].shape == (64,)
    assert [expected[(e, t)] for e, t in first] == batch["age"].tolist()
    # without ages the batch and its random draws are as before
    plain = make_replay(17, AbsorbingOptions() if absorbing else None)
    fill(plain, lengths)
    other = plain.sample(np.random.default_rng(0), 64, 2)
    assert "age" not in other and all(np.array_equal(other[k], batch[k]) for k in other)
