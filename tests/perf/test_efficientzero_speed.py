"""EfficientZero-style agent speed (pytest-benchmark) and replay memory.

- search: one batched search from ``ROOTS`` roots (the agent's ``act``: representation, then the
  search's simulations through dynamics and prediction); ``extra_info["sims_x_roots_per_s"]``;
- update: one training update outside a Trainer (the unroll, every loss term, and the
  reanalysis: a noise-free search of the target network from every unroll position, B × (K + 1)
  roots), at ``small`` (4 × 64 × 64 grayscale, batch 32) and ``paper`` (12 × 96 × 96 RGB; batch 8
  on the CPU, where EfficientZero's 256 would take minutes an update: the cost grows about
  linearly with the batch);
- memory: bytes one stored transition takes in the replay at paper size, measured from a real
  ALE episode (``test_bytes_per_transition_at_paper_size``, a plain test).

Marked ``bench`` (deselected by the ordinary run). For numbers:

    python -m benchmarks bench efficientzero --out /tmp/ez_speed

Results: ``results/bench/efficientzero.md``.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lightning_wm.agents import make_agent

pytestmark = pytest.mark.bench

#: case -> (size, observation shape, actions, batch of the update)
CASES = {
    "tiny": ("tiny", (2, 16, 16), 6, 16),
    "small": ("small", (4, 64, 64), 6, 32),
    "paper": ("paper", (12, 96, 96), 18, 8),
}
ROOTS = 32
ROUNDS = {"tiny": 10, "small": 5, "paper": 2}


def _agent(case: str):
    size, shape, actions, _ = CASES[case]
    torch.manual_seed(0)
    agent = make_agent("efficientzero", shape, actions, True, {"size": size})
    agent.log_terms = lambda terms: None  # no Trainer to log to
    return agent


def _batch(agent, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Replay-like windows ``[n, T, ...]`` of random frames, one-hot actions, rewards in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    T, A = agent.data_needs().sequence_length, agent.action_dim
    shape = tuple(agent.hparams.obs_shape)
    index = torch.randint(0, A, (n, T), generator=g)
    is_first = torch.zeros(n, T, dtype=torch.bool)
    is_first[:, 0] = True
    zeros = torch.zeros(n, T, dtype=torch.bool)
    return {"obs": torch.randint(0, 256, (n, T, *shape), generator=g, dtype=torch.uint8),
            "action": torch.nn.functional.one_hot(index, A).float(),
            "reward": torch.randint(0, 2, (n, T), generator=g).float(), "is_first": is_first,
            "is_terminal": zeros, "is_absorbing": zeros}


def _timed(benchmark, fn, rounds: int) -> float:
    """Run ``fn`` under pytest-benchmark; return the median CPU seconds of one call."""
    cpu: list[float] = []

    def call():
        start = time.process_time()
        out = fn()
        cpu.append(time.process_time() - start)
        return out

    benchmark.pedantic(call, rounds=rounds, warmup_rounds=1, iterations=1)
    median = float(np.median(cpu[1:] if len(cpu) > 1 else cpu))
    benchmark.extra_info.update(threads=torch.get_num_threads(), torch=torch.__version__,
                                cpu_s_median=median)
    return median


@pytest.mark.benchmark(group="efficientzero search")
@pytest.mark.parametrize("case", ["tiny", "small", pytest.param("paper", marks=pytest.mark.slow)])
def test_search_speed(benchmark, case):
    agent = _agent(case)
    obs = _batch(agent, ROOTS)["obs"][:, 0]
    state = agent.initial_state(ROOTS)
    action, _ = agent.act(obs, state, explore=True)
    assert action.shape == (ROOTS, agent.action_dim)
    cpu = _timed(benchmark, lambda: agent.act(obs, state, explore=True), ROUNDS[case])
    sims = int(agent.hparams.simulations) * ROOTS
    benchmark.extra_info.update(simulations=int(agent.hparams.simulations), roots=ROOTS,
                                sims_x_roots_per_cpu_s=sims / cpu)
    if benchmark.stats is not None:  # absent with --benchmark-disable
        benchmark.extra_info["sims_x_roots_per_s"] = sims / benchmark.stats.stats.median


@pytest.mark.benchmark(group="efficientzero update")
@pytest.mark.parametrize("case", ["tiny", "small", pytest.param("paper", marks=pytest.mark.slow)])
def test_update_speed(benchmark, case):
    agent = _agent(case)
    batch = _batch(agent, CASES[case][3])
    cpu = _timed(benchmark, lambda: agent.update({"main": batch}), ROUNDS[case])
    benchmark.extra_info.update(batch=CASES[case][3], cpu_s_per_update=cpu)
    if benchmark.stats is not None:
        benchmark.extra_info["ms_per_update"] = 1e3 * benchmark.stats.stats.median


def test_bytes_per_transition_at_paper_size():
    """The replay stores each decision's observation once (no next-observation copy), as uint8,
    and each frame of the 4-frame RGB stack once: 3 × 96 × 96 new bytes a step, plus the first
    stack's 3 older frames per episode."""
    pytest.importorskip("ale_py")
    from lightning_wm.data.collector import Collector
    from lightning_wm.data.replay import EpisodeReplay
    from lightning_wm.envs import make_env

    replay = EpisodeReplay(10_000)
    # Breakout: a lost life ends a training episode, so episodes finish within the 300 steps
    collector = Collector(lambda t: make_env("atari", {"game": "breakout"}), [0], 1, 4, 0)
    collector.collect(None, 300, replay)
    episodes = list(replay.episodes)
    steps = sum(len(e["reward"]) for e in episodes)
    stored = sum(e.nbytes for e in episodes)
    rest = sum(e[k].nbytes for e in episodes for k in e if k != "obs")
    assert all(e.packed for e in episodes) and episodes[0]["obs"].dtype == np.uint8
    assert stored - rest == (steps + 3 * len(episodes)) * 3 * 96 * 96
    print(f"\nbytes per stored transition at paper size: {stored / steps:.0f} (observation "
          f"{(stored - rest) / steps:.0f}, the rest {rest / steps:.0f}) over {steps} steps in "
          f"{len(episodes)} episodes; unpacked stacks would take {12 * 96 * 96}")
