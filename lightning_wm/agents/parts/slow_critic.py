"""DreamerV2's behaviour (Hafner et al., "Mastering Atari with Discrete World Models", 2021):
λ-targets from predicted discounts and a slow target critic, a reinforce actor with entropy
regularisation for discrete actions (dynamics backprop for continuous ones), and a
discount-weighted critic.

Equation numbers follow Voskuil, "Pre-training World Models to efficiently learn related tasks"
(Master's thesis, Leiden University, 2022, §2.3), which states DreamerV2's losses as eq. (4)
(λ-targets), (5) (critic) and (6) (actor).
"""
from __future__ import annotations

import contextlib
import copy
from typing import NamedTuple

import torch
from torch import distributions as D
from torch import nn

from lightning_wm.agents.parts.world_model import WorldModel
from lightning_wm.agents.protocol import Terms
from lightning_wm.losses import cumulative_discount, lambda_returns, reinforce_objective
from lightning_wm.nets.rssm import State


class Imagined(NamedTuple):
    """An imagined batch of trajectories."""
    feat: torch.Tensor            # [H+1, N, F]: the start state, then H imagined states
    action: torch.Tensor          # [H, N, A]: the action taken in state t
    start_terminal: torch.Tensor  # [N]: the replay's is_terminal of the start states


class SlowCriticActorCritic:
    """The slow critic ``target`` is a frozen copy of ``value``, re-synced before every
    ``target_every``-th update (the first included, so it starts from the initial or transferred
    critic). It is no component: transfer never addresses it."""

    def __init__(self, components: nn.ModuleDict, world_model: WorldModel, *, horizon: int,
                 gamma: float, lam: float, discrete: bool, reinforce: bool, actor_ent: float,
                 target_every: int) -> None:
        self.components, self.world_model = components, world_model
        self.horizon, self.gamma, self.lam = int(horizon), float(gamma), float(lam)
        self.discrete, self.reinforce = bool(discrete), bool(reinforce)
        self.actor_ent, self.target_every = float(actor_ent), int(target_every)
        self.target = copy.deepcopy(components["value"]).requires_grad_(False)

    @torch.no_grad()
    def sync_target(self) -> None:
        self.target.load_state_dict(self.components["value"].state_dict())

    def before_update(self, updates_done: int) -> None:
        if updates_done % self.target_every == 0:
            self.sync_target()

    def imagine(self, start: State, start_terminal: torch.Tensor) -> Imagined:
        """``horizon`` steps from the ``[N]`` posterior states; without autograd when the actor
        learns by reinforce (nothing then differentiates through the imagined states)."""
        no_grad = torch.no_grad() if self.reinforce else contextlib.nullcontext()
        with no_grad:
            feats, actions = self.world_model.rssm.imagine(start, self.components["actor"],
                                                           self.horizon)
        return Imagined(torch.cat([start.feature()[None], feats]), actions, start_terminal)

    def lambda_targets(self, traj: Imagined) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. (4) on states t = 0..H−1, bootstrapped with the target critic at H:

            V^λ_t = R̂_t + γ̂'_t [(1 − λ) v(ẑ_{t+1}) + λ V^λ_{t+1}],   γ̂'_t = γ · P(continue_t),

        the start's γ̂' taken from the replay's is_terminal. Returns V^λ ``[H, N]`` and the
        detached weights Π_{k<t} γ̂'_k of states 0..H ``[H+1, N]``.
        """
        disc = self.gamma * self.world_model.predict_discount(traj.feat)
        disc = torch.cat([self.gamma * (1.0 - traj.start_terminal)[None], disc[1:]])
        reward = self.world_model.predict_reward(traj.feat)
        value = self.target(traj.feat).squeeze(-1)
        returns = lambda_returns(reward[:-1], value[:-1], disc[:-1], value[-1], self.lam)
        return returns, cumulative_discount(disc).detach()

    def actor_terms(self, traj: Imagined) -> tuple[Terms, tuple[torch.Tensor, torch.Tensor]]:
        """Eq. (6) for the actions of states t = 0..H−2:

            −w_t [ln π(a_t | ẑ_t) sg(V^λ_{t+1} − v_target(ẑ_t)) + η H[π(· | ẑ_t)]]

        (reinforce, as DreamerV2 indexes it: the target after a_t minus the baseline before it),
        or −w_t [V^λ_{t+1} + η H] backpropagated through the dynamics (continuous actions).
        """
        returns, weight = self.lambda_targets(traj)
        feat, w = traj.feat[:-2].detach(), weight[:-2]
        if self.reinforce:
            baseline = self.target(traj.feat[:-2]).squeeze(-1)
            log_prob = self._log_prob(feat, traj.action[:-1].detach())
            terms = {"actor/reinforce": -(w * reinforce_objective(log_prob, returns[1:],
                                                                  baseline)).mean()}
        else:
            terms = {"actor/return": -(w * returns[1:]).mean()}
        terms["actor/entropy"] = -(w * self.actor_ent * self._entropy(feat)).mean()
        return terms, (returns, weight)

    def critic_terms(self, traj: Imagined, targets: tuple[torch.Tensor, torch.Tensor]) -> Terms:
        """Eq. (5): Σ_t w_t ½ (v(ẑ_t) − sg(V^λ_t))² on states 0..H−1 (detached)."""
        returns, weight = targets
        value = self.components["value"](traj.feat[:-1].detach()).squeeze(-1)
        return {"value/mse": (weight[:-1] * 0.5 * (value - returns.detach()).pow(2)).mean()}

    def _log_prob(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        actor = self.components["actor"]
        if self.discrete:
            return actor.log_prob(feat, action)
        return actor.dist(feat).log_prob(action.clamp(-1 + 1e-6, 1 - 1e-6))

    def _entropy(self, feat: torch.Tensor) -> torch.Tensor:
        """H[π(· | ẑ)]: exact for the categorical; the pre-tanh Gaussian's for Box actions."""
        actor = self.components["actor"]
        if self.discrete:
            return actor.entropy(feat)
        mean, std = actor.normal(feat)
        return D.Normal(mean, std).entropy().sum(-1)
