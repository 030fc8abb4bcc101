"""Building blocks of the EfficientZero networks (:mod:`lightning_wm.nets.efficientzero`).

Ye, Liu, Kurutach, Abbeel and Gao, "Mastering Atari Games with Limited Data" (NeurIPS 2021),
build every network from the residual blocks of He, Zhang, Ren and Sun, "Deep Residual Learning
for Image Recognition" (2016), with BatchNorm after every convolution, as MuZero does (Schrittwieser
et al., "Mastering Atari, Go, Chess and Shogi by Planning with a Learned Model", 2020). Heads
shrink the latent with a 1×1 convolution ("reduced channels") before a small MLP whose output
layer starts at zero, so every categorical output is uniform at initialisation.

Convolutions over a latent with a 1×1 grid (the flat-vector encoder's latent) use 1×1 kernels:
a 3×3 kernel on a 1×1 grid with zero padding only ever reads its centre tap, so the other eight
would be dead parameters.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: the latent resolution reduction of EfficientZero's ResNet downsampler (96×96 -> 6×6)
RESNET_DOWNSAMPLE = 16


def kernel_for(side: int) -> int:
    """3×3 convolutions on a spatial latent, 1×1 on a 1×1 one (see the module docstring)."""
    return 3 if side > 1 else 1


def conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    """A bias-free 'same' convolution: BatchNorm follows every one, which makes a bias redundant."""
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)


class ZeroLinear(nn.Module):
    """A linear layer whose weight and bias start (and re-initialise) at zero.

    EfficientZero zero-initialises the output layers of its value, policy and value-prefix MLPs
    ("init_zero" in its released Atari configuration) so training starts from uniform
    categoricals. The layer has its own ``reset_parameters`` rather than being an ``nn.Linear``
    because the library's init rule (:func:`lightning_wm.nets.init.init_weights`), applied by
    every agent and every transfer re-initialisation, would otherwise redraw it Glorot-uniform.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.weight.zero_()
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the input, then ReLU (He et al., 2016).

    With ``stride`` 2 or a change of channels the skip path is a strided 3×3 convolution without
    BatchNorm, as in EfficientZero's downsampling block.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv(in_ch, out_ch, kernel, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv(out_ch, out_ch, kernel)
        self.bn2 = nn.BatchNorm2d(out_ch)
        change = stride != 1 or in_ch != out_ch
        self.skip = conv(in_ch, out_ch, kernel, stride) if change else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))


class ResNetDownsample(nn.Sequential):
    """EfficientZero's observation downsampler (MuZero's Atari downsampling, kept by
    EfficientZero): 3×3 stride-2 conv to c/2 channels, a block at c/2, a stride-2 block
    to c, a block, 3×3 stride-2 average pooling, a block, average pooling. Each stage maps a side
    n to ⌈n/2⌉, so 96 -> 48 -> 24 -> 12 -> 6."""

    def __init__(self, in_ch: int, channels: int) -> None:
        half = channels // 2
        super().__init__(
            conv(in_ch, half, 3, 2), nn.BatchNorm2d(half), nn.ReLU(),
            ResidualBlock(half, half),
            ResidualBlock(half, channels, stride=2),
            ResidualBlock(channels, channels),
            nn.AvgPool2d(3, stride=2, padding=1),
            ResidualBlock(channels, channels),
            nn.AvgPool2d(3, stride=2, padding=1),
        )


def conv_stem(in_ch: int, channels: int, downsample: int) -> nn.Sequential:
    """log2(``downsample``) stride-2 3×3 conv-BN-ReLU layers (one stride-1 layer for 1, MuZero's
    representation stem for inputs that need no downsampling)."""
    strides = int(math.log2(downsample))
    if downsample < 1 or 2 ** strides != downsample:
        raise ValueError(f"downsample must be {RESNET_DOWNSAMPLE} or a power of two below it, "
                         f"not {downsample}")
    layers: list[nn.Module] = []
    for i in range(max(strides, 1)):
        layers += [conv(in_ch if i == 0 else channels, channels, 3, 2 if strides else 1),
                   nn.BatchNorm2d(channels), nn.ReLU()]
    return nn.Sequential(*layers)


def vector_stem(obs_dim: int, channels: int, hidden: int) -> nn.Sequential:
    """A flat observation -> ``[B, channels, 1, 1]`` through a two-layer MLP with BatchNorm, so the
    rest of the networks treat it as a latent on a 1×1 grid."""
    return nn.Sequential(
        nn.Linear(obs_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, channels), nn.BatchNorm1d(channels), nn.ReLU(),
        nn.Unflatten(1, (channels, 1, 1)),
    )


def min_max(latent: torch.Tensor) -> torch.Tensor:
    """Min-max scale each sample's latent to [0, 1] over all its units, MuZero's way of keeping
    hidden states in the range of the action planes. The floor on the range keeps a constant
    latent (all ReLUs off) finite instead of 0/0."""
    flat = latent.flatten(1)
    low = flat.min(1, keepdim=True).values
    high = flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-5)).view_as(latent)


def reducer(channels: int, reduced: int) -> nn.Sequential:
    """1×1 conv (with bias, as EfficientZero's heads) -> BN -> ReLU -> flatten."""
    return nn.Sequential(nn.Conv2d(channels, reduced, 1), nn.BatchNorm2d(reduced), nn.ReLU(),
                         nn.Flatten(1))


class CategoricalHead(nn.Module):
    """``reduce`` (1×1 conv to a few channels, flattened) -> ``hidden`` (Linear-BN-ReLU) ->
    ``out`` (zero-initialised Linear): logits over ``out_dim`` classes from a latent map."""

    def __init__(self, channels: int, cells: int, reduced: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.reduce = reducer(channels, reduced)
        self.hidden = nn.Sequential(nn.Linear(reduced * cells, hidden), nn.BatchNorm1d(hidden),
                                    nn.ReLU())
        self.out = ZeroLinear(hidden, out_dim)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.reduce(latent)))


LSTMState = tuple[torch.Tensor, torch.Tensor]


class ValuePrefixHead(nn.Module):
    """EfficientZero's end-to-end value-prefix predictor: the reduced next latent feeds an LSTM
    whose output, after BN and ReLU, gives logits of the value prefix: the sum of rewards since the
    LSTM state was last reset (the agent builds that target; the head only predicts it).

    ``reduce`` -> ``lstm`` (one ``nn.LSTMCell`` step per call; the caller threads the state)
    -> ``norm`` (BN) -> ReLU -> ``hidden`` (Linear-BN-ReLU) -> ``out`` (zero-initialised).
    """

    def __init__(self, channels: int, cells: int, reduced: int, lstm_hidden: int, hidden: int,
                 support_size: int) -> None:
        super().__init__()
        self.reduce = reducer(channels, reduced)
        self.lstm = nn.LSTMCell(reduced * cells, lstm_hidden)
        self.norm = nn.BatchNorm1d(lstm_hidden)
        self.hidden = nn.Sequential(nn.Linear(lstm_hidden, hidden), nn.BatchNorm1d(hidden),
                                    nn.ReLU())
        self.out = ZeroLinear(hidden, support_size)

    def forward(self, latent: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        h, c = self.lstm(self.reduce(latent), state)
        return self.out(self.hidden(F.relu(self.norm(h)))), (h, c)
