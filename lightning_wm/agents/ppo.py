"""Clipped PPO (Schulman et al., "Proximal Policy Optimization Algorithms", 2017): the on-policy
actor-critic REPAINT is defined on (Tao et al., "REPAINT: Knowledge Transfer in Deep
Reinforcement Learning", ICML 2021).

Components: ``encoder`` (pixels only: the conv encoder, trained by both losses), ``actor``
(a Gaussian over action vectors with a state-independent log-std, or a categorical over one-hot
actions) and ``value``. One update is one PPO iteration: the driver hands it the latest
collection phase (``DataNeeds(on_policy=True)``), it computes advantages once with the current
value function (:func:`gae`), then takes ``epochs`` passes of ``minibatches`` minibatches, each
one optimiser step on the named terms ``actor/clip``, ``actor/entropy`` and ``value/mse`` plus
the terms callbacks add (kickstarting, instance transfer). Every stream of the update is prepared
the same way (advantages and value targets from the student's current critic), so a callback's
term reads them from its stream's minibatch; only ``main`` trains the critic and the clipped
objective, as in REPAINT's Algorithm 1. ``global_step`` counts iterations.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn
from torch.distributions import Distribution, Independent, Normal, OneHotCategorical

from lightning_wm.agents.base import ALL, Agent
from lightning_wm.agents.parts.optimise import plain_backward, step_group
from lightning_wm.agents.parts.policy_gradient import clipped_surrogate, gae, sample
from lightning_wm.agents.protocol import (MAIN, Batches, DataNeeds, ExplicitPolicy, Instances,
                                          Terms)
from lightning_wm.nets.conv import ConvEncoder
from lightning_wm.nets.heads import MLPHead
from lightning_wm.nets.normalise import RunningNorm


class Head(MLPHead):
    """An MLP over flat observations scaled by its own ``norm`` (a :class:`RunningNorm`; the
    identity behind a pixel encoder), so the component carries the scale it was trained at."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, layers: int, norm: bool) -> None:
        super().__init__(in_dim, out_dim, hidden, layers, nn.Tanh)
        self.norm = RunningNorm(in_dim) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.norm(x)))


class ScaledLinear(nn.Module):
    """A linear layer initialised by the library's rule, then scaled by ``gain``: its own
    ``reset_parameters``, so a transfer that re-initialises it draws the same way.

    A policy's output layer at gain 0.01 starts every action distribution near its centre,
    which Andrychowicz et al. ("What Matters In On-Policy Reinforcement Learning? A Large-Scale
    Empirical Study", ICLR 2021) found among the choices that matter most for PPO.
    """

    def __init__(self, in_dim: int, out_dim: int, gain: float) -> None:
        super().__init__()
        self.gain = gain
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.bias = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight).mul_(self.gain)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias)


class LogStd(nn.Module):
    """A state-independent log standard deviation per action dimension, reset to ``init``."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.init = float(init)
        self.value = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.value.fill_(self.init)


class GaussianActor(Head):
    """The mean from the MLP (a small output layer); ``log_std`` one learned value per action
    dimension."""

    def __init__(self, in_dim: int, action_dim: int, hidden: int, layers: int, norm: bool,
                 init_log_std: float) -> None:
        super().__init__(in_dim, action_dim, hidden, layers, norm)
        self.out = ScaledLinear(hidden if layers else in_dim, action_dim, gain=0.01)
        self.log_std = LogStd(action_dim, init_log_std)


class PPOAgent(Agent, ExplicitPolicy):
    """Defaults: the PPO paper's MuJoCo settings (2 × 64 tanh layers, Adam 3e-4, γ 0.99,
    λ 0.95, ε 0.2, 10 epochs; its 2048-step rollouts are the profile's ``collect_every``) and
    its gradient-norm clip 0.5; minibatches of 64 at 2048 steps (32 per epoch)."""

    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, discrete: bool,
                 hidden: int = 64, layers: int = 2, lr: float = 3e-4, gamma: float = 0.99,
                 lam: float = 0.95, clip: float = 0.2, epochs: int = 10, minibatches: int = 32,
                 value_coef: float = 0.5, ent_coef: float = 0.0, max_grad_norm: float = 0.5,
                 init_log_std: float = 0.0, depth: int = 16, normalise_obs: bool = True) -> None:
        if epochs < 1 or minibatches < 1:
            raise ValueError(f"epochs and minibatches must be >= 1, got {epochs}, {minibatches}")
        pixels = len(obs_shape) == 3
        components: dict[str, nn.Module] = {}
        if pixels:
            components["encoder"] = ConvEncoder(tuple(obs_shape), depth)
            feature = components["encoder"].embed_size
        else:
            feature = int(math.prod(obs_shape))
        norm = not pixels and normalise_obs
        components["actor"] = (Head(feature, action_dim, hidden, layers, norm) if discrete else
                               GaussianActor(feature, action_dim, hidden, layers, norm,
                                             init_log_std))
        components["value"] = Head(feature, 1, hidden, layers, norm)
        super().__init__(components)
        self.save_hyperparameters()
        self.automatic_optimization = False  # several optimiser steps per update
        self.discrete, self.action_dim = bool(discrete), action_dim
        self.set_loss_weight("value/mse", value_coef)
        self.set_loss_weight("actor/entropy", ent_coef)
        self._standalone: torch.optim.Optimizer | None = None

    def data_needs(self) -> DataNeeds:
        return DataNeeds(sequence_length=2, on_policy=True)

    # -- the policy ------------------------------------------------------------------------------
    def policy_components(self) -> tuple[str, ...]:
        return tuple(n for n in ("encoder", "actor") if n in self.components)

    def _features(self, obs: torch.Tensor, nets: Mapping[str, nn.Module]) -> torch.Tensor:
        if "encoder" in nets:
            return nets["encoder"](obs)
        return obs.float().flatten(1)

    def policy(self, batch: Mapping[str, torch.Tensor],
               nets: Mapping[str, nn.Module] | None = None) -> Distribution:
        """π at every row of a prepared minibatch (its ``obs``)."""
        return self._policy_of(batch["obs"], self.components if nets is None else nets)

    def instances(self, batch: Mapping[str, torch.Tensor]) -> Instances:
        """The rows' actions, their GAE advantages (:meth:`prepare` computed them with the
        current critic for every stream) and π at the rows."""
        return Instances(batch["action"], batch["advantage"], self.policy(batch))

    @torch.no_grad()
    def act_with(self, nets: Mapping[str, nn.Module], obs: torch.Tensor, is_first: torch.Tensor,
                 state: Any, generator: torch.Generator) -> tuple[torch.Tensor, Any]:
        return sample(self._policy_of(obs, nets), generator), state  # memoryless: no state

    def _policy_of(self, obs: torch.Tensor, nets: Mapping[str, nn.Module]) -> Distribution:
        return self._dist(self._features(obs, nets), nets["actor"])

    def _dist(self, features: torch.Tensor, actor: nn.Module) -> Distribution:
        out = actor(features)
        if self.discrete:
            return OneHotCategorical(logits=out)
        return Independent(Normal(out, actor.log_std.value.exp().expand_as(out)), 1)

    def _value(self, features: torch.Tensor) -> torch.Tensor:
        return self.components["value"](features).squeeze(-1)

    def act(self, obs: torch.Tensor, state: Any, explore: bool) -> tuple[torch.Tensor, Any]:
        dist = self._policy_of(obs, self.components)
        if explore:
            return dist.sample(), state
        if self.discrete:
            return nn.functional.one_hot(dist.logits.argmax(-1), self.action_dim).float(), state
        return dist.base_dist.loc, state

    # -- learning --------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Flat transitions of one stream with ``advantage`` and ``target`` (GAE under the
        current critic) and ``log_prob_old`` (the current policy: for ``main``, the behaviour)."""
        obs, next_obs = batch["obs"][:, 0], batch["obs"][:, 1]
        action = batch["action"][:, 1].float()
        h = self.hparams
        features = self._features(obs, self.components)
        advantage, target = gae(batch["reward"][:, 1].float(), self._value(features),
                                self._value(self._features(next_obs, self.components)),
                                batch["is_terminal"][:, 1], batch["is_last"], h.gamma, h.lam)
        log_prob = self._dist(features, self.components["actor"]).log_prob(action)
        return {"obs": obs, "action": action, "advantage": advantage, "target": target,
                "log_prob_old": log_prob}

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> Terms:
        """PPO's terms on a prepared minibatch (advantages normalised within it)."""
        adv = batch["advantage"]
        if len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        features = self._features(batch["obs"], self.components)  # once: the encoder is shared
        dist, value = self._dist(features, self.components["actor"]), self._value(features)
        return {"actor/clip": clipped_surrogate(dist.log_prob(batch["action"]),
                                                batch["log_prob_old"], adv, self.hparams.clip),
                "actor/entropy": -dist.entropy().mean(),
                "value/mse": 0.5 * (value - batch["target"]).pow(2).mean()}

    def update(self, batches: Batches, optimiser=None, backward=None) -> torch.Tensor:
        """One PPO iteration over the phase in ``batches`` (see the module docstring)."""
        optimiser, backward = self._optimiser_and_backward(optimiser, backward)
        prepared = {s: self.prepare(b) for s, b in batches.items()}
        h = self.hparams
        # never an empty main minibatch, however short the phase
        count = min(h.minibatches, len(prepared[MAIN]["action"]))
        total = torch.zeros(())
        for epoch in range(h.epochs):
            splits = {s: torch.randperm(len(b["action"])).tensor_split(count)
                      for s, b in prepared.items()}
            for k in range(count):
                mini = {s: {f: v[splits[s][k]] for f, v in b.items()} for s, b in prepared.items()}
                loss, terms = self.group_loss(ALL, self.loss_terms(mini[MAIN]), mini)
                last = epoch == h.epochs - 1 and k == count - 1
                self._step(optimiser, loss, backward, counted=last)
                total = loss.detach() if loss is not None else total
        self._update_norms(batches[MAIN]["obs"][:, 0])
        self.log_terms(terms)
        return total

    def _update_norms(self, obs: torch.Tensor) -> None:
        # after the iteration's steps: the next phase acts, and the next iteration's behaviour
        # log-probs are computed, with the same statistics (the ratio starts at exactly 1)
        for name in ("actor", "value"):
            norm = self.components[name].norm
            # a frozen component keeps its function, statistics included
            trainable = any(p.requires_grad for p in self.components[name].parameters())
            if isinstance(norm, RunningNorm) and trainable:
                norm.update(obs.float().flatten(1))

    def _step(self, optimiser, loss: torch.Tensor | None, backward, counted: bool) -> None:
        # Lightning counts a step per LightningOptimizer.step(): only the iteration's last
        # minibatch steps through it, so global_step (and callbacks' schedules) count iterations
        inner = optimiser.optimizer if isinstance(optimiser, LightningOptimizer) and not counted \
            else optimiser
        step_group(inner, loss, backward, self.hparams.max_grad_norm)

    def _optimiser_and_backward(self, optimiser, backward):
        if optimiser is not None:
            return optimiser, backward or plain_backward
        if self._trainer is not None:
            return self.optimizers(), self.manual_backward
        if self._standalone is None:  # outside a Trainer (unit tests, notebooks)
            self._standalone = self.configure_optimizers()
        return self._standalone, plain_backward

    def configure_optimizers(self):
        return torch.optim.Adam(self.components.parameters(), lr=self.hparams.lr, eps=1e-5)
