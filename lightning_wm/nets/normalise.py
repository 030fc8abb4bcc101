"""Running observation normalisation, kept in buffers so checkpoints and transfers carry it."""
from __future__ import annotations

import torch
from torch import nn


class RunningNorm(nn.Module):
    """``clamp((x − mean) / sqrt(var + eps), ±clip)`` with the mean and variance of every input
    passed to :meth:`update` so far (Chan et al.'s parallel update, in float64).

    On-policy agents on proprioceptive state need it (joint velocities dwarf angles): PPO's
    MuJoCo and PyBullet results are obtained with normalised observations. The statistics are
    buffers: a resumed run continues them, and a component copied from a source (a teacher)
    brings the scale its weights were trained at.
    """

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sqrt(self.var + self.eps)
        return ((x - self.mean.to(x.dtype)) / scale.to(x.dtype)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Add a batch ``[..., dim]``; under torch.distributed, every rank's batch (the ranks'
        moments are all-reduced, so every rank keeps the same statistics)."""
        x = x.detach().reshape(-1, self.mean.shape[0]).double()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            n, mean, var = _global_moments(x)
        else:
            n, mean, var = float(len(x)), x.mean(0), x.var(0, unbiased=False)
        if n == 0:
            return
        total = self.count + n
        delta = mean - self.mean
        self.var.copy_((self.var * self.count + var * n
                        + delta ** 2 * self.count * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.copy_(total)


def _global_moments(x: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Count, mean and variance of every rank's ``x`` together (one all-reduce of the sums)."""
    dim = x.shape[1]
    moments = torch.cat([x.new_tensor([len(x)]), x.sum(0), (x * x).sum(0)])
    torch.distributed.all_reduce(moments)
    n = float(moments[0])
    if n == 0:
        return 0.0, moments[1:1 + dim], moments[1 + dim:]
    mean = moments[1:1 + dim] / n
    return n, mean, (moments[1 + dim:] / n - mean * mean).clamp(min=0.0)
