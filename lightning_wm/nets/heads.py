"""MLP heads with the ``hidden`` / ``out`` split that transfer addresses (``reward.out``)."""
from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """``hidden``: Linear+activation layers; ``out``: the final Linear layer."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, layers: int = 1,
                 act: type[nn.Module] = nn.ELU) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), act()]
            d = hidden
        self.hidden = nn.Sequential(*mods)
        self.out = nn.Linear(d, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))
