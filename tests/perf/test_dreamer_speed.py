"""Dreamer speed (pytest-benchmark): one update, and collection under Dreamer's policy.

One update is Algorithm 1's three optimiser steps on a replay batch, timed outside a Trainer:

- ``smoke``: tiny Dreamer at the pybullet suites' smoke profile (28-dim observations, 8-dim
  actions, batches of 4 sequences of 6);
- ``small``: small Dreamer on 64×64 RGB, batches of 16 sequences of 16;
- ``paper``: the paper's size, batches of 50 sequences of 50 64×64 RGB frames; on CPU (``slow``:
  tens of seconds an update) and on a CUDA device (``gpu``) in fp32 and under bf16 autocast.

``eager`` against ``compile=True`` (the agent option that compiles the unrolled RSSM loops; the
first call compiles, a minute or more on a small CPU, so those cases are ``slow``).

Marked ``bench``, with ``test_compiled_update_matches_eager`` (minutes of compilation): the
ordinary test run leaves them out; ``pytest --bench`` runs each body once as a plain test
(pyproject passes ``--benchmark-disable``; ``gpu`` ones are skipped without CUDA). For numbers:

    python -m benchmarks bench dreamer --out /tmp/dreamer_speed

``extra_info["ms_per_update"]`` (median) and ``extra_info["steps_per_s"]`` are in the JSON
(``/tmp/dreamer_speed/bench.json``).
Results: ``results/bench/dreamer_update.md``.
"""
from __future__ import annotations

import contextlib

import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.data.collector import Collector
from lightning_wm.data.replay import EpisodeReplay
from lightning_wm.envs import make_env
from lightning_wm.pipeline import AgentPolicy

pytestmark = pytest.mark.bench

#: case -> (size, observation shape, action width, batch size)
CASES = {
    "smoke": ("tiny", (28,), 8, 4),
    "small": ("small", (3, 64, 64), 8, 16),
    "paper": ("paper", (3, 64, 64), 8, 50),
}
ROUNDS = {"smoke": 30, "small": 10, "paper": 2, "paper-gpu": 30}
COLLECT_STEPS = 100


def _agent(case: str, device: str = "cpu", **options):
    size, shape, action_dim, batch_size = CASES[case]
    torch.manual_seed(0)
    agent = make_agent("dreamer", shape, action_dim, False, {"size": size, **options}).to(device)
    agent.log_terms = lambda terms: None  # no Trainer to log to
    return agent, _batch(agent, batch_size, device)


def _batch(agent, n: int, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A replay-like batch ``[n, seq_len, ...]``: episodes start at step 0."""
    g = torch.Generator().manual_seed(seed)
    T, shape, A = agent.sequence_length, agent.obs_shape, agent.action_dim
    if len(shape) == 3:
        obs = torch.randint(0, 256, (n, T, *shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.randn(n, T, *shape, generator=g)
    is_first = torch.zeros(n, T, dtype=torch.bool)
    is_first[:, 0] = True
    batch = {"obs": obs, "action": torch.rand(n, T, A, generator=g) * 2 - 1,
             "reward": torch.randn(n, T, generator=g), "is_first": is_first}
    return {k: v.to(device) for k, v in batch.items()}


def _bench_update(benchmark, agent, batch, rounds: int, autocast: bool = False) -> None:
    device = batch["obs"].device
    cuda = device.type == "cuda"

    def update():
        ctx = (torch.autocast(device.type, dtype=torch.bfloat16) if autocast
               else contextlib.nullcontext())
        with ctx:
            loss = agent.update(batch)
        if cuda:  # time the kernels, not their launch
            torch.cuda.synchronize()
        return loss

    # the warm-up round compiles (compile=True) and creates Adam's state
    loss = benchmark.pedantic(update, rounds=rounds, warmup_rounds=1, iterations=1)
    assert torch.isfinite(loss)
    benchmark.extra_info.update(
        device=torch.cuda.get_device_name(device) if cuda else "cpu",
        threads=torch.get_num_threads(), torch=torch.__version__,
        compile=bool(agent.hparams.compile), bf16_autocast=autocast)
    if benchmark.stats is not None:  # absent with --benchmark-disable
        benchmark.extra_info["ms_per_update"] = 1e3 * benchmark.stats.stats.median


# small with compile=True is left out: ~3 min of compilation on 2 CPU cores (measured by hand,
# results/bench/dreamer_update.md)
@pytest.mark.benchmark(group="dreamer update, cpu")
@pytest.mark.parametrize("case, compile", [
    ("smoke", False), ("small", False),
    pytest.param("smoke", True, marks=pytest.mark.slow)], ids=["smoke-eager", "small-eager",
                                                               "smoke-compile"])
def test_update_speed(benchmark, case, compile):
    agent, batch = _agent(case, compile=compile)
    _bench_update(benchmark, agent, batch, ROUNDS[case])


@pytest.mark.slow
@pytest.mark.benchmark(group="dreamer update, paper size")
def test_paper_update_speed_cpu(benchmark):
    agent, batch = _agent("paper")
    _bench_update(benchmark, agent, batch, ROUNDS["paper"])


@pytest.mark.gpu
@pytest.mark.benchmark(group="dreamer update, paper size")
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compile"])
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_paper_update_speed_gpu(benchmark, monkeypatch, bf16, compile):
    # TF32 for the fp32 matmuls and convolutions (what a GPU run would enable), this test only
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    agent, batch = _agent("paper", "cuda", compile=compile)
    _bench_update(benchmark, agent, batch, ROUNDS["paper-gpu"], autocast=bf16)


@pytest.mark.slow
def test_compiled_update_matches_eager():
    """``compile=True`` is a speed option only: same seed, same losses and weights (up to float
    rounding of fused kernels). Short loops keep the compilation to 1-2 min on 2 CPU cores."""
    runs = []
    for compile in (False, True):
        agent, batch = _agent("smoke", seq_len=3, horizon=2, compile=compile)
        seen: list[dict[str, float]] = []
        agent.log_terms = lambda terms: seen.append(
            {k: float(v.detach()) for k, v in terms.items()})
        torch.manual_seed(1)
        for _ in range(3):
            agent.update(batch)
        runs.append((seen, agent.state_dict()))
    (eager, eager_w), (compiled, compiled_w) = runs
    for e, c in zip(eager, compiled):
        assert e.keys() == c.keys()
        for k in e:
            assert c[k] == pytest.approx(e[k], rel=1e-4, abs=1e-5), k
    for k in eager_w:
        assert torch.allclose(eager_w[k], compiled_w[k], rtol=1e-4, atol=1e-5), k


@pytest.mark.benchmark(group="collection under dreamer's policy, point env")
@pytest.mark.parametrize("case, image", [("smoke", False), ("small", True)],
                         ids=["tiny-vector", "small-pixels"])
def test_collection_speed(benchmark, case, image):
    """Agent decisions per second: the policy's filter step (encoder + RSSM + actor) and the
    cheap ``point`` env, so the policy's cost dominates; one env slot, as in the suites."""
    size = CASES[case][0]
    obs = (3, 64, 64) if image else (4,)
    torch.manual_seed(0)
    agent = make_agent("dreamer", obs, 2, False, {"size": size})
    agent.eval()
    collector = Collector(lambda task: make_env("point", {"image": image}), [0], 1, 2, seed=0)
    replay = EpisodeReplay(100_000)
    policy = AgentPolicy(agent, explore=True)
    collector.collect(policy, 1, replay)  # make and reset the env
    benchmark(collector.collect, policy, COLLECT_STEPS, replay)
    benchmark.extra_info.update(steps_per_call=COLLECT_STEPS, torch=torch.__version__,
                                threads=torch.get_num_threads())
    if benchmark.stats is not None:
        benchmark.extra_info["steps_per_s"] = COLLECT_STEPS / benchmark.stats.stats.median
    collector.close()
