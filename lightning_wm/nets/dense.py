"""MLP encoder / decoder for proprioceptive (vector) observations, and the tanh-Gaussian actor.

The vector counterparts of :mod:`.conv`: an observation ``[..., D]`` is embedded by an MLP and
reconstructed by another (mean of a unit-variance Gaussian). Both have ``hidden`` / ``out``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import distributions as D

from lightning_wm.nets.heads import MLPHead


class DenseEncoder(MLPHead):
    """``[..., D]`` -> ``[..., embed]``; ELU on the output too, like the conv encoder's ReLU."""

    def __init__(self, obs_dim: int, embed: int, hidden: int, layers: int = 2) -> None:
        super().__init__(obs_dim, embed, hidden, layers)
        self.embed_size = embed

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return F.elu(super().forward(obs.float()))


class DenseDecoder(MLPHead):
    """Feature ``[..., F]`` -> mean observation ``[..., D]``."""

    @staticmethod
    def target(obs: torch.Tensor) -> torch.Tensor:
        return obs.float()


class ActorHead(MLPHead):
    """Tanh-Gaussian policy (Hafner et al., "Dream to Control", 2020: the actor is "a Gaussian
    distribution parameterized by a feed-forward network"; Dreamer V1 squashes it with tanh into
    [-1, 1]).

    ``out`` gives 2·A numbers: a mean, soft-clipped to ±``mean_scale`` before the tanh, and a raw
    std shifted so a fresh actor starts near std ``init_std`` (broad, hence exploratory).
    """

    def __init__(self, feature_size: int, action_dim: int, hidden: int, layers: int,
                 init_std: float = 5.0, min_std: float = 1e-4, mean_scale: float = 5.0) -> None:
        super().__init__(feature_size, 2 * action_dim, hidden, layers)
        self.raw_init_std = math.log(math.expm1(init_std))  # softplus⁻¹(init_std)
        self.min_std, self.mean_scale = min_std, mean_scale

    def normal(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the Gaussian before the tanh."""
        mean, raw = super().forward(feature).chunk(2, -1)
        mean = self.mean_scale * torch.tanh(mean / self.mean_scale)
        return mean, F.softplus(raw + self.raw_init_std) + self.min_std

    def dist(self, feature: torch.Tensor) -> D.Distribution:
        mean, std = self.normal(feature)
        squashed = D.TransformedDistribution(D.Normal(mean, std), [D.TanhTransform(cache_size=1)])
        return D.Independent(squashed, 1)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """A reparameterised sample in (-1, 1)."""
        mean, std = self.normal(feature)
        return torch.tanh(mean + std * torch.randn_like(mean))

    def mode(self, feature: torch.Tensor) -> torch.Tensor:
        """tanh of the Gaussian's mean: the greedy action (V1 estimates the mode by sampling)."""
        return torch.tanh(self.normal(feature)[0])
