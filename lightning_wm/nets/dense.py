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


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log(1 − tanh²(u)), the log-Jacobian of a = tanh(u), written as 2·(log 2 − u − softplus(−2u))
    so it stays finite where tanh(u) rounds to ±1 (the naive form gives log 0 = −inf there)."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


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

    def sample_log_prob(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-density log π(a | s) under the squashed
        distribution: log N(u; μ, σ) − Σ log(1 − tanh²(u)) for a = tanh(u). Computed from u, not
        from a, so it stays finite for saturated actions (where the squashed density is what
        penalises saturation: −log π grows with |u|)."""
        mean, std = self.normal(feature)
        u = mean + std * torch.randn_like(mean)
        log_prob = D.Normal(mean, std).log_prob(u) - tanh_log_det(u)
        return torch.tanh(u), log_prob.sum(-1)

    def mode(self, feature: torch.Tensor) -> torch.Tensor:
        """tanh of the Gaussian's mean: the greedy action (V1 estimates the mode by sampling)."""
        return torch.tanh(self.normal(feature)[0])
