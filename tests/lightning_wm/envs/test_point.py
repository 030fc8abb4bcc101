"""The point-mass env: spaces, dynamics, reward, truncation, seeding, pictures, pickling."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lightning_wm.envs import ENVS, make_env
from lightning_wm.envs.point import PointMass, render_points


@pytest.mark.parametrize("options", [{}, {"dim": 1}, {"image": True}, {"image": True, "dim": 1},
                                     {"discrete": True}])
def test_gymnasium_checker(options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(make_env("point", options), skip_render_check=True)


def test_registered_and_spaces():
    assert ENVS["point"] is PointMass
    env = PointMass()
    assert env.observation_space.shape == (4,) and env.action_space.shape == (2,)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and np.array_equal(obs, np.concatenate([env.pos, env.goal]))
    img = PointMass(image=True)
    assert img.observation_space.shape == (3, 64, 64) and img.observation_space.dtype == np.uint8
    with pytest.raises(ValueError):
        PointMass(dim=3)


def test_moves_pays_minus_distance_and_truncates():
    env = PointMass(max_steps=3, speed=0.1, goal=(0.5, 0.5))
    env.reset(seed=1)
    env.pos = np.array([0.0, 0.0], np.float32)
    _, r, term, trunc, _ = env.step(np.array([1.0, 2.0]))  # clipped to (1, 1)
    assert np.allclose(env.pos, [0.1, 0.1])
    assert r == pytest.approx(-np.linalg.norm([0.4, 0.4])) and not term and not trunc
    env.step(np.zeros(2))
    _, _, term, trunc, _ = env.step(np.zeros(2))
    assert trunc and not term
    inverted = PointMass(invert_actions=True, goal=(0.5, 0.5))
    inverted.reset(seed=1)
    inverted.pos = np.zeros(2, np.float32)
    inverted.step(np.array([1.0, 0.0]))
    assert np.allclose(inverted.pos, [-0.1, 0.0])


def test_heading_for_the_goal_beats_random():
    env = PointMass()
    rng = np.random.default_rng(0)
    greedy, random = [], []
    for ep in range(10):
        for policy, out in ((None, random), ("greedy", greedy)):
            env.reset(seed=ep)
            total, done = 0.0, False
            while not done:
                a = (rng.uniform(-1, 1, 2) if policy is None
                     else np.clip((env.goal - env.pos) / 0.1, -1, 1))
                _, r, term, trunc, _ = env.step(a)
                total, done = total + r, term or trunc
            out.append(total)
    assert np.mean(random) < -30 and np.mean(greedy) > -10, (np.mean(random), np.mean(greedy))


def test_seeded_resets_and_pickling():
    a, b = PointMass(), PointMass()
    assert np.array_equal(a.reset(seed=3)[0], b.reset(seed=3)[0])
    a.step(np.array([0.3, -0.2]))
    clone = pickle.loads(pickle.dumps(a))
    assert np.array_equal(clone.step(np.ones(2))[0], a.step(np.ones(2))[0])


def test_picture_marks_point_and_goal():
    img = render_points(np.array([-1.0, -1.0]), np.array([1.0, 1.0]), 64)
    assert img.shape == (3, 64, 64) and img.dtype == np.uint8
    assert img[0, 0, 0] == 255 and img[1, 0, 0] == 0      # the point, top-left
    assert img[1, 63, 63] == 255 and img[0, 63, 63] == 0   # the goal, bottom-right
    assert img[2].max() == 0
    flat = render_points(np.array([0.0]), np.array([0.9]), 16)
    assert flat[0, 8].max() == 255 and flat[0, 0].max() == 0  # 1-D: on the middle row


def test_discrete_moves_are_stay_or_a_full_step_along_one_axis():
    env = make_env("point", {"discrete": True, "goal": [0.0, 0.0]})
    assert env.action_space.n == 5
    env.reset(seed=0)
    start = env.pos.copy()
    moved = []
    for a in range(5):
        env.pos = start.copy()
        env.step(a)
        moved.append(np.round((env.pos - start) / env.speed, 5).tolist())
    assert moved == [[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]]
    # the collector's one-hot vector maps onto these moves like any Discrete space
    from lightning_wm.data.collector import to_env_action
    assert to_env_action(env.action_space, np.eye(5, dtype=np.float32)[3]) == 3
