"""Shared test setup."""
import pytest
import torch

# Test networks are tiny: one intra-op thread is faster than two, and leaves the second core to
# the env loop or a parallel worker.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

