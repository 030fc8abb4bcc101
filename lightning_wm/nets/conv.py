"""Dreamer's image encoder and decoder for 64×64 observations (Hafner et al., "Dream to
Control: Learning Behaviors by Latent Imagination", 2020).

Encoder: four 4×4 stride-2 convolutions of depth d, 2d, 4d, 8d with ReLU (d = 32 in the paper):
64 → 31 → 14 → 6 → 2, so the embedding has 8d·2·2 = 32d numbers (1024 for d = 32).
Decoder ("a transposed convolutional neural network"): a dense layer to 32d, then transposed
convolutions 5, 5, 6, 6 (stride 2) back to 64×64; it outputs the mean of a unit-variance Gaussian.

Images arrive as uint8 ``[..., C, 64, 64]`` and are scaled to [-0.5, 0.5] by :func:`preprocess`,
which is also the decoder's target.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIDE = 64


def preprocess(obs: torch.Tensor) -> torch.Tensor:
    """Integer pixels (0..255) -> floats in [-0.5, 0.5]; float input must already be in [0, 1]."""
    if torch.is_floating_point(obs):
        return obs - 0.5
    return obs.float() / 255.0 - 0.5


def _check_image(shape: tuple[int, ...]) -> None:
    if len(shape) != 3 or tuple(shape[1:]) != (SIDE, SIDE):
        raise ValueError(f"the conv encoder/decoder take [C, {SIDE}, {SIDE}] images, got {shape}")


def _flat_apply(net, x: torch.Tensor, keep: int) -> torch.Tensor:
    """Apply ``net`` to ``x`` with all leading dims but the last ``keep`` flattened together."""
    lead = x.shape[:-keep] if keep else x.shape
    y = net(x.reshape(-1, *x.shape[x.dim() - keep:]))
    return y.reshape(*lead, *y.shape[1:])


class ConvEncoder(nn.Module):
    """``hidden``: the first three conv layers; ``out``: the last. Input ``[..., C, 64, 64]``."""

    def __init__(self, obs_shape: tuple[int, ...], depth: int = 32) -> None:
        super().__init__()
        _check_image(obs_shape)
        c, d = obs_shape[0], depth
        self.hidden = nn.Sequential(
            nn.Conv2d(c, d, 4, 2), nn.ReLU(),
            nn.Conv2d(d, 2 * d, 4, 2), nn.ReLU(),
            nn.Conv2d(2 * d, 4 * d, 4, 2), nn.ReLU(),
        )
        self.out = nn.Conv2d(4 * d, 8 * d, 4, 2)
        self.embed_size = 32 * d

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        def net(x):
            return F.relu(self.out(self.hidden(preprocess(x)))).flatten(1)
        return _flat_apply(net, obs, 3)


class ConvDecoder(nn.Module):
    """``hidden``: dense layer and three transposed convs; ``out``: the last transposed conv."""

    def __init__(self, feature_size: int, obs_shape: tuple[int, ...], depth: int = 32) -> None:
        super().__init__()
        _check_image(obs_shape)
        d = depth
        self.obs_shape = tuple(obs_shape)
        self.hidden = nn.Sequential(
            nn.Linear(feature_size, 32 * d), nn.Unflatten(1, (32 * d, 1, 1)),
            nn.ConvTranspose2d(32 * d, 4 * d, 5, 2), nn.ReLU(),
            nn.ConvTranspose2d(4 * d, 2 * d, 5, 2), nn.ReLU(),
            nn.ConvTranspose2d(2 * d, d, 6, 2), nn.ReLU(),
        )
        self.out = nn.ConvTranspose2d(d, obs_shape[0], 6, 2)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """Mean image in [-0.5, 0.5] space, ``[..., C, 64, 64]``."""
        def net(x):
            return self.out(self.hidden(x))
        return _flat_apply(net, feature, 1)

    @staticmethod
    def target(obs: torch.Tensor) -> torch.Tensor:
        return preprocess(obs)
