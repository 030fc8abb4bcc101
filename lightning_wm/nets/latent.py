"""Stochastic latent distributions for an RSSM: the seam between Dreamer V1 and V2.

The RSSM never looks inside its stochastic state; it asks a latent object for
- ``params_size``: how many numbers the prior / posterior heads must output;
- ``sample_size``: the width of a sample, i.e. of ``s`` in the feature ``[s, h]``;
- ``dist(params)``: a ``torch.distributions`` object (event dims reinterpreted as one event);
- ``sample(params)``: a differentiable sample; ``mode(params)``: its most likely value;
- ``kl(post, prior)``: KL(post ‖ prior) per batch element, summed over the event.

Dreamer V1 (Hafner et al., "Dream to Control", 2020: "The transition model is a Gaussian
distribution ...") uses :class:`GaussianLatent`. DreamerV2 swaps in 32 categoricals of 32 classes
with straight-through gradients and KL balancing by providing another class with the same methods.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import distributions as D


class GaussianLatent:
    """Diagonal Gaussian of ``size`` dims; params are ``[mean, raw_std]``.

    std = softplus(raw_std) + ``min_std``: the floor keeps the KL finite when the model gets
    very sure of itself (Dreamer V1 uses 0.1).
    """

    def __init__(self, size: int, min_std: float = 0.1) -> None:
        self.size, self.min_std = int(size), float(min_std)

    @property
    def params_size(self) -> int:
        return 2 * self.size

    @property
    def sample_size(self) -> int:
        return self.size

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = params.chunk(2, -1)
        return mean, F.softplus(raw) + self.min_std

    def dist(self, params: torch.Tensor) -> D.Distribution:
        mean, std = self._split(params)
        return D.Independent(D.Normal(mean, std), 1)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        mean, std = self._split(params)
        return mean + std * torch.randn_like(mean)  # reparameterised

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return self._split(params)[0]

    def kl(self, post: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """KL(q ‖ p) of two diagonal Gaussians, summed over dims (closed form)."""
        return D.kl_divergence(self.dist(post), self.dist(prior))
