"""EfficientZero's networks at three sizes (Ye, Liu, Kurutach, Abbeel and Gao, "Mastering Atari
Games with Limited Data", NeurIPS 2021), the MuZero family's representation, dynamics and
prediction functions (Schrittwieser et al., "Mastering Atari, Go, Chess and Shogi by Planning
with a Learned Model", 2020) plus the SimSiam projection and predictor of EfficientZero's
temporal consistency loss (Chen and He, "Exploring Simple Siamese Representation Learning", 2021).

Every latent is a map ``[B, c, h, w]``; a flat observation becomes a latent on a 1×1 grid, so one
code path serves Atari frames and a toy environment's state vector. Architecture details follow
the authors' released Atari configuration where the paper is silent; :data:`SIZES` lists every
number with its source. Departures from that code, all of which leave the function unchanged:

- the dynamics' first convolution, over [latent ; action planes], is split into ``state_input``
  and ``action_input`` (bias-free, summed: the same function and parameter count), so transfer
  can address the weights that read the action;
- layers the released code builds but never calls (a second residual stack in its dynamics, a
  stem convolution its representation skips when downsampling) are not built;
- weights follow the library's init rule (:mod:`lightning_wm.nets.init`), not PyTorch's
  defaults, so a re-initialised layer of a transferred agent is drawn like a scratch one; the
  value, policy and value-prefix output layers start at zero as in EfficientZero.

Xu et al., "On the Feasibility of Cross-Task Transfer with Model-Based Reinforcement Learning"
(2022) use this architecture and a variant with four times the representation parameters
(EfficientZero-L) whose layout they do not give; it is not in the table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.nets.efficientzero_blocks import (
    RESNET_DOWNSAMPLE, CategoricalHead, LSTMState, ResidualBlock, ResNetDownsample,
    ValuePrefixHead, conv, conv_stem, kernel_for, min_max, vector_stem,
)
from lightning_wm.nets.init import init_weights

#: EfficientZero's value and value-prefix supports: the integers -300..300
PAPER_SUPPORT_SIZE = 601
ACTION_ENCODINGS = ("scalar", "one_hot")


def _blocks(channels: int, count: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(channels, channels, kernel) for _ in range(count)])


class Representation(nn.Module):
    """Observation -> latent ``[B, c, h, w]`` (``latent_shape``).

    Pixels ``[B, C·stack, H, W]`` (uint8 scaled to [0, 1] here; floats taken as already scaled)
    pass a stem chosen by ``downsample``: 16 is EfficientZero's ResNet downsampler, a smaller
    power of two that many-fold reduction by stride-2 convolutions; h = ⌈H / downsample⌉. A flat
    ``[B, D]`` observation passes a two-layer MLP of width ``encoder_hidden`` to ``[B, c, 1, 1]``.
    ``blocks`` residual blocks follow; ``normalise`` min-max scales the result (MuZero).
    """

    def __init__(self, obs_shape: tuple[int, ...], channels: int, blocks: int,
                 downsample: int = RESNET_DOWNSAMPLE, encoder_hidden: int = 64,
                 normalise: bool = False) -> None:
        super().__init__()
        obs_shape = tuple(int(n) for n in obs_shape)
        if len(obs_shape) == 1:
            self.stem = vector_stem(obs_shape[0], channels, encoder_hidden)
            grid = (1, 1)
        elif len(obs_shape) == 3:
            self.stem = (ResNetDownsample(obs_shape[0], channels) if downsample == RESNET_DOWNSAMPLE
                         else conv_stem(obs_shape[0], channels, downsample))
            grid = tuple(math.ceil(n / downsample) for n in obs_shape[1:])
        else:
            raise ValueError(f"observations must be [D] or [C, H, W], not {obs_shape}")
        self.pixels = len(obs_shape) == 3
        self.blocks = _blocks(channels, blocks, kernel_for(max(grid)))
        self.latent_shape = (channels, *grid)
        self.normalise = normalise
        init_weights(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float()
        if self.pixels and not torch.is_floating_point(obs):
            x = x / 255.0
        latent = self.blocks(self.stem(x))
        return min_max(latent) if self.normalise else latent


class Dynamics(nn.Module):
    """(latent, action) -> (next latent, value-prefix logits, LSTM state).

    The action enters as constant planes over the latent grid: ``"scalar"`` is EfficientZero's one
    plane of value a / A, ``"one_hot"`` MuZero's A one-hot planes. Then
    relu(BN(state_input(s) + action_input(planes)) + s) and ``blocks`` residual blocks give the
    next latent; ``value_prefix`` (:class:`ValuePrefixHead`) reads it with one LSTM step. The LSTM
    state ``(h, c)``, each ``[B, lstm_hidden]``, is passed in and returned so the search can carry
    it along a path and reset it (:meth:`initial_hidden`, :meth:`reset_hidden`).
    """

    def __init__(self, latent_shape: tuple[int, int, int], num_actions: int, blocks: int,
                 reduced_channels: int, head_hidden: int, lstm_hidden: int, support_size: int,
                 action_encoding: str = "scalar", normalise: bool = False) -> None:
        super().__init__()
        if action_encoding not in ACTION_ENCODINGS:
            raise ValueError(f"action_encoding must be one of {ACTION_ENCODINGS}, "
                             f"not {action_encoding!r}")
        c, h, w = latent_shape
        kernel = kernel_for(max(h, w))
        self.num_actions, self.action_encoding = num_actions, action_encoding
        self.lstm_hidden, self.normalise = lstm_hidden, normalise
        planes = 1 if action_encoding == "scalar" else num_actions
        self.state_input = conv(c, c, kernel)
        self.action_input = conv(planes, c, kernel)
        self.bn = nn.BatchNorm2d(c)
        self.blocks = _blocks(c, blocks, kernel)
        self.value_prefix = ValuePrefixHead(c, h * w, reduced_channels, lstm_hidden, head_hidden,
                                            support_size)
        init_weights(self)

    def action_planes(self, action: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Integer actions ``[B]`` -> ``[B, 1 or A, h, w]`` planes."""
        b, _, h, w = latent.shape
        if self.action_encoding == "scalar":
            code = (action.to(latent.dtype) / self.num_actions)[:, None]
        else:
            code = F.one_hot(action.long(), self.num_actions).to(latent.dtype)
        return code[:, :, None, None].expand(b, code.shape[1], h, w)

    def initial_hidden(self, batch_size: int, device: torch.device | str | None = None,
                       dtype: torch.dtype | None = None) -> LSTMState:
        """The LSTM state at the root of an unroll: zeros, as EfficientZero starts every search."""
        zeros = torch.zeros(batch_size, self.lstm_hidden, device=device, dtype=dtype)
        return zeros, zeros.clone()

    @staticmethod
    def reset_hidden(hidden: LSTMState, reset: torch.Tensor) -> LSTMState:
        """Zero the state of the rows where ``reset`` (bool ``[B]``) is set: EfficientZero restarts
        the value prefix every few unroll steps (its "LSTM horizon")."""
        keep = (~reset.bool())[:, None]
        return tuple(torch.where(keep, x, torch.zeros_like(x)) for x in hidden)

    def forward(self, latent: torch.Tensor, action: torch.Tensor,
                hidden: LSTMState) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """``[B, c, h, w]``, ``[B]``, ((``[B, H]``, ``[B, H]``)) -> next latent ``[B, c, h, w]``,
        value-prefix logits ``[B, support_size]``, the new LSTM state."""
        x = self.state_input(latent) + self.action_input(self.action_planes(action, latent))
        nxt = self.blocks(F.relu(self.bn(x) + latent))
        logits, hidden = self.value_prefix(nxt, hidden)
        # EfficientZero predicts the value prefix from the latent before it is rescaled
        return (min_max(nxt) if self.normalise else nxt), logits, hidden

    def unroll(self, latent: torch.Tensor, actions: torch.Tensor, hidden: LSTMState | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """K steps with the state threaded: actions ``[B, K]`` -> latents ``[B, K, c, h, w]``,
        logits ``[B, K, support_size]``, the final LSTM state (zeros in when ``hidden`` is None)."""
        if hidden is None:
            hidden = self.initial_hidden(latent.shape[0], latent.device, latent.dtype)
        latents, logits = [], []
        for k in range(actions.shape[1]):
            latent, step_logits, hidden = self(latent, actions[:, k], hidden)
            latents.append(latent)
            logits.append(step_logits)
        return torch.stack(latents, 1), torch.stack(logits, 1), hidden


class Prediction(nn.Module):
    """Latent -> (policy logits ``[B, A]``, value logits ``[B, support_size]``): ``blocks``
    residual blocks, then ``policy_head`` and ``value_head`` (:class:`CategoricalHead`), each with
    its own 1×1 reduction and a zero-initialised ``out`` layer."""

    def __init__(self, latent_shape: tuple[int, int, int], num_actions: int, blocks: int,
                 reduced_channels: int, head_hidden: int, support_size: int) -> None:
        super().__init__()
        c, h, w = latent_shape
        self.blocks = _blocks(c, blocks, kernel_for(max(h, w)))
        self.policy_head = CategoricalHead(c, h * w, reduced_channels, head_hidden, num_actions)
        self.value_head = CategoricalHead(c, h * w, reduced_channels, head_hidden, support_size)
        init_weights(self)

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(latent)
        return self.policy_head(x), self.value_head(x)


class Projection(nn.Module):
    """SimSiam's projection MLP on the flattened latent: ``hidden`` is Linear-BN-ReLU twice,
    ``out`` Linear-BN (SimSiam's output layer has BN and no ReLU). The agent feeds the target branch
    through it under stop-gradient; the online branch continues into :class:`Predictor`."""

    def __init__(self, latent_shape: tuple[int, int, int], hidden: int, out: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(math.prod(latent_shape), hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        )
        self.out = nn.Sequential(nn.Linear(hidden, out), nn.BatchNorm1d(out))
        init_weights(self)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """``[B, c, h, w]`` -> ``[B, out]``."""
        return self.out(self.hidden(latent))


class Predictor(nn.Module):
    """SimSiam's predictor: ``hidden`` Linear-BN-ReLU (a bottleneck), ``out`` a plain Linear."""

    def __init__(self, in_dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.out = nn.Linear(hidden, out)
        init_weights(self)

    def forward(self, projection: torch.Tensor) -> torch.Tensor:
        """``[B, in_dim]`` -> ``[B, out]``."""
        return self.out(self.hidden(projection))


@dataclass(frozen=True)
class EfficientZeroSize:
    """The numbers that size the networks (see :data:`SIZES`).

    ``side``, ``frame_channels`` and ``stack`` describe the observation the size is meant for
    (:attr:`obs_shape`); the builder takes any observation shape. ``encoder_hidden`` is the width
    of the flat-vector encoder, which EfficientZero does not have.
    """

    channels: int
    blocks: int
    downsample: int
    reduced_channels: int
    head_hidden: int
    lstm_hidden: int
    proj_hidden: int
    proj_out: int
    pred_hidden: int
    pred_out: int
    encoder_hidden: int
    side: int
    frame_channels: int
    stack: int

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        return (self.frame_channels * self.stack, self.side, self.side)


#: Sizes by name. ``paper``: Ye et al.'s released Atari configuration
#: (github.com/YeWR/EfficientZero, ``config/atari/__init__.py``): 96×96 RGB frames (grayscale
#: off by default), 4 stacked; ``channels`` 64; ``blocks`` 1 per function; ``downsample`` 16
#: (its downsampling ResNet, 96 -> 6); ``reduced_channels`` 16 for reward, value and policy heads;
#: ``head_hidden`` 32 (one hidden layer in each of those heads); ``lstm_hidden`` 512;
#: projection 1024 / 1024 and predictor 512 / 1024 (``proj_hid``, ``proj_out``, ``pred_hid``,
#: ``pred_out``); its value and value-prefix supports are -300..300 (``core/config.py``,
#: :data:`PAPER_SUPPORT_SIZE`). ``encoder_hidden`` 256 is this library's choice.
#: ``small``: a laptop: 64×64 grayscale, 4 stacked, 32 channels (the width that configuration
#: switches to for grayscale), SimSiam widths 256 / 256 / 64 / 256 (its network's defaults),
#: LSTM 128: about a ninth of the paper's multiply-adds per inference and step.
#: ``tiny``: CI: a toy environment's state vector (about 5k parameters for a 5-d vector) or 16×16
#: frames, 2 stacked (about 13k), with two stride-2 convolutions (16 -> 4).
SIZES: dict[str, EfficientZeroSize] = {
    "tiny": EfficientZeroSize(channels=8, blocks=1, downsample=4, reduced_channels=2,
                              head_hidden=16, lstm_hidden=16, proj_hidden=16, proj_out=16,
                              pred_hidden=8, pred_out=16, encoder_hidden=32, side=16,
                              frame_channels=1, stack=2),
    "small": EfficientZeroSize(channels=32, blocks=1, downsample=16, reduced_channels=16,
                               head_hidden=32, lstm_hidden=128, proj_hidden=256, proj_out=256,
                               pred_hidden=64, pred_out=256, encoder_hidden=128, side=64,
                               frame_channels=1, stack=4),
    "paper": EfficientZeroSize(channels=64, blocks=1, downsample=16, reduced_channels=16,
                               head_hidden=32, lstm_hidden=512, proj_hidden=1024, proj_out=1024,
                               pred_hidden=512, pred_out=1024, encoder_hidden=256, side=96,
                               frame_channels=3, stack=4),
}


def build_efficientzero(size: str | EfficientZeroSize, obs_shape: tuple[int, ...],
                        num_actions: int, value_support_size: int, reward_support_size: int,
                        action_encoding: str = "scalar", normalise_latent: bool = False
                        ) -> nn.ModuleDict:
    """The five components, keyed by their vocabulary names (:mod:`lightning_wm.components`):
    ``representation``, ``dynamics``, ``prediction``, ``projection``, ``predictor``.

    ``obs_shape`` is what the representation receives (stacked frames ``[C·stack, H, W]`` or a
    vector ``[D]``). ``normalise_latent`` is off by default, as in EfficientZero's released
    configuration (MuZero scales hidden states; EfficientZero's code keeps it as an option).
    """
    s = SIZES[size] if isinstance(size, str) else size
    representation = Representation(obs_shape, s.channels, s.blocks, s.downsample,
                                    s.encoder_hidden, normalise_latent)
    latent = representation.latent_shape
    return nn.ModuleDict({
        "representation": representation,
        "dynamics": Dynamics(latent, num_actions, s.blocks, s.reduced_channels, s.head_hidden,
                             s.lstm_hidden, reward_support_size, action_encoding, normalise_latent),
        "prediction": Prediction(latent, num_actions, s.blocks, s.reduced_channels,
                                 s.head_hidden, value_support_size),
        "projection": Projection(latent, s.proj_hidden, s.proj_out),
        "predictor": Predictor(s.proj_out, s.pred_hidden, s.pred_out),
    })
