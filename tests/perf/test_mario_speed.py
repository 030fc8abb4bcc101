"""Super Mario Bros env throughput (pytest-benchmark): uniform random decisions on level 1-1
with the env's defaults (action repeat 4, sticky actions 0.2, grayscale 64×64).

Marked ``bench``: the ordinary test run leaves it out; ``pytest --bench`` runs the body once as a
plain test (pyproject passes ``--benchmark-disable``). For numbers:

    python -m benchmarks bench mario

Each timed call makes ``DECISIONS`` decisions (a reset when an episode ends); booting the console
for the level is outside the timed part. ``extra_info``: ``decisions_per_s`` (wall clock, median
round) and ``decisions_per_cpu_s`` (process time over all rounds: the better estimate on cores
shared with other jobs). Results: ``results/bench/mario_env.md``.
"""
from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest

from lightning_wm.envs.mario import MarioEnv

# find_spec, not importorskip: importing them would pull gym 0.26 into the process (see
# tests/lightning_wm/envs/test_mario.py)
HAVE_NES = all(importlib.util.find_spec(m) is not None for m in ("nes_py", "gym_super_mario_bros"))
pytestmark = [pytest.mark.bench,
              pytest.mark.skipif(not HAVE_NES, reason="needs nes-py and gym-super-mario-bros")]

DECISIONS = 100


@pytest.mark.benchmark(group="mario env, level 1-1, random policy")
def test_mario_decision_speed(benchmark):
    env, rng = MarioEnv(level="1-1"), np.random.default_rng(0)
    env.reset(seed=0)
    cpu: list[float] = []

    def decisions() -> None:
        start = time.process_time()
        for _ in range(DECISIONS):
            *_, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                env.reset()
        cpu.append(time.process_time() - start)

    benchmark(decisions)
    benchmark.extra_info.update(decisions_per_call=DECISIONS,
                                decisions_per_cpu_s=DECISIONS * len(cpu) / max(sum(cpu), 1e-9))
    if benchmark.stats is not None:  # absent with --benchmark-disable
        benchmark.extra_info["decisions_per_s"] = DECISIONS / benchmark.stats.stats.median
    env.close()
    assert cpu
