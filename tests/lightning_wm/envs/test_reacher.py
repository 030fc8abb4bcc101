"""The PyBullet Reacher task and its reward variants (REPAINT source tasks): spaces,
pybullet_envs' own reward kept as ``default``, the ``mirror`` and ``effort`` maths, option
checks, pickling mid-episode with a variant's own state, and the direction of ``mirror``
(seeded resets of every variant are checked with the other tasks' in test_pybullet.py)."""
from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pybullet")

from lightning_wm.envs import make_env  # noqa: E402
from lightning_wm.envs.pybullet import TASKS, PyBulletEnv  # noqa: E402
from lightning_wm.envs.pybullet.env import mirrored_potential, reacher_reward  # noqa: E402
from pybullet_helpers import actions, assert_same, rollout  # noqa: E402

VARIANTS = ("default", "mirror", "effort")


def reacher(reward: str = "default", obs: str = "proprio", **kw) -> PyBulletEnv:
    return PyBulletEnv("reacher", obs=obs, action_repeat=kw.pop("action_repeat", 1),
                       max_steps=kw.pop("max_steps", 150), reward=reward, **kw)


def xyz(part) -> np.ndarray:
    return np.array(part.pose().xyz(), np.float64)


def electricity(a: np.ndarray, robot) -> float:
    """pybullet_envs' Reacher electricity cost, by hand (its joint speeds after the step; the
    adapter hands it float64 actions)."""
    a = np.asarray(a, np.float64)
    return (-0.10 * (abs(a[0] * robot.theta_dot) + abs(a[1] * robot.gamma_dot))
            - 0.01 * (abs(a[0]) + abs(a[1])))


def stuck(robot) -> float:
    return -0.1 if abs(abs(robot.gamma) - 1) < 0.01 else 0.0


# -- spaces, seeding ------------------------------------------------------------------------------
def test_reacher_is_registered_with_its_variants():
    assert TASKS["reacher"].env_class == "ReacherBulletEnv"
    assert TASKS["reacher"].rewards == VARIANTS
    assert all(t.rewards == ("default",) for name, t in TASKS.items() if name != "reacher")


def test_proprio_and_pixels_reset_and_step():
    env = make_env("reacher", {"obs": "proprio", "action_repeat": 1, "max_steps": 150})
    assert env.observation_space.shape == (9,)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (9,) and info == {"env_steps": 0}
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and isinstance(reward, float)
    assert (terminated, truncated, info["env_steps"]) == (False, False, 1)
    env.close()
    env = make_env("reacher", {"reward": "mirror"})  # pixels, 64×64, repeat 2
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (3, 64, 64)
    obs, reward, *_ = env.step(np.zeros(2, np.float32))
    assert env.observation_space.contains(obs) and isinstance(reward, float)
    env.close()


def test_pixels_show_the_target_marker_and_the_arm():
    env = reacher(obs="pixels")
    for seed in range(3):
        img = env.reset(seed=seed)[0].astype(int)
        red = (img[0] > 150) & (img[1] < 80) & (img[2] < 80)
        blue = (img[2] > 150) & (img[0] < 120)
        assert red.sum() >= 4 and blue.sum() >= 10  # a 2 cm marker, 21 cm of arm
        t = xyz(env._inner.robot.target)
        rows, cols = np.nonzero(red)  # top-down, +x to the right and +y up
        assert np.sign(cols.mean() - 31.5) == np.sign(t[0]) or abs(t[0]) < 0.02
        assert np.sign(31.5 - rows.mean()) == np.sign(t[1]) or abs(t[1]) < 0.02
    env.close()


def test_truncates_at_max_steps():
    env = reacher(max_steps=5)
    env.reset(seed=0)
    assert [env.step(np.zeros(2))[2:4] for _ in range(5)] == [(False, False)] * 4 + [(False, True)]
    env.close()


# -- the variants ---------------------------------------------------------------------------------
def test_default_is_pybullet_envs_reward_bit_for_bit():
    """Against a bare pybullet_envs ReacherBulletEnv on a client of its own, seeded the same."""
    import pybullet
    from gymnasium.utils import seeding
    from pybullet_utils import bullet_client

    from lightning_wm.envs.pybullet._loader import load_classes, quiet_native_output

    with quiet_native_output():
        client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
    client.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
    bare = load_classes()["ReacherBulletEnv"]()
    bare._p, bare.physicsClientId, bare.ownsPhysicsClient = client, client._client, True
    bare.np_random = bare.robot.np_random = seeding.np_random(7)[0]
    env = reacher()
    obs, _ = env.reset(seed=7)
    np.testing.assert_array_equal(obs, np.asarray(bare.reset(), np.float32))
    for a in actions(env, 60, seed=3):
        obs, reward, *_ = env.step(a)
        state, expected, done, _ = bare.step(np.asarray(a, np.float64))
        assert reward == expected and not done
        np.testing.assert_array_equal(obs, np.asarray(state, np.float32))
    client.disconnect(), env.close()


def test_mirror_is_progress_towards_the_reflected_target():
    env = reacher("mirror")
    env.reset(seed=4)
    robot = env._inner.robot
    target = xyz(robot.target)
    goal = np.array([-target[0], -target[1], target[2]])
    for i, a in enumerate(actions(env, 5, seed=1)):
        before = xyz(robot.fingertip)
        _, reward, *_ = env.step(a)
        after = xyz(robot.fingertip)
        progress = -100 * np.linalg.norm(after - goal) + 100 * np.linalg.norm(before - goal)
        hand = progress + electricity(a, robot) + stuck(robot)
        assert reward == pytest.approx(hand, rel=1e-9, abs=1e-9)
        default = sum(env._inner.rewards)  # pybullet_envs' own reward for the same step
        # pybullet reports link positions as of the step's start, so the fingertip "moves" (and
        # both progress terms are non-zero) from the second step on
        if i > 0:
            assert reward != pytest.approx(default, abs=1e-6)
    env.close()


def test_mirror_potential_is_the_default_one_when_the_target_is_at_the_centre():
    tip = (0.1, -0.05, 0.01)
    assert mirrored_potential(tip, (0.0, 0.0, 0.01)) == pytest.approx(
        -100 * np.linalg.norm(np.subtract(tip, (0.0, 0.0, 0.01))))
    assert mirrored_potential((-0.2, 0.1, 0.01), (0.2, -0.1, 0.01)) == 0.0
    assert reacher_reward(1.5, -0.25, -0.1) == sum([1.5, -0.25, -0.1])
    assert reacher_reward(1.5, -0.25, -0.1, 10.0) == pytest.approx(1.5 - 2.5 - 0.1)


def test_effort_is_default_with_ten_times_the_electricity_cost():
    default, effort = reacher("default"), reacher("effort")
    default.reset(seed=5), effort.reset(seed=5)
    costs = []
    for a in actions(default, 40, seed=2):
        obs_d, r_d, *_ = default.step(a)
        obs_e, r_e, *_ = effort.step(a)
        np.testing.assert_array_equal(obs_d, obs_e)  # the reward does not touch the dynamics
        cost = electricity(a, default._inner.robot)
        assert r_e == pytest.approx(r_d + 9 * cost, rel=1e-9, abs=1e-9)
        costs.append(cost)
    assert max(costs) < 0  # so effort is strictly below default
    default.close(), effort.close()


def test_variants_sum_over_action_repeat():
    one, two = reacher("mirror"), reacher("mirror", action_repeat=2)
    one.reset(seed=6), two.reset(seed=6)
    for a in actions(one, 5):
        r = one.step(a)[1] + one.step(a)[1]
        assert two.step(a)[1] == pytest.approx(r, rel=1e-12, abs=1e-12)
    one.close(), two.close()


def test_unknown_variants_are_rejected():
    with pytest.raises(ValueError, match=r"reacher.*'teleport'.*default.*mirror.*effort"):
        PyBulletEnv("reacher", reward="teleport")
    with pytest.raises(ValueError, match=r"hopper.*'mirror'.*\['default'\]"):
        make_env("hopper", {"reward": "mirror"})
    PyBulletEnv("hopper", obs="proprio", reward="default").close()  # every task has default


# -- pickling -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reward,obs", [(v, "proprio") for v in VARIANTS] + [("mirror", "pixels")])
def test_pickle_mid_episode_continues_identically(reward, obs):
    env = reacher(reward, obs=obs, max_steps=40)
    acts = actions(env, 40)
    env.reset(seed=5)
    rollout(env, acts[:7])
    clone = pickle.loads(pickle.dumps(env))
    assert clone.reward_variant == reward
    assert_same(rollout(env, acts[7:]), rollout(clone, acts[7:]))
    np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])
    env.close(), clone.close()


# -- direction ------------------------------------------------------------------------------------
def reach_action(env: PyBulletEnv, goal: np.ndarray) -> np.ndarray:
    """A Jacobian-transpose controller pulling the fingertip to ``goal`` (x, y), with damping."""
    robot = env._inner.robot
    q0, v0 = robot.central_joint.get_state()
    _, v1 = robot.elbow_joint.get_state()
    tip = xyz(robot.fingertip)[:2]
    elbow = 0.1 * np.array([np.cos(q0), np.sin(q0)])
    err = goal[:2] - tip
    torque = [np.cross(tip, err), np.cross(tip - elbow, err)]
    return np.clip(40.0 * np.array(torque) - 0.5 * np.array([v0, v1]), -1, 1)


def test_reaching_the_mirrored_point_scores_under_mirror_not_default():
    returns = {}
    for towards in ("target", "mirror"):
        for reward in ("default", "mirror"):
            env = reacher(reward)
            env.reset(seed=3)
            target = xyz(env._inner.robot.target)
            goal = target if towards == "target" else -target
            returns[towards, reward] = sum(env.step(reach_action(env, goal))[1]
                                           for _ in range(30))
            env.close()
    assert returns["mirror", "mirror"] > returns["mirror", "default"] + 10
    assert returns["target", "default"] > returns["target", "mirror"] + 10


def test_a_fixed_goal_moves_the_target_and_nothing_else():
    from lightning_wm.envs import make_env
    opts = {"obs": "proprio", "action_repeat": 1, "max_steps": 150}
    drawn, fixed = make_env("reacher", opts), make_env("reacher", {**opts, "goal": [0.15, -0.1]})
    a, _ = drawn.reset(seed=11)
    b, _ = fixed.reset(seed=11)
    assert b[:2].tolist() == pytest.approx([0.15, -0.1])   # the target's x, y
    assert np.array_equal(a[4:], b[4:])                     # the arm's draws are the default's
    with pytest.raises(ValueError, match="within ±0.27"):
        make_env("reacher", {**opts, "goal": [0.5, 0.0]})
    with pytest.raises(ValueError, match="draws no goal"):
        make_env("hopper", {"obs": "proprio", "goal": [0.1, 0.1]})
