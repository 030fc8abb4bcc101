"""Collector (the only code that steps envs) and the PadSpaces wrapper, on the Corridor env."""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest

from lightning_wm.data.collector import (
    Collector,
    action_width,
    derive_seed,
    random_actions,
    to_env_action,
)
from lightning_wm.data.replay import EpisodeReplay
from lightning_wm.envs.corridor import Corridor
from lightning_wm.envs.wrappers import PadSpaces

ACTION_DIM = 2


def corridor_factory(length=6, slip=0.0, max_steps=None, step_cost=0.01):
    # task 1 is the inverted corridor, so stored observations reveal their task
    return lambda task: Corridor(length=length, slip=slip, invert=(task == 1),
                                 step_cost=step_cost, max_steps=max_steps)


def make_collector(num_envs=1, seed=0, tasks=(0,), action_dim=ACTION_DIM, sampling="round_robin", **env):
    return Collector(corridor_factory(**env), list(tasks), num_envs, action_dim, seed, sampling)


def right_policy(width=ACTION_DIM):
    def policy(obs, is_first):
        out = np.zeros((len(obs), width), np.float32)
        out[:, 1] = 1.0
        return out
    return policy


def in_flight_steps(collector):
    return sum(len(s.steps["reward"]) - 1 for s in collector.slots if s.obs is not None)


def stored_steps(replay):
    return sum(len(ep["reward"]) - 1 for ep in replay.episodes)


def assert_same_replay(a: EpisodeReplay, b: EpisodeReplay):
    assert list(a.task_ids) == list(b.task_ids)
    assert len(a.episodes) == len(b.episodes)
    for ea, eb in zip(a.episodes, b.episodes):
        for k in ea:
            np.testing.assert_array_equal(ea[k], eb[k])


# -- env steps ------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_envs,n", [(1, 37), (3, 30), (3, 31), (3, 32), (3, 1), (4, 13)])
def test_collect_steps_every_slot_and_counts_each_step(num_envs, n):
    collector = make_collector(num_envs=num_envs, length=5)
    replay = EpisodeReplay(10_000)
    collector.collect(None, n, replay)
    per_call = -(-n // num_envs) * num_envs  # all slots step together: round up to a multiple
    assert collector.env_steps == per_call
    # every env step is either in a stored episode or in one still in flight
    assert stored_steps(replay) + in_flight_steps(collector) == per_call
    collector.collect(None, n, replay)
    assert collector.env_steps == 2 * per_call
    assert stored_steps(replay) + in_flight_steps(collector) == 2 * per_call


def test_collect_with_policy_counts_every_step():
    collector = make_collector(num_envs=3, length=4)
    replay = EpisodeReplay(10_000)
    returns = collector.collect(right_policy(), 11, replay)
    assert collector.env_steps == 12  # 11 rounded up to a multiple of the 3 slots
    assert stored_steps(replay) + in_flight_steps(collector) == 12
    # always right on length 4: 3 steps per episode, each with the optimal return
    assert all(len(ep["reward"]) == 4 for ep in replay.episodes)
    assert len(returns) == len(replay.episodes) >= 3
    assert returns == pytest.approx([1 - 2 * 0.01] * len(returns))


def test_collect_returns_one_return_per_finished_episode():
    collector = make_collector(length=5)
    replay = EpisodeReplay(10_000)
    returns = collector.collect(None, 200, replay)
    assert len(returns) == len(replay.episodes)
    for r, ep in zip(returns, replay.episodes):
        assert r == pytest.approx(float(ep["reward"].sum()))


# -- episode contents -----------------------------------------------------------------------------
def test_finished_episodes_have_the_documented_layout():
    length, step_cost = 5, 0.05
    collector = make_collector(length=length, step_cost=step_cost)
    replay = EpisodeReplay(10_000)
    collector.collect(None, 300, replay)
    assert len(replay.episodes) >= 5
    truncated = 0
    for ep in replay.episodes:
        n = len(ep["reward"])
        assert ep["obs"].shape == (n, length)
        assert ep["action"].shape == (n, ACTION_DIM)
        assert ep["is_first"][0] and not ep["is_first"][1:].any()
        np.testing.assert_array_equal(ep["action"][0], np.zeros(ACTION_DIM))
        assert ep["reward"][0] == 0.0
        # one-hot actions after the first step
        assert np.all(ep["action"][1:].sum(-1) == 1.0)
        assert set(np.unique(ep["action"][1:])) <= {0.0, 1.0}
        pos = ep["obs"].argmax(-1)
        assert pos[0] == 0
        # the env dynamics (no slip): each action moves one cell, clipped at the walls
        moves = np.where(ep["action"][1:].argmax(-1) == 1, 1, -1)
        np.testing.assert_array_equal(pos[1:], np.clip(pos[:-1] + moves, 0, length - 1))
        # the goal is reached only on the last step; otherwise the episode was truncated
        assert not (pos[:-1] == length - 1).any()
        reached = pos[-1] == length - 1
        if not reached:
            assert n - 1 == 4 * length  # Corridor's default max_steps
            truncated += 1
        # terminal exactly on the goal step
        terminal = np.zeros(n, bool)
        terminal[-1] = reached
        np.testing.assert_array_equal(ep["is_terminal"], terminal)
        # rewards exactly as the env gives
        np.testing.assert_allclose(ep["reward"][1:-1], -step_cost)
        assert ep["reward"][-1] == pytest.approx(1.0 if reached else -step_cost)
    assert truncated < len(replay.episodes)  # most episodes reach the goal


def test_truncated_episode_is_not_terminal():
    collector = make_collector(length=30, max_steps=5)
    replay = EpisodeReplay(10_000)
    returns = collector.collect(None, 20, replay)
    assert len(replay.episodes) == 4
    for ep in replay.episodes:
        assert len(ep["reward"]) == 6
        assert not ep["is_terminal"].any()
        np.testing.assert_allclose(ep["reward"][1:], -0.01)
    assert returns == pytest.approx([-0.05] * 4)


def test_is_first_flags_reach_the_policy():
    seen = []

    def policy(obs, is_first):
        seen.append((obs.copy(), is_first.copy()))
        return right_policy()(obs, is_first)

    collector = make_collector(num_envs=2, length=4)
    collector.collect(policy, 20, EpisodeReplay(10_000))
    for obs, first in seen:
        assert obs.shape == (2, 4)
        # always right: cell 0 is only ever seen at an episode's start
        np.testing.assert_array_equal(first, obs[:, 0] == 1.0)
    assert sum(f.sum() for _, f in seen) > 2


def test_policy_sees_each_observation_of_a_slot_once():
    seen = []

    def policy(obs, is_first):
        seen.append(obs.argmax(-1))
        return right_policy()(obs, is_first)

    collector = make_collector(num_envs=2, length=20)
    replay = EpisodeReplay(10_000)
    collector.collect(policy, 3, replay)  # slot 0 steps twice, slot 1 once
    collector.collect(policy, 3, replay)
    assert collector.env_steps == 8  # all slots step together: each call of 3 does 4
    # always right on a long corridor: a slot's observations strictly advance, unless the
    # policy is shown an observation twice
    for slot in range(2):
        positions = [int(p[slot]) for p in seen]
        assert all(b > a for a, b in zip(positions, positions[1:])), (slot, positions)


# -- determinism ----------------------------------------------------------------------------------
def test_same_seed_same_replay_different_seed_differs():
    replays = []
    for seed in (3, 3, 4):
        collector = make_collector(num_envs=2, seed=seed, length=6, slip=0.3)
        replay = EpisodeReplay(10_000)
        collector.collect(None, 150, replay)
        collector.collect(right_policy(), 100, replay)
        replays.append(replay)
    assert_same_replay(replays[0], replays[1])
    a, c = replays[0], replays[2]
    assert len(a.episodes) != len(c.episodes) or any(
        not np.array_equal(ea["obs"], ec["obs"]) for ea, ec in zip(a.episodes, c.episodes))


def test_slip_is_seeded_by_the_collector():
    # with a fixed (always right) policy only the env's slip RNG differs between seeds
    def run(seed):
        collector = make_collector(seed=seed, length=6, slip=0.4)
        replay = EpisodeReplay(10_000)
        collector.collect(right_policy(), 150, replay)
        return replay
    assert_same_replay(run(1), run(1))
    a, b = run(1), run(2)
    assert len(a.episodes) != len(b.episodes) or any(
        not np.array_equal(ea["obs"], eb["obs"]) for ea, eb in zip(a.episodes, b.episodes))


def test_evaluate_is_deterministic_for_the_same_index():
    collector = make_collector(length=6, slip=0.4)
    policy = right_policy()
    a = collector.evaluate(policy, 0, 5, index=3)
    b = collector.evaluate(policy, 0, 5, index=3)
    other = make_collector(length=6, slip=0.4)
    other.collect(None, 50, EpisodeReplay(10_000))  # training collection must not disturb eval
    c = other.evaluate(policy, 0, 5, index=3)
    assert a == b == c
    assert len({collector.evaluate(policy, 0, 5, index=i) for i in range(6)}) > 1


@pytest.mark.parametrize("length,step_cost", [(2, 0.01), (6, 0.01), (9, 0.1)])
def test_evaluate_optimal_policy_scores_optimal_return(length, step_cost):
    collector = make_collector(length=length, step_cost=step_cost)
    score = collector.evaluate(right_policy(), 0, 3, index=0)
    assert score == pytest.approx(1 - (length - 2) * step_cost)


def test_evaluate_passes_is_first_once_per_episode():
    firsts = []

    def policy(obs, is_first):
        assert obs.shape == (1, 5)
        firsts.append(bool(is_first[0]))
        return right_policy()(obs, is_first)

    make_collector(length=5).evaluate(policy, 0, 3, index=0)
    assert firsts == [True, False, False, False] * 3


def slip_policy(obs, is_first):
    """Right unless the observation's last cell is set: a policy that depends on what it sees."""
    out = np.zeros((len(obs), ACTION_DIM), np.float32)
    out[np.arange(len(obs)), (obs[:, -1] < 0.5).astype(int)] = 1.0
    return out


@pytest.mark.parametrize("num_envs", [2, 3, 8])
def test_evaluation_in_groups_of_the_slot_count_matches_one_episode_at_a_time(num_envs):
    """Episode e is seeded by e whatever group it is in, so a stateless greedy policy scores
    the same in lock-step groups as one episode at a time (episodes differ in length here)."""
    one = make_collector(1, length=7, slip=0.4)
    wide = make_collector(num_envs, length=7, slip=0.4)
    for index in range(3):
        assert wide.evaluate(slip_policy, 0, 5, index) == pytest.approx(
            one.evaluate(slip_policy, 0, 5, index))
    assert len(wide.eval_envs[0]) == min(num_envs, 5)


def test_grouped_evaluation_feeds_finished_episodes_and_flags_each_group_start():
    """Two groups of three, then one of one (7 episodes, 3 slots): every policy call sees the
    whole group, ``is_first`` is set on a group's first call only, and each episode counts."""
    calls = []

    def policy(obs, is_first):
        calls.append((len(obs), tuple(is_first)))
        return right_policy()(obs, is_first)

    collector = make_collector(3, length=5)
    assert collector.evaluate(policy, 0, 7, index=0) == pytest.approx(1 - 3 * 0.01)
    group = [(3, (True,) * 3)] + [(3, (False,) * 3)] * 3
    assert calls == group + group + [(1, (True,))] + [(1, (False,))] * 3


def test_derive_seed_is_deterministic_and_distinct():
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3)
    assert derive_seed(1, 2, 3) != derive_seed(1, 2, 4)
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert isinstance(derive_seed(0), int)


# -- tasks ----------------------------------------------------------------------------------------
def test_round_robin_alternates_tasks_per_episode():
    collector = make_collector(tasks=(0, 1), length=4)
    replay = EpisodeReplay(10_000)
    collector.collect(None, 200, replay)
    ids = list(replay.task_ids)
    assert len(ids) >= 6
    assert ids == [i % 2 for i in range(len(ids))]
    for task, ep in zip(ids, replay.episodes):
        # task 1 is the inverted corridor
        assert (ep["obs"].min() < 0) == (task == 1)


def test_round_robin_three_tasks():
    collector = Collector(lambda t: Corridor(length=3 + t), [0, 1, 2], 1, ACTION_DIM, 0)
    replay = EpisodeReplay(10_000)
    collector.collect(right_policy(), 30, replay)
    ids = list(replay.task_ids)
    assert ids[:6] == [0, 1, 2, 0, 1, 2]
    for task, ep in zip(ids, replay.episodes):
        assert ep["obs"].shape[1] == 3 + task


def test_uniform_task_sampling_uses_every_task():
    collector = make_collector(tasks=(0, 1), length=3, sampling="uniform")
    replay = EpisodeReplay(10_000)
    collector.collect(None, 400, replay)
    assert set(replay.task_ids) == {0, 1}


def test_unknown_task_sampling_rejected():
    with pytest.raises(ValueError, match="task_sampling"):
        make_collector(sampling="random")


# -- action conversion ----------------------------------------------------------------------------
def test_to_env_action_discrete_argmax_of_first_n():
    space = gym.spaces.Discrete(3)
    assert to_env_action(space, np.array([0.1, 0.7, 0.2, 0.0])) == 1
    # padding is ignored even when it holds the largest value
    assert to_env_action(space, np.array([0.0, 0.0, 0.3, 9.0, 5.0])) == 2
    assert isinstance(to_env_action(space, np.array([1.0, 0.0, 0.0, 0.0])), int)


def test_to_env_action_box_clipped_and_sliced():
    space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))
    action = to_env_action(space, np.array([5.0, -3.0, 7.0, 7.0]))
    np.testing.assert_array_equal(action, [1.0, 0.0])
    assert action.shape == (2,) and action.dtype == np.float32
    inner = to_env_action(space, np.array([0.25, 1.5, -9.0]))
    np.testing.assert_allclose(inner, [0.25, 1.5])
    assert space.contains(inner)


def test_to_env_action_box_reshapes_to_space():
    space = gym.spaces.Box(-1.0, 1.0, (2, 2), np.float32)
    action = to_env_action(space, np.array([0.5, -2.0, 2.0, 0.1, 9.0]))
    assert action.shape == (2, 2)
    np.testing.assert_allclose(action, [[0.5, -1.0], [1.0, 0.1]])


def test_to_env_action_rejects_other_spaces():
    with pytest.raises(TypeError):
        to_env_action(gym.spaces.MultiBinary(3), np.zeros(3))


def test_action_width():
    assert action_width(gym.spaces.Discrete(4)) == 4
    assert action_width(gym.spaces.Box(-1, 1, (2, 3))) == 6
    with pytest.raises(TypeError):
        action_width(gym.spaces.MultiBinary(2))


def test_random_actions_discrete_one_hot():
    rng = np.random.default_rng(0)
    spaces = [gym.spaces.Discrete(3), gym.spaces.Discrete(2)]
    counts = np.zeros((2, 5))
    for _ in range(300):
        a = random_actions(rng, spaces, 5)
        assert a.shape == (2, 5) and a.dtype == np.float32
        np.testing.assert_array_equal(a.sum(-1), [1.0, 1.0])
        assert set(np.unique(a)) <= {0.0, 1.0}
        counts += a
    # only the first n entries are ever used, and each of them is
    assert np.all(counts[0, :3] > 0) and np.all(counts[0, 3:] == 0)
    assert np.all(counts[1, :2] > 0) and np.all(counts[1, 2:] == 0)


def test_random_actions_box_in_bounds():
    rng = np.random.default_rng(0)
    space = gym.spaces.Box(np.array([-1.0, 2.0], np.float32), np.array([0.0, 5.0], np.float32))
    a = np.concatenate([random_actions(rng, [space, space], 4) for _ in range(200)])
    assert np.all(a[:, 0] >= -1.0) and np.all(a[:, 0] <= 0.0)
    assert np.all(a[:, 1] >= 2.0) and np.all(a[:, 1] <= 5.0)
    assert np.all(a[:, 2:] == 0.0)
    assert a[:, 0].std() > 0.1 and a[:, 1].std() > 0.5  # actually random


def test_random_actions_deterministic_for_seeded_rng():
    spaces = [gym.spaces.Discrete(4), gym.spaces.Box(-1.0, 1.0, (3,), np.float32)]
    a = random_actions(np.random.default_rng(5), spaces, 4)
    b = random_actions(np.random.default_rng(5), spaces, 4)
    np.testing.assert_array_equal(a, b)


# -- resume ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_envs", [1, 3])
def test_state_dict_mid_episode_continues_identically(num_envs):
    kwargs = dict(num_envs=num_envs, seed=11, tasks=(0, 1), length=7, slip=0.3)
    a = make_collector(**kwargs)
    replay_a = EpisodeReplay(10_000)
    a.collect(None, 23, replay_a)
    assert any(s.obs is not None and len(s.steps["reward"]) > 1 for s in a.slots)  # mid-episode
    state = copy.deepcopy(a.state_dict())
    assert state["in_flight"] is not None
    replay_state = copy.deepcopy(replay_a.state_dict())

    ret_a = a.collect(None, 60, replay_a)
    ret_a += a.collect(right_policy(), 40, replay_a)

    b = make_collector(**kwargs)
    b.collect(None, 5, EpisodeReplay(10_000))  # stale state that the load must replace
    replay_b = EpisodeReplay(10_000)
    replay_b.load_state_dict(replay_state)
    b.load_state_dict(state)
    first = -(-23 // num_envs) * num_envs
    assert b.env_steps == first and b.episodes_started == state["episodes_started"]
    ret_b = b.collect(None, 60, replay_b)
    ret_b += b.collect(right_policy(), 40, replay_b)

    assert a.env_steps == b.env_steps == first + 60 + -(-40 // num_envs) * num_envs
    assert ret_a == ret_b
    assert_same_replay(replay_a, replay_b)
    # the interrupted episodes were finished, not restarted: step counts still add up
    assert stored_steps(replay_b) + in_flight_steps(b) == b.env_steps


def test_load_state_without_in_flight_restarts_episodes():
    a = make_collector(length=30)
    replay = EpisodeReplay(10_000)
    a.collect(None, 7, replay)
    state = a.state_dict()
    state["in_flight"] = None  # as for envs that cannot be pickled
    b = make_collector(length=30)
    b.load_state_dict(state)
    assert all(s.obs is None for s in b.slots)
    b.collect(None, 3, replay)
    assert b.env_steps == 10
    assert b.episodes_started == a.episodes_started + 1
    assert len(b.slots[0].steps["reward"]) == 4  # a fresh episode of 3 steps


def test_in_flight_none_when_envs_cannot_be_pickled():
    import threading

    class Unpicklable(Corridor):
        def __init__(self):
            super().__init__(length=20)
            self.lock = threading.Lock()

    c = Collector(lambda t: Unpicklable(), [0], 1, ACTION_DIM, 0)
    c.collect(None, 3, EpisodeReplay(100))
    assert c.state_dict()["in_flight"] is None


# -- PadSpaces ------------------------------------------------------------------------------------
class RecordingBoxEnv(gym.Env):
    """A tiny continuous env that records the actions it receives."""

    def __init__(self, shape=(2,)):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        size = int(np.prod(shape))
        self.action_space = gym.spaces.Box(np.linspace(-1, -2, size).reshape(shape).astype(np.float32),
                                           np.linspace(1, 2, size).reshape(shape).astype(np.float32))
        self.received = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([0.1, 0.2, 0.3], np.float32), {}

    def step(self, action):
        self.received.append(np.array(action, copy=True))
        return np.array([0.4, 0.5, 0.6], np.float32), 0.0, False, False, {}


def test_pad_spaces_pads_observation_with_zeros():
    env = PadSpaces(Corridor(length=5), obs_dim=8)
    assert env.observation_space.shape == (8,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [1, 0, 0, 0, 0, 0, 0, 0])
    assert obs.dtype == np.float32
    obs, reward, terminated, truncated, _ = env.step(1)
    np.testing.assert_array_equal(obs, [0, 1, 0, 0, 0, 0, 0, 0])
    assert env.observation_space.contains(obs)
    assert reward == pytest.approx(-0.01) and not terminated and not truncated


def test_pad_spaces_same_obs_dim_is_unchanged():
    env = PadSpaces(Corridor(length=5), obs_dim=5)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [1, 0, 0, 0, 0])


def test_pad_spaces_widens_box_action_and_ignores_extra_dims():
    inner = RecordingBoxEnv()
    env = PadSpaces(inner, obs_dim=5, action_dim=5)
    assert env.action_space.shape == (5,)
    np.testing.assert_allclose(env.action_space.low, [-1, -2, -1, -1, -1])
    np.testing.assert_allclose(env.action_space.high, [1, 2, 1, 1, 1])
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, [0.1, 0.2, 0.3, 0, 0])
    obs, *_ = env.step(np.array([0.5, -1.5, 0.9, -0.9, 0.3], np.float32))
    np.testing.assert_allclose(obs, [0.4, 0.5, 0.6, 0, 0])
    assert len(inner.received) == 1
    np.testing.assert_allclose(inner.received[0], [0.5, -1.5])
    assert inner.received[0].shape == (2,)


def test_pad_spaces_box_env_driven_by_collector():
    inner = RecordingBoxEnv()
    env = PadSpaces(inner, action_dim=4)
    vec = np.array([3.0, -3.0, 0.7, 0.7], np.float32)
    env.reset(seed=0)
    env.step(to_env_action(env.action_space, vec))
    np.testing.assert_allclose(inner.received[0], [1.0, -2.0])  # clipped to the env's own bounds
    assert inner.action_space.contains(inner.received[0].astype(np.float32))


def test_pad_spaces_restores_non_flat_action_shape():
    inner = RecordingBoxEnv(shape=(2, 2))
    env = PadSpaces(inner, action_dim=6)
    assert env.action_space.shape == (6,)
    env.reset(seed=0)
    env.step(np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.9], np.float32))
    assert inner.received[0].shape == (2, 2)
    np.testing.assert_allclose(inner.received[0], [[0.1, 0.2], [0.3, 0.4]])


def test_pad_spaces_leaves_discrete_actions_alone():
    env = PadSpaces(Corridor(length=4), obs_dim=6, action_dim=5)
    assert isinstance(env.action_space, gym.spaces.Discrete) and env.action_space.n == 2
    env.reset(seed=0)
    obs, *_ = env.step(1)
    np.testing.assert_array_equal(obs, [0, 1, 0, 0, 0, 0])


def test_pad_spaces_without_targets_is_identity():
    env = PadSpaces(RecordingBoxEnv())
    assert env.observation_space.shape == (3,) and env.action_space.shape == (2,)
    env.reset(seed=0)
    env.step(np.array([0.2, 0.3], np.float32))
    np.testing.assert_allclose(env.env.received[0], [0.2, 0.3])


def test_pad_spaces_rejects_smaller_targets():
    with pytest.raises(ValueError, match="obs_dim"):
        PadSpaces(Corridor(length=5), obs_dim=4)
    with pytest.raises(ValueError, match="action_dim"):
        PadSpaces(RecordingBoxEnv(), action_dim=1)


def test_evaluation_epsilon_is_seeded_and_takes_random_actions():
    collector = make_collector(length=6)
    greedy = collector.evaluate(right_policy(), 0, 3, index=0)
    noisy = [collector.evaluate(right_policy(), 0, 3, index=0, epsilon=0.9) for _ in range(2)]
    assert greedy == pytest.approx(1 - 4 * 0.01)   # always right: optimal
    assert noisy[0] == noisy[1]                     # same index, same random actions
    assert noisy[0] < greedy                        # random moves cost steps


def test_evaluation_plays_the_evaluation_envs_and_training_its_own():
    # training on a costly corridor, evaluated on a free one (as Atari trains on clipped rewards
    # and scores raw game points)
    collector = Collector(corridor_factory(length=6, step_cost=0.1), [0], 1, ACTION_DIM, 0,
                          make_eval_env=corridor_factory(length=6, step_cost=0.0))
    assert collector.evaluate(right_policy(), 0, 2, index=0) == pytest.approx(1.0)
    replay = EpisodeReplay(10_000)
    returns = collector.collect(right_policy(), 5, replay)
    assert returns == [pytest.approx(1 - 4 * 0.1)]


# -- segments of episodes in play -------------------------------------------------------------------
def _windows(episodes, length):
    """Every ``length``-step window of ``episodes`` (each field's bytes), as a sorted list."""
    out = []
    for ep in episodes:
        for o in range(len(ep["reward"]) - length + 1):
            out.append(tuple(np.asarray(ep[k][o:o + length]).tobytes()
                             for k in ("obs", "action", "reward", "is_terminal")))
    return sorted(out)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_segments_hold_every_window_of_the_whole_episodes_once(num_envs):
    # a long corridor walked at random: episodes of dozens of steps, cut every 7 steps
    whole = Collector(corridor_factory(length=12, max_steps=60), [0], num_envs, ACTION_DIM, 3)
    cut = Collector(corridor_factory(length=12, max_steps=60), [0], num_envs, ACTION_DIM, 3,
                    segment_steps=7, overlap=2)
    a, b = EpisodeReplay(10**6), EpisodeReplay(10**6)
    whole.collect(None, 300, a)
    cut.collect(None, 300, b)
    assert len(a.episodes) >= 2 and any(len(ep["reward"]) > 7 for ep in a.episodes)
    assert all(len(ep["reward"]) <= 7 for ep, c in zip(b.episodes, b.continues) if c)
    # the steps in flight too (each slot's episode so far), in both replays
    whole.flush_in_flight(a)
    cut.flush_in_flight(b)
    assert _windows(b.episodes, 3) == _windows(a.episodes, 3)  # overlap 2: windows of 3, once
    assert sum(b.continues) > 0 and stored_steps(b) > stored_steps(a)


def test_a_segment_continues_with_the_last_overlap_steps_and_their_real_fields():
    c = Collector(corridor_factory(length=40, max_steps=100), [0], 1, ACTION_DIM, 0,
                  segment_steps=5, overlap=2)
    replay = EpisodeReplay(10**6)
    c.collect(None, 9, replay)  # the episode's first 10 steps (reset + 9): two segments
    first, second = replay.episodes[0], replay.episodes[1]
    assert list(replay.continues) == [True, True]
    assert len(first["reward"]) == 5 and first["is_first"][0] and not second["is_first"][0]
    for k in ("obs", "action", "reward", "is_first", "is_terminal"):
        np.testing.assert_array_equal(second[k][:2], first[k][-2:])


def test_segments_need_more_steps_than_their_overlap():
    with pytest.raises(ValueError, match="segment_steps"):
        Collector(corridor_factory(), [0], 1, ACTION_DIM, 0, segment_steps=3, overlap=3)
