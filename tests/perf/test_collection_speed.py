"""Collector throughput (pytest-benchmark): 4 slots of pixel ``pendulum_swingup`` under a random
policy, envs stepped in-process (``env_workers=0``) or in 2 worker processes.

Marked ``bench``: the ordinary test run leaves it out; ``pytest --bench`` runs each body once as
a plain test (pyproject passes ``--benchmark-disable``). For numbers:

    python -m benchmarks bench collector

Each timed call collects ``STEPS`` collector steps (one per slot per lock-step; resets included
when an episode ends). ``extra_info["collector_steps_per_s"]`` counts them; each is
``ACTION_REPEAT`` simulator steps. Worker start-up and the first resets are outside the timed part.
Results: ``results/bench/env_speed.md``.
"""
from __future__ import annotations

import pytest

pytest.importorskip("pybullet")

from lightning_wm.data.collector import Collector  # noqa: E402
from lightning_wm.data.replay import EpisodeReplay  # noqa: E402
from lightning_wm.envs import make_env  # noqa: E402

pytestmark = pytest.mark.bench

SLOTS = 4
STEPS = 80             # 20 lock-steps of the 4 slots
ACTION_REPEAT = 2      # the env's default: simulator steps per collector step


def pendulum(task: int):
    # top-level, so the workers unpickle it by reference
    return make_env("pendulum_swingup", {})


@pytest.mark.benchmark(group="collector, 4 slots, pendulum_swingup pixels")
@pytest.mark.parametrize("env_workers", [0, 2])
def test_collection_speed(benchmark, env_workers):
    collector = Collector(pendulum, [0], SLOTS, 1, seed=0, env_workers=env_workers)
    replay = EpisodeReplay(50_000)
    collector.collect(None, SLOTS, replay)  # start the workers, make and reset the envs
    benchmark(collector.collect, None, STEPS, replay)
    benchmark.extra_info.update(collector_steps_per_call=STEPS, action_repeat=ACTION_REPEAT)
    if benchmark.stats is not None:  # absent with --benchmark-disable
        mean = benchmark.stats.stats.mean
        benchmark.extra_info.update(collector_steps_per_s=STEPS / mean,
                                    sim_steps_per_s=STEPS * ACTION_REPEAT / mean)
    collector.close()
    assert collector.env_steps >= SLOTS + STEPS
