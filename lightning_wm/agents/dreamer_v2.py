"""DreamerV2: Dreamer (V1) with categorical latents, a discount head and a reinforce actor.

Seed 004 §2.3 (after Hafner et al., 2021, the seed's [8]); the mario_levels and atari100k suites
(SPEC §1). :class:`DreamerV2Agent` subclasses :class:`~lightning_wm.agents.dreamer.DreamerAgent`
and keeps its RSSM, encoders, decoders, acting, optimisation loop and meta-model support; it
overrides only what differs:

- latent (§2.3, eq. (1)): 32 categoricals × 32 classes with straight-through samples
  (:class:`~lightning_wm.nets.categorical.CategoricalLatent`), whose ``kl`` is KL-balanced (α 0.8);
- components add ``discount``: γ̂_t ~ p_φ(γ̂ | h_t, z_t) (eq. (1)), a Bernoulli continuation head
  trained on 1 − is_terminal (eq. (3)); ``actor`` is one-hot categorical for discrete actions;
- world-model loss (eq. (3)): V1's terms with tanh-clipped reward targets, the KL scaled by
  ``kl_scale`` (β = 0.1) and ``discount/nll`` scaled by ``discount_scale`` (5);
- λ-targets (eq. (4)) from predicted rewards and discounts γ·γ̂_t and a slow target critic
  (``target_value``, a copy of ``value`` re-synced every ``target_every`` = 100 updates; a plain
  attribute, never a component, so transfer never addresses it); imagined steps are weighted by
  the cumulative predicted discount;
- critic (eq. (5)): ½ (v(ẑ_t) − sg(V^λ_t))², discount-weighted;
- actor (eq. (6)): reinforce gradients with the target critic as baseline and entropy
  regularisation η = ``actor_ent`` (1e-3) for discrete actions; continuous (Box) actions keep V1's
  tanh-Gaussian actor and dynamics backprop (``actor_grad="auto"`` picks per action space).

Hyperparameters: seed 004 §5.2 "reuse[s] all hyperparameters from the Atari experiments" of
DreamerV2 without listing them; ``paper`` holds those (deter 600, 32 × 32 latents, heads 4 × 400,
CNN depth 48, sequences 50, batch 16, horizon 15, lr 2e-4 / 4e-5 / 1e-4, γ 0.999, λ 0.95, KL
scale 0.1, discount scale 5, η 1e-3, target every 100, Adam ε 1e-5, clip 100, tanh rewards).

Short episodes (seed 004 §5.2): ``absorbing=True`` asks the data module for
:class:`~lightning_wm.data.absorbing.AbsorbingReplay` (see :attr:`absorbing_replay`).

Where we differ from DreamerV2's code: V1's RSSM is reused as is (a plain GRU cell, not V2's
layer-normalised one); the discount head learns P(continue) and is scaled by γ where used (V2
fits γ·(1 − terminal) directly: the same mean); no weight decay (V2: 1e-6); no "both" mix of
reinforce and dynamics gradients; the world model is stepped before imagination (as V1 here).
"""
from __future__ import annotations

import contextlib
import copy
from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import distributions as D

from lightning_wm.agents import dreamer as v1
from lightning_wm.agents.dreamer import DreamerAgent
from lightning_wm.losses import cumulative_discount, lambda_returns, reinforce_objective
from lightning_wm.nets.categorical import CategoricalLatent, OneHotActor
from lightning_wm.nets.heads import MLPHead

#: everything not a size: DreamerV2's Atari values (seed 004 §5.2 reuses them for Mario).
#: ``stoch`` counts categoricals, ``classes`` their classes; ``free_nats`` 0: V2's KL is free-free.
DEFAULTS: dict[str, Any] = dict(
    reward_layers=4, value_layers=4, actor_layers=4, dense_layers=4, horizon=15,
    gamma=0.999, lam=0.95, model_lr=2e-4, value_lr=1e-4, actor_lr=4e-5, adam_eps=1e-5,
    clip=100.0, free_nats=0.0, expl_noise=0.0, latent_min_std=0.1, actor_init_std=5.0,
    meta_sources=0,
    # DreamerV2 only
    classes=32, discrete=True, kl_balance=0.8, kl_scale=0.1, discount_scale=5.0,
    discount_layers=4, actor_ent=1e-3, actor_grad="auto", target_every=100, clip_rewards="tanh",
    absorbing=True,
)

_SMALL_HEADS = dict(reward_layers=2, value_layers=2, actor_layers=2, discount_layers=2,
                    dense_layers=2)
#: ``size`` presets (the same names as V1's). ``paper``: DreamerV2 on Atari.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(deter=16, stoch=4, classes=4, hidden=16, units=16, embed=16, depth=2,
                 seq_len=6, horizon=4, **_SMALL_HEADS),
    "small": dict(deter=64, stoch=8, classes=8, hidden=64, units=64, embed=64, depth=8,
                  seq_len=16, **_SMALL_HEADS),
    "paper": dict(deter=600, stoch=32, classes=32, hidden=600, units=400, embed=400, depth=48,
                  seq_len=50),
}

#: keys V1's constructor does not know; they reach this class through :attr:`v2_config`
V2_ONLY: frozenset[str] = frozenset(set(DEFAULTS) | set(SIZES["tiny"])) - frozenset(
    set(v1.DEFAULTS) | set(v1.SIZES["tiny"]))

#: DreamerV2's Atari loop as a ``TrainingConfig``: one update of a 16 × 50 batch every 16 agent
#: steps (``train_every``), after 50k random prefill steps.
PAPER_TRAINING: dict[str, int] = dict(collect_every=16, updates_per_collect=1, prefill=50_000,
                                      batch_size=16)


def resolve_config(size: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """V1's resolution over V2's tables (:data:`DEFAULTS`, :data:`SIZES`), then V2's checks."""
    cfg = v1.resolve_config(size, overrides, DEFAULTS, SIZES, "DreamerV2")
    if cfg["actor_grad"] not in ("auto", "reinforce", "dynamics"):
        raise ValueError(f"actor_grad must be auto|reinforce|dynamics, not {cfg['actor_grad']!r}")
    if cfg["clip_rewards"] not in ("none", "tanh"):
        raise ValueError(f"clip_rewards must be none|tanh, not {cfg['clip_rewards']!r}")
    if int(cfg["target_every"]) < 1:
        raise ValueError("target_every must be >= 1 (1: the target critic is the critic)")
    if cfg["discrete"] and cfg["expl_noise"]:
        raise ValueError("discrete DreamerV2 explores by sampling its actor; expl_noise must be 0")
    return cfg


class Imagined(NamedTuple):
    """An imagined batch of trajectories (what :meth:`DreamerV2Agent.imagine` hands the losses)."""
    feat: torch.Tensor                    # [H+1, N, F]: the start state, then H imagined states
    action: torch.Tensor                  # [H, N, A]: the action taken in state t
    start_terminal: torch.Tensor | None   # [N]: the replay's is_terminal of the start states


class DreamerV2Agent(DreamerAgent):
    latent_class = CategoricalLatent
    #: the discount head trains with the world model, and is held fixed during the actor step
    groups = {**v1.GROUPS, "model": (*v1.GROUPS["model"], "discount")}

    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, size: str = "small",
                 **overrides: Any) -> None:
        cfg = resolve_config(size, overrides)
        # read by make_latent / build_components while V1's constructor runs
        self.v2_config = {k: cfg[k] for k in V2_ONLY}
        super().__init__(obs_shape, action_dim, size,
                         **{k: v for k, v in cfg.items() if k not in V2_ONLY})
        self.save_hyperparameters(self.v2_config)  # merged into V1's hyperparameters
        self.discrete = bool(cfg["discrete"])
        grad = cfg["actor_grad"]
        self.reinforce = grad == "reinforce" or (grad == "auto" and self.discrete)
        self.target_value = copy.deepcopy(self.components["value"]).requires_grad_(False)
        self.register_buffer("critic_updates", torch.zeros((), dtype=torch.long))
        self._start_terminal: torch.Tensor | None = None

    # -- construction ---------------------------------------------------------------------------
    def make_latent(self, cfg: Mapping[str, Any]) -> CategoricalLatent:
        """``stoch`` categoricals of ``classes`` classes, KL-balanced with ``kl_balance``."""
        return CategoricalLatent(cfg["stoch"], self.v2_config["classes"],
                                 self.v2_config["kl_balance"])

    def build_components(self, cfg: Mapping[str, Any]) -> dict[str, torch.nn.Module]:
        """V1's components; a one-hot actor for discrete actions; plus ``discount``."""
        parts = super().build_components(cfg)
        feat = self.latent.sample_size + cfg["deter"]
        if self.v2_config["discrete"]:
            parts["actor"] = OneHotActor(feat, self.action_dim, cfg["units"], cfg["actor_layers"])
        parts["discount"] = MLPHead(feat, 1, cfg["units"], self.v2_config["discount_layers"])
        return parts

    @property
    def absorbing_replay(self) -> dict[str, Any] | None:
        """Options for :class:`~lightning_wm.data.absorbing.AbsorbingReplay` (seed 004 §5.2),
        or ``None`` when this agent trains on plain episode sequences."""
        return {"discrete": self.discrete} if self.hparams.absorbing else None

    def predict_discount(self, feature: torch.Tensor) -> torch.Tensor:
        """P(the state continues) = mean of the Bernoulli γ̂_t (seed 004 eq. (1)), ``[...]``."""
        return torch.sigmoid(self.components["discount"](feature).squeeze(-1))

    # -- losses -----------------------------------------------------------------------------------
    def world_model_loss(self, batch: Mapping[str, torch.Tensor]):
        """Seed 004 eq. (3): −ln p(s_t) − ln p(R_t) − ln p(γ_t) + β KL[q ‖ p], per term.

        V1 computes the image, reward and (balanced, via the latent) KL terms; rewards are
        squashed by tanh first (``clip_rewards``), β = ``kl_scale``, and the discount term is the
        Bernoulli NLL of 1 − is_terminal (0 at terminal and absorbing steps).
        """
        h = self.hparams
        reward = batch["reward"].float()
        if h.clip_rewards == "tanh":
            reward = torch.tanh(reward)
        terms, states = super().world_model_loss({**batch, "reward": reward})
        terms["transition/kl"] = h.kl_scale * terms["transition/kl"]
        logit = self.components["discount"](states.feature()).squeeze(-1)
        target = 1.0 - batch["is_terminal"].float()
        terms["discount/nll"] = h.discount_scale * F.binary_cross_entropy_with_logits(logit, target)
        # the true discount of the start states, for imagine (V1's update passes only states)
        self._start_terminal = batch["is_terminal"].detach().flatten(0, 1).float()
        return terms, states

    def imagine(self, start) -> Imagined:
        """``horizon`` steps from the ``[N]`` posterior states; without autograd when the actor
        learns by reinforce (nothing then differentiates through the imagined states)."""
        no_grad = torch.no_grad() if self.reinforce else contextlib.nullcontext()
        with no_grad:
            feats, actions = self.rssm.imagine(start, self.components["actor"],
                                               self.hparams.horizon)
        feat = torch.cat([start.feature()[None], feats])
        terminal, self._start_terminal = self._start_terminal, None
        if terminal is not None and terminal.shape[0] != feat.shape[1]:
            terminal = None
        return Imagined(feat, actions, terminal)

    def lambda_targets(self, traj: Imagined) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed 004 eq. (4) on states t = 0..H−1, bootstrapped with the target critic at H:

            V^λ_t = R̂_t + γ̂'_t [(1 − λ) v(ẑ_{t+1}) + λ V^λ_{t+1}],   γ̂'_t = γ · P(continue_t),

        the start's γ̂' taken from the replay's is_terminal. Returns V^λ ``[H, N]`` and the
        detached weights Π_{k<t} γ̂'_k of states 0..H ``[H+1, N]``.
        """
        h = self.hparams
        disc = h.gamma * self.predict_discount(traj.feat)
        if traj.start_terminal is not None:
            disc = torch.cat([h.gamma * (1.0 - traj.start_terminal)[None], disc[1:]])
        reward = self.predict_reward(traj.feat)
        value = self.target_value(traj.feat).squeeze(-1)
        returns = lambda_returns(reward[:-1], value[:-1], disc[:-1], value[-1], h.lam)
        return returns, cumulative_discount(disc).detach()

    def actor_loss(self, traj: Imagined) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """Seed 004 eq. (6) for the actions of states t = 0..H−2:

            −w_t [ln π(a_t | ẑ_t) sg(V^λ_{t+1} − v_target(ẑ_t)) + η H[π(· | ẑ_t)]]

        (reinforce, as DreamerV2 indexes it: the target after a_t minus the baseline before it),
        or −w_t [V^λ_{t+1} + η H] backpropagated through the dynamics (continuous actions).
        """
        h = self.hparams
        returns, weight = self.lambda_targets(traj)
        feat, w = traj.feat[:-2].detach(), weight[:-2]
        if self.reinforce:
            baseline = self.target_value(traj.feat[:-2]).squeeze(-1)
            log_prob = self._log_prob(feat, traj.action[:-1].detach())
            terms = {"actor/reinforce": -(w * reinforce_objective(log_prob, returns[1:],
                                                                  baseline)).mean()}
        else:
            terms = {"actor/return": -(w * returns[1:]).mean()}
        terms["actor/entropy"] = -(w * h.actor_ent * self._entropy(feat)).mean()
        return terms, returns, weight

    def critic_loss(self, traj: Imagined, returns: torch.Tensor,
                    weight: torch.Tensor) -> dict[str, torch.Tensor]:
        """Seed 004 eq. (5): Σ_t w_t ½ (v(ẑ_t) − sg(V^λ_t))² on states 0..H−1 (detached)."""
        value = self.components["value"](traj.feat[:-1].detach()).squeeze(-1)
        return {"value/mse": (weight[:-1] * 0.5 * (value - returns.detach()).pow(2)).mean()}

    def _log_prob(self, feat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        actor = self.components["actor"]
        if isinstance(actor, OneHotActor):
            return actor.log_prob(feat, action)
        return actor.dist(feat).log_prob(action.clamp(-1 + 1e-6, 1 - 1e-6))

    def _entropy(self, feat: torch.Tensor) -> torch.Tensor:
        """H[π(· | ẑ)]: exact for the categorical; the pre-tanh Gaussian's for Box actions."""
        actor = self.components["actor"]
        if isinstance(actor, OneHotActor):
            return actor.entropy(feat)
        mean, std = actor.normal(feat)
        return D.Normal(mean, std).entropy().sum(-1)

    # -- the slow target critic -----------------------------------------------------------------
    @torch.no_grad()
    def sync_target(self) -> None:
        self.target_value.load_state_dict(self.components["value"].state_dict())

    def update(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """V1's update; the target critic is re-synced before every ``target_every``-th update
        (the first included, so it starts from the transferred / initial critic)."""
        if int(self.critic_updates) % int(self.hparams.target_every) == 0:
            self.sync_target()
        loss = super().update(batch)
        self.critic_updates.add_(1)
        return loss
