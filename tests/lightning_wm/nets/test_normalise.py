"""Running observation statistics against numpy's over the whole stream."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_wm.nets.normalise import RunningNorm


def test_statistics_equal_those_of_everything_seen():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3.0, 2.0, size=(n, 2)) for n in (5, 17, 1, 40)]
    norm = RunningNorm(2)
    for c in chunks:
        norm.update(torch.as_tensor(c))
    allx = np.concatenate(chunks)
    assert norm.count.item() == len(allx)
    assert norm.mean.numpy() == pytest.approx(allx.mean(0))
    assert norm.var.numpy() == pytest.approx(allx.var(0))
    out = norm(torch.as_tensor(allx, dtype=torch.float32))
    assert out.mean(0).numpy() == pytest.approx([0.0, 0.0], abs=1e-5)
    assert out.std(0, unbiased=False).numpy() == pytest.approx([1.0, 1.0], abs=1e-4)


def test_before_any_data_it_is_the_identity_and_it_clips():
    norm = RunningNorm(3, clip=5.0)
    x = torch.tensor([[0.5, -2.0, 100.0]])
    assert torch.allclose(norm(x), torch.tensor([[0.5, -2.0, 5.0]]))
