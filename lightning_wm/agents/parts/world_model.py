"""Dreamer's world model: encoder, RSSM (representation + transition), decoder, reward head,
optionally a discount head and N frozen source reward models; it owns its loss.

A plain object over the agent's ``components`` (looked up by name on every call, so a component
that a callback wraps or replaces is the one used) and the agent's ``meta_rewards``: the agent's
modules stay the one registry of parameters, and checkpoints keep their keys.

The loss (Hafner et al., "Dream to Control: Learning Behaviors by Latent Imagination", 2020,
Algorithm 1, dynamics learning) is the reconstruction, reward and KL terms; DreamerV2's (Hafner et
al., "Mastering Atari with Discrete World Models", 2021, eq. (3)) adds tanh-clipped reward
targets, the discount head's Bernoulli NLL and the loss scales β (KL) and the discount scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents.protocol import Batch, Terms
from lightning_wm.losses import kl_free_nats
from lightning_wm.nets.conv import ConvDecoder, ConvEncoder
from lightning_wm.nets.dense import DenseDecoder, DenseEncoder
from lightning_wm.nets.rssm import RSSM, State

#: the components the world model trains (the optimiser group ``model``), in the order the
#: agent lists them
COMPONENTS = ("encoder", "representation", "transition", "decoder", "reward", "discount")


@dataclass(frozen=True)
class WorldModelOptions:
    #: KL below this many nats is not penalised (V1: 3; V2: 0)
    free_nats: float
    #: ``"tanh"``: reward targets squashed by tanh (DreamerV2 on Atari); ``"none"``: as observed
    clip_rewards: str = "none"
    #: a ``discount`` head predicts P(continue) (DreamerV2)
    discount: bool = False
    #: loss scales applied inside the terms, ``{term: scale}`` (DreamerV2: β = ``kl_scale`` for
    #: ``transition/kl``, ``discount_scale`` for ``discount/nll``); the agent's loss weights
    #: multiply the scaled terms
    scales: Mapping[str, float] = field(default_factory=dict)


def observation_model(obs_shape: tuple[int, ...], feature_size: int,
                      cfg: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) for ``[C, 64, 64]`` images (CNNs) or flat vectors (MLPs)."""
    if len(obs_shape) == 3:
        return (ConvEncoder(obs_shape, cfg["depth"]),
                ConvDecoder(feature_size, obs_shape, cfg["depth"]))
    if len(obs_shape) == 1:
        return (DenseEncoder(obs_shape[0], cfg["embed"], cfg["units"], cfg["dense_layers"]),
                DenseDecoder(feature_size, obs_shape[0], cfg["units"], cfg["dense_layers"]))
    raise ValueError(f"Dreamer takes [C, 64, 64] images or flat vectors, not {obs_shape}")


class WorldModel:
    def __init__(self, components: nn.ModuleDict, latent, meta_rewards: nn.ModuleList,
                 options: WorldModelOptions) -> None:
        self.components, self.latent = components, latent
        self.meta_rewards, self.options = meta_rewards, options

    @property
    def rssm(self) -> RSSM:
        return RSSM(self.components["transition"], self.components["representation"], self.latent)

    def predict_reward(self, feature: torch.Tensor) -> torch.Tensor:
        """Mean reward r̂ = m_Θ(x, m_θ1(x), …, m_θN(x)) ``[...]``: with N source models, the reward
        head also reads their predictions (meta-model transfer: Sasso, Sabatelli and Wiering,
        "Multi-Source Transfer Learning for Deep Model-Based Reinforcement Learning", TMLR, 2023,
        Algorithm 4)."""
        if len(self.meta_rewards):
            feature = torch.cat([feature, *(m(feature) for m in self.meta_rewards)], -1)
        return self.components["reward"](feature).squeeze(-1)

    def predict_discount(self, feature: torch.Tensor) -> torch.Tensor:
        """P(the state continues): the mean of DreamerV2's Bernoulli γ̂_t, ``[...]``."""
        return torch.sigmoid(self.components["discount"](feature).squeeze(-1))

    def filter_step(self, state: State, prev_action: torch.Tensor, obs: torch.Tensor) -> State:
        """The posterior state after observing ``obs`` (acting: one step of the filter)."""
        embed = self.components["encoder"](obs)
        state, _, _ = self.rssm.obs_step(state, prev_action, embed)
        return state

    def reward_target(self, reward: torch.Tensor) -> torch.Tensor:
        """The rewards the reward head learns (tanh-squashed with ``clip_rewards="tanh"``)."""
        reward = reward.float()
        return torch.tanh(reward) if self.options.clip_rewards == "tanh" else reward

    def _scaled(self, name: str, term: torch.Tensor) -> torch.Tensor:
        scale = self.options.scales.get(name)
        return term if scale is None else scale * term

    def loss(self, batch: Batch) -> tuple[Terms, State]:
        """Named terms of one stream's batch and its posterior states ``[B, T]`` (where the
        imagination starts). The terms are built in the order below on purpose: it is the
        order of the autograd graph, hence of the gradient sums (the committed results
        reproduce bit for bit)."""
        o, c = self.options, self.components
        obs, action = batch["obs"], batch["action"].float()
        reward = self.reward_target(batch["reward"])
        embed = c["encoder"](obs)
        states, post, prior = self.rssm.observe(embed, action, batch["is_first"])
        feat = states.feature()
        decoder = c["decoder"]
        recon, target = decoder(feat), decoder.target(obs)
        pixel_dims = tuple(range(2, recon.dim()))
        terms = {"decoder/nll": 0.5 * (recon - target).pow(2).sum(pixel_dims).mean(),
                 "reward/nll": 0.5 * (self.predict_reward(feat) - reward).pow(2).mean(),
                 "transition/kl": kl_free_nats(self.latent.kl(post, prior), o.free_nats)}
        terms = {name: self._scaled(name, term) for name, term in terms.items()}
        if o.discount:
            # a feature of its own (not ``feat``): one more use of ``feat`` would change the
            # order in which autograd sums its gradients
            logit = c["discount"](states.feature()).squeeze(-1)
            cont = 1.0 - batch["is_terminal"].float()  # 0 at terminal and absorbing steps
            terms["discount/nll"] = self._scaled(
                "discount/nll", F.binary_cross_entropy_with_logits(logit, cont))
        return terms, states

    @torch.no_grad()
    def reconstruct(self, obs: torch.Tensor, action: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded posterior of one observed sequence ``obs`` ``[T, ...]`` with the actions that
        led to each step ``[T, A]``: (reconstruction, target), both in the decoder's space."""
        obs, action = obs.unsqueeze(0), action.float().unsqueeze(0)
        is_first = torch.zeros(obs.shape[:2], dtype=torch.bool, device=obs.device)
        is_first[:, 0] = True
        states, _, _ = self.rssm.observe(self.components["encoder"](obs), action, is_first)
        decoder = self.components["decoder"]
        return decoder(states.feature())[0], decoder.target(obs)[0]
