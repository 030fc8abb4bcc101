"""Recurrent state-space model (RSSM): deterministic GRU state h, stochastic state s.

Hafner et al., "Dream to Control: Learning Behaviors by Latent Imagination" (2020): the transition
model q(s_t | s_{t-1}, a_{t-1}) is "a Gaussian distribution parameterized by a GRU followed by
feed-forward layers"; the representation model q(s_t | s_{t-1}, a_{t-1}, o_t) is "a variational
encoder combined with the GRU". Here, per step:

    h_t = GRU(h_{t-1}, elu(W_s s_{t-1} + W_a a_t))      (``transition``; W_a is ``action_input``)
    prior     p(s_t | h_t)      = latent.dist(prior_head(h_t))
    posterior q(s_t | h_t, e_t) = latent.dist(representation([h_t, e_t]))

with a_t the action that led to o_t (the replay's convention). W_s and W_a together are one dense
layer on [s, a] split in two, so ``transition.action_input`` addresses the action weights alone
(what modular transfer re-initialises). The latent distribution is pluggable (:mod:`.latent`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.nets.heads import MLPHead


class State(NamedTuple):
    """One RSSM state; every field is ``[..., size]``."""
    deter: torch.Tensor
    stoch: torch.Tensor

    def feature(self) -> torch.Tensor:
        """[s, h]: what heads (decoder, reward, value, actor) read."""
        return torch.cat([self.stoch, self.deter], -1)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "State":
        return State(fn(self.deter), fn(self.stoch))


class Transition(nn.Module):
    """GRU + prior. Sub-modules: ``state_input``, ``action_input``, ``cell``, ``prior``."""

    def __init__(self, stoch_size: int, action_dim: int, deter: int, hidden: int,
                 prior_params: int) -> None:
        super().__init__()
        self.state_input = nn.Linear(stoch_size, hidden)
        self.action_input = nn.Linear(action_dim, hidden, bias=False)  # one bias, in state_input
        self.cell = nn.GRUCell(hidden, deter)
        self.prior = MLPHead(deter, prior_params, hidden, layers=1)

    def forward(self, state: State, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (h_t, prior params of s_t)."""
        x = F.elu(self.state_input(state.stoch) + self.action_input(action))
        deter = self.cell(x, state.deter)
        return deter, self.prior(deter)


class Representation(MLPHead):
    """Posterior q(s_t | h_t, e_t): an MLP on [h_t, e_t] (``hidden`` / ``out``)."""

    def __init__(self, deter: int, embed: int, hidden: int, post_params: int) -> None:
        super().__init__(deter + embed, post_params, hidden, layers=1)

    def forward(self, deter: torch.Tensor,  # type: ignore[override]
                embed: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.cat([deter, embed], -1))


class RSSM:
    """The RSSM's recurrences over its two components; holds no parameters of its own.

    A plain object (not an ``nn.Module``) so the components stay registered once, under the
    agent's ``components``.
    """

    def __init__(self, transition: Transition, representation: Representation, latent) -> None:
        self.transition, self.representation, self.latent = transition, representation, latent

    def initial(self, batch: int, device=None) -> State:
        deter = self.transition.cell.hidden_size
        return State(torch.zeros(batch, deter, device=device),
                     torch.zeros(batch, self.latent.sample_size, device=device))

    def img_step(self, state: State, action: torch.Tensor) -> tuple[State, torch.Tensor]:
        """One imagined step: h_t from the transition, s_t sampled from the prior."""
        deter, prior = self.transition(state, action)
        return State(deter, self.latent.sample(prior)), prior

    def obs_step(self, state: State, action: torch.Tensor,
                 embed: torch.Tensor) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One filtered step: -> (posterior state, posterior params, prior params)."""
        deter, prior = self.transition(state, action)
        post = self.representation(deter, embed)
        return State(deter, self.latent.sample(post)), post, prior

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor,
                state: State | None = None) -> tuple[State, torch.Tensor, torch.Tensor]:
        """Filter a batch of sequences ``[B, T, ...]``; the state is zeroed where ``is_first``.

        Returns posterior states, posterior params and prior params, all ``[B, T, ...]``.
        """
        B, T = embed.shape[:2]
        state = self.initial(B, embed.device) if state is None else state
        keep = (~is_first.bool()).float().unsqueeze(-1)
        states, posts, priors = [], [], []
        for t in range(T):
            state = state.map(lambda x: x * keep[:, t])
            state, post, prior = self.obs_step(state, action[:, t] * keep[:, t], embed[:, t])
            states.append(state)
            posts.append(post)
            priors.append(prior)
        stacked = State(torch.stack([s.deter for s in states], 1),
                        torch.stack([s.stoch for s in states], 1))
        return stacked, torch.stack(posts, 1), torch.stack(priors, 1)

    def imagine(self, start: State, policy: Callable[[torch.Tensor], torch.Tensor],
                horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Roll the prior forward ``horizon`` steps from ``start`` ([N, ...]) under ``policy``.

        The policy reads detached features (Hafner et al., 2020, Algorithm 1, behaviour learning:
        the actor is trained through the dynamics, not through its own input). Returns the
        features of the ``horizon`` imagined states (the start excluded) ``[H, N, F]`` and the
        actions ``[H, N, A]`` that led to them.
        """
        feats, actions = [], []
        state = start
        for _ in range(horizon):
            action = policy(state.feature().detach())
            state, _ = self.img_step(state, action)
            feats.append(state.feature())
            actions.append(action)
        return torch.stack(feats), torch.stack(actions)
