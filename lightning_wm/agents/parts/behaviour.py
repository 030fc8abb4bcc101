"""Dreamer's behaviour: an actor-critic learned on trajectories imagined by the world model.

Every behaviour offers the four steps the agent's update runs (see :class:`Behaviour`); what a
trajectory holds is the behaviour's own business, the agent only hands it from ``imagine`` to the
two losses. :class:`DynamicsActorCritic` is Dreamer V1's (Hafner et al., "Dream to Control:
Learning Behaviors by Latent Imagination", 2020, Algorithm 1, behaviour learning); DreamerV2's is
:class:`~lightning_wm.agents.parts.slow_critic.SlowCriticActorCritic`.
"""
from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from lightning_wm.agents.parts.world_model import WorldModel
from lightning_wm.agents.protocol import Terms
from lightning_wm.losses import lambda_returns
from lightning_wm.nets.rssm import State


class Behaviour(Protocol):
    #: the slow critic the λ-targets bootstrap from, or ``None`` (the critic itself). The agent
    #: registers it as ``target_value`` (so checkpoints carry it) and counts the updates
    #: :meth:`before_update` reads.
    target: nn.Module | None

    def before_update(self, updates_done: int) -> None:
        """Called first in every update of an agent whose behaviour has a ``target``."""

    def imagine(self, start: State, start_terminal: torch.Tensor) -> Any:
        """A trajectory of ``horizon`` imagined steps from the ``[N]`` start states, whose
        replay ``is_terminal`` flags are ``start_terminal`` ``[N]``."""

    def actor_terms(self, trajectory: Any) -> tuple[Terms, Any]:
        """The actor's named terms, and the targets the critic regresses."""

    def critic_terms(self, trajectory: Any, targets: Any) -> Terms:
        """The critic's named terms (on detached states and targets)."""


class DynamicsActorCritic:
    """Dreamer V1: the actor maximises V_λ by backpropagating through the imagined dynamics; the
    critic regresses V_λ; later imagined steps weigh γ^τ. A trajectory is the features
    ``[H, N, F]`` of the imagined states (the start excluded).

    ``actor_ent`` > 0 adds an entropy bonus η·E[log π(a | s)] on the imagined states, with the
    squashed (tanh) density, as soft actor-critic does (Haarnoja et al., "Soft Actor-Critic",
    ICML, 2018). V1 has none (0, the default, draws nothing extra). Why it is there: without it a
    small Dreamer's actor can push its pre-tanh mean to the soft clip (±5) and its std to ~0; the
    action is then a constant ±1, tanh's gradient vanishes and the actor never leaves. The
    squashed density's −log(1 − tanh²u) grows with |u|, so the bonus pulls the mean back."""

    target = None

    def __init__(self, components: nn.ModuleDict, world_model: WorldModel, *, horizon: int,
                 gamma: float, lam: float, actor_ent: float = 0.0) -> None:
        self.components, self.world_model = components, world_model
        self.horizon, self.gamma, self.lam = int(horizon), float(gamma), float(lam)
        self.actor_ent = float(actor_ent)

    def before_update(self, updates_done: int) -> None:
        pass

    def imagine(self, start: State, start_terminal: torch.Tensor) -> torch.Tensor:
        """V1 ignores the start's terminal flag: it discounts every step by γ."""
        feats, _ = self.world_model.rssm.imagine(start, self.components["actor"], self.horizon)
        return feats

    def discount_weights(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        """γ^τ: later imagined steps count less (V1's cumulative product of the discounts)."""
        return self.gamma ** torch.arange(steps, device=like.device, dtype=like.dtype)

    def actor_terms(self, feats: torch.Tensor) -> tuple[Terms, tuple[torch.Tensor, torch.Tensor]]:
        """Maximise Σ_τ γ^τ V_λ(s_τ) through the dynamics.

        Rewards r(s_τ) and values v(s_τ) of the imagined states give V_λ for τ < H, bootstrapped
        with v(s_H). Returns the terms and the critic's targets (V_λ ``[H-1, N]``, weights
        ``[H-1]``).
        """
        reward = self.world_model.predict_reward(feats[:-1])
        value = self.components["value"](feats).squeeze(-1)
        returns = lambda_returns(reward, value[:-1], self.gamma, value[-1], self.lam)
        weight = self.discount_weights(len(returns), returns)
        terms = {"actor/return": -(weight[:, None] * returns).mean()}
        if self.actor_ent > 0:
            _, log_prob = self.components["actor"].sample_log_prob(feats[:-1].detach())
            terms["actor/entropy"] = self.actor_ent * (weight[:, None] * log_prob).mean()
        return terms, (returns, weight)

    def critic_terms(self, feats: torch.Tensor,
                     targets: tuple[torch.Tensor, torch.Tensor]) -> Terms:
        """½‖v(s_τ) − V_λ(s_τ)‖², γ^τ-weighted, on detached states and targets."""
        returns, weight = targets
        value = self.components["value"](feats[:-1].detach()).squeeze(-1)
        return {"value/mse": (weight[:, None] * 0.5 * (value - returns.detach()).pow(2)).mean()}
