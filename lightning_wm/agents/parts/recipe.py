"""A Dreamer version as data: its option tables and how its parts are built from them.

:class:`~lightning_wm.agents.dreamer.DreamerAgent` is one class; a version (V1, V2, and later a
DreamerV3 or APV) is a :class:`Recipe` that names its tables and chooses its latent, heads,
world-model options, behaviour and replay needs. Nothing is inherited.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from lightning_wm.agents.configs import resolve_preset
from lightning_wm.agents.parts.behaviour import Behaviour
from lightning_wm.agents.parts.world_model import WorldModel, WorldModelOptions, observation_model
from lightning_wm.agents.protocol import AbsorbingOptions
from lightning_wm.nets.heads import MLPHead
from lightning_wm.nets.rssm import Representation, Transition

Config = Mapping[str, Any]


def _no_checks(cfg: Config) -> None:
    pass


def _plain_windows(cfg: Config) -> AbsorbingOptions | None:
    return None


@dataclass(frozen=True)
class Recipe:
    #: the version's name in error messages ("Dreamer", "DreamerV2")
    name: str
    #: everything not a size, and the ``size`` presets
    defaults: Config
    sizes: Mapping[str, Config]
    #: cfg -> the RSSM's stochastic latent (see :mod:`lightning_wm.nets.latent`)
    latent: Callable[[Config], Any]
    #: (cfg, feature size, action width) -> ``value``, ``actor`` and any further heads, built in
    #: the order returned
    heads: Callable[[Config, int, int], dict[str, nn.Module]]
    world_model: Callable[[Config], WorldModelOptions]
    #: (cfg, components, world model) -> the behaviour
    behaviour: Callable[[Config, nn.ModuleDict, WorldModel], Behaviour]
    #: cfg -> whether replay windows may run into absorbing states
    absorbing: Callable[[Config], AbsorbingOptions | None] = _plain_windows
    #: raises ValueError on inconsistent options
    check: Callable[[Config], None] = _no_checks

    def resolve(self, size: str, overrides: Config) -> dict[str, Any]:
        """``size`` preset + defaults, then explicit ``overrides`` (unknown keys raise a
        TypeError that lists the known ones), then the version's checks."""
        # one resolver for agents and for suite validation, which must not import torch
        return resolve_preset(self.name, self.defaults, self.sizes, size, overrides, self.check)

    def components(self, cfg: Config, obs_shape: tuple[int, ...], action_dim: int,
                   latent) -> dict[str, nn.Module]:
        """Every component, created in a fixed order: the order of torch's random draws at
        init, which the committed results depend on (encoder, decoder, representation,
        transition, reward, then the recipe's heads)."""
        feat = latent.sample_size + cfg["deter"]
        encoder, decoder = observation_model(obs_shape, feat, cfg)
        parts = {
            "encoder": encoder,
            "representation": Representation(cfg["deter"], encoder.embed_size, cfg["hidden"],
                                             latent.params_size),
            "transition": Transition(latent.sample_size, action_dim, cfg["deter"], cfg["hidden"],
                                     latent.params_size),
            "decoder": decoder,
            "reward": reward_model(cfg, feat, int(cfg["meta_sources"])),
        }
        return {**parts, **self.heads(cfg, feat, action_dim)}


def reward_model(cfg: Config, feature_size: int, meta_sources: int = 0) -> nn.Module:
    """The reward head; with ``meta_sources`` N it also reads N source models' predictions."""
    return MLPHead(feature_size + meta_sources, 1, cfg["units"], cfg["reward_layers"])
