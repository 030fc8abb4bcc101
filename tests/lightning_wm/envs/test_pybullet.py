"""PyBullet adapters: spaces, seeding, action repeat, episode ends, the double swing-up, pickling
mid-episode, no leaked import shims, and vectorised envs."""
from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pybullet")

from lightning_wm.data.collector import Collector  # noqa: E402
from lightning_wm.data.replay import EpisodeReplay  # noqa: E402
from lightning_wm.envs import ENVS, make_env  # noqa: E402
from lightning_wm.envs.pybullet import TASKS, PyBulletEnv  # noqa: E402
from pybullet_helpers import actions, assert_same, rollout  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROPRIO_DIM = {"halfcheetah": 26, "hopper": 15, "walker2d": 22, "ant": 28,
               "pendulum_swingup": 5, "double_pendulum_swingup": 9, "reacher": 9,
               "pendulum_balance": 5}
ACTION_DIM = {"halfcheetah": 6, "hopper": 3, "walker2d": 6, "ant": 8,
              "pendulum_swingup": 1, "double_pendulum_swingup": 1, "reacher": 2,
              "pendulum_balance": 1}


def run_python(code: str) -> None:
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


# -- registry, spaces -----------------------------------------------------------------------------
def test_registry_lists_tasks_without_importing_pybullet():
    assert set(TASKS) <= set(ENVS)
    run_python("""
        import sys
        sys.modules["pybullet"] = None  # any import of pybullet now fails
        import lightning_wm.envs as envs, lightning_wm.envs.pybullet
        assert {"hopper", "double_pendulum_swingup"} <= set(envs.ENVS)
    """)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_spaces_shapes_and_dtypes(task):
    env = make_env(task)  # defaults: 64×64 pixels
    assert env.observation_space == gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (ACTION_DIM[task],), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (3, 64, 64) and obs.std() > 0  # not blank
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and isinstance(reward, float)
    assert info["env_steps"] == 2
    env.close()
    env = make_env(task, {"obs": "proprio", "size": 32})
    assert env.observation_space.shape == (PROPRIO_DIM[task],)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert env.render().shape == (32, 32, 3)
    env.close()


def test_bad_options_are_rejected():
    with pytest.raises(KeyError):
        PyBulletEnv("humanoid")
    with pytest.raises(ValueError):
        PyBulletEnv("hopper", obs="depth")
    with pytest.raises(ValueError):
        PyBulletEnv("hopper", action_repeat=0)


# -- seeding, action repeat, episode ends ---------------------------------------------------------
REACHER = {"obs": "proprio", "action_repeat": 1, "max_steps": 150}


# Reacher's variants keep their own reward potential from the reset on, so each is checked too
@pytest.mark.parametrize("task,options", [("hopper", {})] + [
    ("reacher", {**REACHER, "reward": v}) for v in ("default", "mirror", "effort")])
def test_reset_with_seed_is_deterministic_whatever_came_before(task, options):
    a, b = PyBulletEnv(task, **options), PyBulletEnv(task, **options)
    acts = actions(a, 15)
    a.reset(seed=1)
    first = rollout(a, acts)
    b.reset(seed=2)
    other = rollout(b, acts)
    b.reset(seed=1)  # a second episode on a used simulator
    assert_same(first, rollout(b, acts))
    assert not np.array_equal(first[0][0], other[0][0])
    a.close(), b.close()


def test_action_repeat_sums_rewards():
    one = PyBulletEnv("halfcheetah", obs="proprio", action_repeat=1)
    two = PyBulletEnv("halfcheetah", obs="proprio", action_repeat=2)
    one.reset(seed=4), two.reset(seed=4)
    for a in actions(one, 5):
        _, r_a, *_ = one.step(a)
        obs1, r_b, *_ = one.step(a)
        obs2, r2, *_ = two.step(a)
        assert r2 == r_a + r_b
        np.testing.assert_array_equal(obs1, obs2)
    one.close(), two.close()


def test_truncation_at_max_steps_counts_env_steps():
    env = PyBulletEnv("halfcheetah", obs="proprio", action_repeat=2, max_steps=7)
    env.reset(seed=0)
    ends = [env.step(np.zeros(6))[2:4] for _ in range(4)]  # 2 + 2 + 2 + 1 env steps
    assert ends == [(False, False)] * 3 + [(False, True)]
    with pytest.raises(RuntimeError):
        env.step(np.zeros(6))
    env.close()


def test_falling_hopper_terminates_without_truncation():
    env = PyBulletEnv("hopper", obs="proprio")
    env.reset(seed=0)
    steps = rollout(env, actions(env, 500, seed=1))
    assert steps[-1][2:] == (True, False) and len(steps) < 500
    env.close()


# -- the swing-up tasks ---------------------------------------------------------------------------
def test_double_pendulum_swingup_reward_and_hanging_start():
    env = PyBulletEnv("double_pendulum_swingup", obs="proprio", action_repeat=1)
    obs, _ = env.reset(seed=0)
    assert obs[3] < -0.99 and obs[6] > 0.99  # cos θ1 ≈ -1, second hinge straight: hanging
    for a in [np.zeros(1)] + list(actions(env, 30)):
        obs, reward, terminated, truncated, _ = env.step(a)
        cos1, sin1, cos_rel, sin_rel = obs[3], obs[4], obs[6], obs[7]
        cos2 = cos1 * cos_rel - sin1 * sin_rel  # cos of the second pole's absolute angle
        assert reward == pytest.approx(cos1 + cos2, abs=1e-5)
        assert not terminated and not truncated
    env.reset(seed=0)
    assert env.step(np.zeros(1))[1] == pytest.approx(-2.0, abs=0.01)
    env.close()


def test_single_pendulum_swingup_starts_hanging():
    env = PyBulletEnv("pendulum_swingup", obs="proprio", action_repeat=1)
    env.reset(seed=0)
    assert env.step(np.zeros(1))[1] == pytest.approx(-1.0, abs=0.01)
    env.close()


# -- instances, pickling --------------------------------------------------------------------------
def test_instances_are_independent_and_close_cleanly():
    solo = PyBulletEnv("ant", obs="proprio")
    solo.reset(seed=3)
    expected = rollout(solo, actions(solo, 6))
    solo.close()
    solo.close()  # idempotent
    a, b = PyBulletEnv("ant", obs="proprio"), PyBulletEnv("ant", obs="proprio")
    a.reset(seed=3), b.reset(seed=8)
    got = []
    for act in actions(a, 6):
        got += rollout(a, [act])
        rollout(b, [-act])  # interleaved stepping of another client
    assert_same(expected, got)
    a.close(), b.close()


@pytest.mark.slow
@pytest.mark.parametrize("task,obs", [(t, "proprio") for t in sorted(TASKS)]
                         + [("hopper", "pixels"), ("double_pendulum_swingup", "pixels")])
def test_pickle_mid_episode_continues_identically(task, obs):
    env = PyBulletEnv(task, obs=obs, max_steps=60)
    acts = actions(env, 40)
    env.reset(seed=5)
    rollout(env, acts[:6])
    clone = pickle.loads(pickle.dumps(env))
    assert_same(rollout(env, acts[6:]), rollout(clone, acts[6:]))
    # the RNG travelled too: the next unseeded resets agree
    np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])
    fresh = pickle.loads(pickle.dumps(PyBulletEnv(task)))  # never reset: config only
    assert fresh.observation_space == PyBulletEnv(task).observation_space
    env.close(), clone.close(), fresh.close()


def test_collector_resumes_pybullet_episodes_in_flight():
    def make(task):
        return PyBulletEnv("pendulum_swingup", obs="proprio", max_steps=30)

    a = Collector(make, [0], 2, 1, seed=3)
    a.collect(None, 10, EpisodeReplay(1000))
    state = copy.deepcopy(a.state_dict())
    assert state["in_flight"] is not None
    more_a = EpisodeReplay(1000)
    returns_a = a.collect(None, 40, more_a)
    b = Collector(make, [0], 2, 1, seed=3)
    b.load_state_dict(state)
    more_b = EpisodeReplay(1000)
    assert b.collect(None, 40, more_b) == returns_a and len(returns_a) >= 2
    for ea, eb in zip(more_a.episodes, more_b.episodes):
        np.testing.assert_array_equal(ea["obs"], eb["obs"])
    a.close(), b.close()


# -- no monkeypatch leaks -------------------------------------------------------------------------
def test_import_shims_do_not_leak():
    # A fresh interpreter, so the one-time import really happens; stand-ins for an installed
    # gym / pkg_resources must come back untouched.
    run_python("""
        import os, pickle, sys, types
        import gymnasium, numpy as np
        real_gym, real_pkg = types.ModuleType("gym"), types.ModuleType("pkg_resources")
        sys.modules.update(gym=real_gym, pkg_resources=real_pkg)
        import pybullet, pybullet_data, pybullet_utils.bullet_client  # the legitimate imports
        import importlib.util, json, multiprocessing, tempfile, threading
        from lightning_wm.envs import make_env
        import lightning_wm.envs.pybullet.env  # the adapter itself (it imports no pybullet_envs)
        modules, path = dict(sys.modules), list(sys.path)
        cache, registry = set(sys.path_importer_cache), set(gymnasium.envs.registry)

        env = make_env("double_pendulum_swingup", {"obs": "proprio"})
        env.reset(seed=0), env.step(np.zeros(1))
        pickle.loads(pickle.dumps(env)).close(), env.close()
        make_env("hopper").close()

        folder = os.path.dirname(importlib.util.find_spec("pybullet_envs").origin)
        for name, mod in sys.modules.items():
            assert modules.get(name, mod) is mod, f"{name} was replaced"
            assert not (getattr(mod, "__file__", None) or "").startswith(folder), name
            assert not name.startswith(("pybullet_envs", "gym.", "robot_")), name
        assert sys.modules["gym"] is real_gym and sys.modules["pkg_resources"] is real_pkg
        assert set(modules) <= set(sys.modules) and sys.path == path
        assert set(sys.path_importer_cache) == cache
        assert set(gymnasium.envs.registry) == registry
        assert not hasattr(real_gym, "Env") and not hasattr(real_pkg, "parse_version")
    """)


# -- vectorised -----------------------------------------------------------------------------------
def _pendulum():
    return make_env("pendulum_swingup", {"max_steps": 6})


@pytest.mark.slow
def test_sync_and_async_vector_envs_agree():
    results = []
    for cls in (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv):
        vec = cls([_pendulum, _pendulum])
        obs, _ = vec.reset(seed=[1, 2])
        assert obs.shape == (2, 3, 64, 64) and obs.dtype == np.uint8
        steps = [vec.step(np.full((2, 1), 0.5, np.float32)) for _ in range(4)]
        assert steps[2][3].all() and not steps[2][2].any()  # 3 decisions × repeat 2 = max_steps
        results.append([obs] + [s[0] for s in steps] + [s[1] for s in steps])
        vec.close()
    for x, y in zip(*results):
        np.testing.assert_array_equal(x, y)


# -- simulator chatter -------------------------------------------------------------------------
def test_creating_an_env_prints_nothing_and_restores_the_descriptors(capfd):
    """pybullet's C banner (``argv[0]=``) is written to fds 1/2 on every connection; the adapter
    silences it there and gives the descriptors back, so later output still arrives."""
    capfd.readouterr()
    env = PyBulletEnv("hopper", obs="proprio")
    env.reset(seed=0)
    env.step(np.zeros(3, np.float32))
    pickle.loads(pickle.dumps(env)).close()  # unpickling connects a new client
    env.close()
    assert capfd.readouterr() == ("", "")
    os.write(1, b"out\n")
    os.write(2, b"err\n")
    assert capfd.readouterr() == ("out\n", "err\n")


def test_a_fresh_process_importing_pybullet_through_the_adapter_prints_nothing():
    """The import banner (``pybullet build time``) comes once per process, so only a fresh
    interpreter shows it; C stdio buffers into a pipe, so it would surface at exit if unflushed."""
    code = textwrap.dedent("""
        from lightning_wm.envs import make_env
        env = make_env("halfcheetah", {"size": 16})
        env.reset(seed=0)
        env.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
