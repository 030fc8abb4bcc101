"""Environment throughput (pytest-benchmark): pybullet tasks, one env and two vectorised.

Marked ``bench``: the ordinary test run leaves it out; ``pytest --bench`` runs each body once as
a plain test (pyproject passes ``--benchmark-disable``). For numbers:

    python -m benchmarks bench env

Each timed call makes ``DECISIONS`` agent decisions with random actions (resets included when an
episode ends); ``extra_info["env_steps_per_s"]`` counts simulator steps, i.e. after action repeat.
Results: ``results/bench/env_speed.md``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pybullet")

from lightning_wm.envs import make_env  # noqa: E402
from lightning_wm.envs.pybullet import TASKS  # noqa: E402

pytestmark = pytest.mark.bench

DECISIONS = 50


def _single_steps(env: gym.Env, rng: np.random.Generator) -> int:
    """DECISIONS decisions on one env; returns the env steps they took."""
    raw = 0
    for _ in range(DECISIONS):
        before = env.unwrapped.env_steps
        _, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, env.action_space.shape))
        raw += info["env_steps"] - before
        if terminated or truncated:
            env.reset()
    return raw


def _vector_steps(vec: gym.vector.VectorEnv, rng: np.random.Generator) -> int:
    """DECISIONS steps of every sub-env; an autoreset step (next-step mode) takes no env step."""
    raw, last = 0, np.zeros(vec.num_envs, int)
    for _ in range(DECISIONS):
        info = vec.step(rng.uniform(-1, 1, vec.action_space.shape))[4]
        now = np.asarray(info["env_steps"], int)
        raw += int(np.maximum(now - last, 0).sum())
        last = now
    return raw


def _record(benchmark, counts: list[int], decisions: int) -> None:
    steps = float(np.mean(counts))
    benchmark.extra_info.update(decisions_per_call=decisions, env_steps_per_call=steps)
    if benchmark.stats is not None:  # absent with --benchmark-disable
        mean = benchmark.stats.stats.mean
        benchmark.extra_info.update(env_steps_per_s=steps / mean, decisions_per_s=decisions / mean)


@pytest.mark.benchmark(group="single env")
@pytest.mark.parametrize("obs", ["pixels", "proprio"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_single_env_speed(benchmark, task, obs):
    env = make_env(task, {"obs": obs})
    env.reset(seed=0)
    rng, counts = np.random.default_rng(0), []
    benchmark(lambda: counts.append(_single_steps(env, rng)))
    _record(benchmark, counts, DECISIONS)
    env.close()
    assert counts and counts[-1] > 0


def _hopper():
    return make_env("hopper")


@pytest.mark.benchmark(group="vectorised, 2 envs")
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_vector_env_speed(benchmark, kind):
    cls = gym.vector.AsyncVectorEnv if kind == "async" else gym.vector.SyncVectorEnv
    vec = cls([_hopper, _hopper])  # worker start-up is outside the timed part
    vec.reset(seed=[0, 1])
    rng, counts = np.random.default_rng(0), []
    benchmark(lambda: counts.append(_vector_steps(vec, rng)))
    _record(benchmark, counts, DECISIONS * vec.num_envs)
    vec.close()
    assert counts and counts[-1] > 0
