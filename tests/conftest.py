"""Shared test setup."""
import pytest
import torch

# Test networks are tiny: one intra-op thread is faster than two, and leaves the second core to
# the env loop or a parallel worker.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_worker_by_default(monkeypatch):
    """`run` without --workers uses the free cores, which vary with the machine's load: tests
    that do not ask for workers get one, so they do not change behaviour with the load."""
    monkeypatch.setattr("benchmarks.launchers.local.free_cores", lambda: 1)


def pytest_addoption(parser):
    parser.addoption("--bench", action="store_true",
                     help="also run the speed benchmarks (tests marked 'bench'); "
                          "`python -m benchmarks bench` runs them with timings enabled")


def pytest_collection_modifyitems(config, items):
    # Benchmarks are deselected here rather than by an addopts `-m "not bench"`: the README's
    # `-m "not gpu"` would replace that expression (the last -m wins), not combine with it.
    if not config.getoption("--bench"):
        benches = [item for item in items if item.get_closest_marker("bench")]
        if benches:
            config.hook.pytest_deselected(items=benches)
            items[:] = [item for item in items if not item.get_closest_marker("bench")]
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
