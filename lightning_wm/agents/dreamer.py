"""Dreamer (V1): an RSSM world model learned from sequences, an actor-critic learned in imagination.

Seed 000 §2 and Algorithm 1 (after Hafner et al., 2020). Components, all addressable by transfer:

- ``encoder``: o_t -> e_t (4-layer CNN on 64×64 pixels, or an MLP on vector observations);
- ``representation``: posterior q(s_t | h_t, e_t);
- ``transition``: GRU + prior p(s_t | h_t); ``transition.action_input`` are its action weights;
- ``decoder``: p(o_t | s_t, h_t);  ``reward``: p(r_t | s_t, h_t);  ``value``: v(s_t, h_t);
- ``actor``: tanh-Gaussian π(a_t | s_t, h_t).

One update (:meth:`DreamerAgent.update`) runs the three phases of Algorithm 1 with three Adam
optimisers: dynamics learning (:meth:`world_model_loss`), imagination of ``horizon`` steps from
every posterior state (:meth:`imagine`), then the actor (:meth:`actor_loss`, maximise V_λ) and the
critic (:meth:`critic_loss`, regress V_λ). DreamerV2 overrides :attr:`latent_class`, the heads in
:meth:`build_components` and the loss methods, and keeps the rest.

Meta-model transfer (seed 000 §4.2, Algorithm 4): with ``meta_sources = N`` the reward head reads
[s, h, m_θ1(s, h), …, m_θN(s, h)], the predicted means of N frozen source reward models held in
``meta_rewards`` (not components: transfer and the optimisers never see them; they live in the
checkpoint). :class:`lightning_wm.transfer.meta_model.MetaModelTransfer` installs them.

Where we differ from the V1 code the seed builds on: the world model is stepped before the
imagination is built (the V1 code computes all three losses with the pre-update model); the
greedy action is tanh(mean) instead of V1's mode estimate from 100 samples; likelihoods drop their
constants (0.5·squared error); ``kl_scale`` is the loss weight of ``transition/kl``.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Mapping

import torch
from torch import nn

from lightning_wm.agents.base import MAIN, Agent, NonFiniteLossError
from lightning_wm.losses import kl_free_nats, lambda_returns
from lightning_wm.nets.conv import ConvDecoder, ConvEncoder
from lightning_wm.nets.dense import ActorHead, DenseDecoder, DenseEncoder
from lightning_wm.nets.heads import MLPHead
from lightning_wm.nets.latent import GaussianLatent
from lightning_wm.nets.rssm import RSSM, Representation, State, Transition

#: everything not a size: Dreamer V1's values (SPEC §1 for seed 000; the V1 code it builds on)
DEFAULTS: dict[str, Any] = dict(
    reward_layers=2, value_layers=3, actor_layers=4, dense_layers=2, horizon=15,
    gamma=0.99, lam=0.95, model_lr=6e-4, value_lr=8e-5, actor_lr=8e-5, adam_eps=1e-7,
    clip=100.0, free_nats=3.0, expl_noise=0.3, latent_min_std=0.1, actor_init_std=5.0,
    meta_sources=0,
    compile=False,  # torch.compile the unrolled RSSM loops of an update (see DreamerAgent.update)
)

#: ``size`` presets. ``paper``: 200 deterministic + 30 stochastic units, heads of 400 units
#: (the V1 code; its paper text says 300), CNN depth 32, sequences of 50.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(deter=16, stoch=4, hidden=16, units=16, embed=16, depth=2, seq_len=6, horizon=4),
    "small": dict(deter=64, stoch=8, hidden=64, units=64, embed=64, depth=8, seq_len=16),
    "paper": dict(deter=200, stoch=30, hidden=200, units=400, embed=400, depth=32, seq_len=50),
}

#: optimiser groups, in the order of ``configure_optimizers`` (seed 000 Algorithm 1: θ, ψ, φ)
GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("encoder", "representation", "transition", "decoder", "reward"),
    "value": ("value",),
    "actor": ("actor",),
}
_LR = {"model": "model_lr", "value": "value_lr", "actor": "actor_lr"}

#: the paper's training loop as a ``TrainingConfig`` (SPEC §1): 5 random seed episodes, 100
#: updates per 1000 env steps, batches of 50. The paper counts simulator frames; with action
#: repeat 2 and 1000-frame episodes that is 2500 and 500 agent steps (what the collector counts).
PAPER_TRAINING: dict[str, int] = dict(collect_every=500, updates_per_collect=100,
                                      prefill=2500, batch_size=50)


def resolve_config(size: str, overrides: Mapping[str, Any], defaults: Mapping[str, Any] = DEFAULTS,
                   sizes: Mapping[str, Mapping[str, Any]] = SIZES,
                   name: str = "Dreamer") -> dict[str, Any]:
    """``size`` preset + ``defaults``, then explicit ``overrides`` (unknown keys raise).
    DreamerV2 passes its own tables."""
    if size not in sizes:
        raise ValueError(f"size must be one of {sorted(sizes)}, not {size!r}")
    cfg = {**defaults, **sizes[size]}
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise TypeError(f"unknown {name} option(s) {unknown}; known: {sorted(cfg)}")
    cfg.update(overrides)
    return cfg


class DreamerAgent(Agent):
    latent_class = GaussianLatent
    #: optimiser groups (a subclass with more components, e.g. DreamerV2's ``discount``, widens them)
    groups: dict[str, tuple[str, ...]] = GROUPS
    #: each of the three backward passes of an update reaches one optimiser's parameters only,
    #: so DDP must look for unused ones (``train`` picks the matching strategy)
    ddp_find_unused_parameters = True

    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, size: str = "small",
                 **overrides: Any) -> None:
        cfg = resolve_config(size, overrides)
        obs_shape = tuple(int(d) for d in obs_shape)
        self.obs_shape, self.action_dim = obs_shape, int(action_dim)
        self.latent = self.make_latent(cfg)
        super().__init__(self.build_components(cfg))
        self.save_hyperparameters({"obs_shape": list(obs_shape), "action_dim": self.action_dim,
                                   "size": size, **cfg})
        self.automatic_optimization = False
        self.sequence_length = int(cfg["seq_len"])
        self.feature_size = self.latent.sample_size + int(cfg["deter"])  # [s, h]
        n = int(cfg["meta_sources"])
        self.meta_rewards = nn.ModuleList([self._reward_model(cfg, 0) for _ in range(n)])
        self.meta_rewards.requires_grad_(False)
        # set once source models are installed; a checkpoint carries it (and them)
        self.register_buffer("meta_ready", torch.tensor(n == 0))
        self._standalone: list[torch.optim.Optimizer] | None = None

    # -- construction (DreamerV2 overrides these) -----------------------------------------------
    def make_latent(self, cfg: Mapping[str, Any]):
        return self.latent_class(cfg["stoch"], cfg["latent_min_std"])

    def _reward_model(self, cfg: Mapping[str, Any], extra: int) -> nn.Module:
        feat = self.latent.sample_size + cfg["deter"]
        return MLPHead(feat + extra, 1, cfg["units"], cfg["reward_layers"])

    def build_components(self, cfg: Mapping[str, Any]) -> dict[str, nn.Module]:
        lat, A = self.latent, self.action_dim
        feat = lat.sample_size + cfg["deter"]
        if len(self.obs_shape) == 3:
            encoder: nn.Module = ConvEncoder(self.obs_shape, cfg["depth"])
            decoder: nn.Module = ConvDecoder(feat, self.obs_shape, cfg["depth"])
        elif len(self.obs_shape) == 1:
            encoder = DenseEncoder(self.obs_shape[0], cfg["embed"], cfg["units"],
                                   cfg["dense_layers"])
            decoder = DenseDecoder(feat, self.obs_shape[0], cfg["units"], cfg["dense_layers"])
        else:
            raise ValueError(f"Dreamer takes [C, 64, 64] images or flat vectors, "
                             f"not {self.obs_shape}")
        return {
            "encoder": encoder,
            "representation": Representation(cfg["deter"], encoder.embed_size, cfg["hidden"],
                                             lat.params_size),
            "transition": Transition(lat.sample_size, A, cfg["deter"], cfg["hidden"],
                                     lat.params_size),
            "decoder": decoder,
            "reward": self._reward_model(cfg, int(cfg["meta_sources"])),
            "value": MLPHead(feat, 1, cfg["units"], cfg["value_layers"]),
            "actor": ActorHead(feat, A, cfg["units"], cfg["actor_layers"], cfg["actor_init_std"]),
        }

    @property
    def rssm(self) -> RSSM:
        return RSSM(self.components["transition"], self.components["representation"], self.latent)

    # -- meta-model transfer ----------------------------------------------------------------------
    @torch.no_grad()
    def set_meta_rewards(self, sources: list[nn.Module | Mapping[str, torch.Tensor]]) -> None:
        """Install the N frozen source reward models (modules or their state dicts).

        Their weights are copied into ``meta_rewards`` (shape-checked), so the architecture is
        this agent's reward head without meta inputs, and a checkpoint restores them.
        """
        if len(sources) != len(self.meta_rewards):
            raise ValueError(f"agent built with meta_sources={len(self.meta_rewards)}, "
                             f"got {len(sources)} source reward model(s)")
        for i, (slot, src) in enumerate(zip(self.meta_rewards, sources)):
            state = src.state_dict() if isinstance(src, nn.Module) else src
            try:
                slot.load_state_dict(state)
            except RuntimeError as e:
                raise ValueError(f"source reward model {i} does not fit this agent's reward "
                                 f"head (units/layers/latent sizes must match): {e}") from e
        self.meta_rewards.requires_grad_(False)
        self.meta_ready.fill_(True)

    def predict_reward(self, feature: torch.Tensor) -> torch.Tensor:
        """Mean reward r̂ = m_Θ(x, m_θ1(x), …, m_θN(x)) (seed 000 §4.2), ``[...]``."""
        if len(self.meta_rewards):
            feature = torch.cat([feature, *(m(feature) for m in self.meta_rewards)], -1)
        return self.components["reward"](feature).squeeze(-1)

    # -- acting ---------------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[State, torch.Tensor]:
        return (self.rssm.initial(batch_size, self.device),
                torch.zeros(batch_size, self.action_dim, device=self.device))

    def reset_state(self, state, done):
        keep = (~done.bool()).float().unsqueeze(-1).to(self.device)
        latent, action = state
        return latent.map(lambda x: x * keep), action * keep

    @torch.no_grad()
    def act(self, obs, state, explore):
        """Filter o_t into the posterior, then act: a sample plus Gaussian noise (``expl_noise``,
        0.3 in the paper) when exploring, tanh(mean) otherwise; actions lie in [-1, 1]."""
        latent, prev_action = state
        embed = self.components["encoder"](torch.as_tensor(obs, device=self.device))
        latent, _, _ = self.rssm.obs_step(latent, prev_action, embed)
        actor = self.components["actor"]
        feat = latent.feature()
        if explore:
            action = actor(feat)
            action = (action + self.hparams.expl_noise * torch.randn_like(action)).clamp(-1, 1)
        else:
            action = actor.mode(feat)
        return action, (latent, action)

    # -- losses -----------------------------------------------------------------------------------
    def world_model_loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[dict, State]:
        """Dynamics learning (Algorithm 1): reconstruction, reward and KL terms, and the posterior
        states ``[B, T]`` the imagination starts from."""
        obs, action = batch["obs"], batch["action"].float()
        embed = self.components["encoder"](obs)
        states, post, prior = self.rssm.observe(embed, action, batch["is_first"])
        feat = states.feature()
        decoder = self.components["decoder"]
        recon, target = decoder(feat), decoder.target(obs)
        pixel_dims = tuple(range(2, recon.dim()))
        terms = {
            "decoder/nll": 0.5 * (recon - target).pow(2).sum(pixel_dims).mean(),
            "reward/nll": 0.5 * (self.predict_reward(feat) - batch["reward"].float()).pow(2).mean(),
            "transition/kl": kl_free_nats(self.latent.kl(post, prior), self.hparams.free_nats),
        }
        return terms, states

    @torch.no_grad()
    def reconstruct(self, obs, action) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded posterior of one observed sequence ``obs`` ``[T, ...]`` with the actions that
        led to each step ``[T, A]``: (reconstruction, target), both in the decoder's space."""
        obs = torch.as_tensor(obs, device=self.device).unsqueeze(0)
        action = torch.as_tensor(action, device=self.device).float().unsqueeze(0)
        is_first = torch.zeros(obs.shape[:2], dtype=torch.bool, device=self.device)
        is_first[:, 0] = True
        states, _, _ = self.rssm.observe(self.components["encoder"](obs), action, is_first)
        decoder = self.components["decoder"]
        return decoder(states.feature())[0], decoder.target(obs)[0]

    def imagine(self, start: State) -> torch.Tensor:
        """Features ``[H, N, F]`` of ``horizon`` imagined steps from the ``[N]`` start states."""
        feats, _ = self.rssm.imagine(start, self.components["actor"], self.hparams.horizon)
        return feats

    def _discount_weights(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        """γ^τ: later imagined steps count less (V1's cumulative product of the discounts)."""
        return self.hparams.gamma ** torch.arange(steps, device=like.device, dtype=like.dtype)

    def actor_loss(self, feats: torch.Tensor) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """Actor: maximise Σ_τ V_λ(s_τ) through the dynamics (Algorithm 1, φ update).

        Rewards r(s_τ) and values v(s_τ) of the imagined states give V_λ for τ < H, bootstrapped
        with v(s_H). Returns the terms, V_λ ``[H-1, N]`` and the discount weights ``[H-1]``.
        """
        h = self.hparams
        reward = self.predict_reward(feats[:-1])
        value = self.components["value"](feats).squeeze(-1)
        returns = lambda_returns(reward, value[:-1], h.gamma, value[-1], h.lam)
        weight = self._discount_weights(len(returns), returns)
        return {"actor/return": -(weight[:, None] * returns).mean()}, returns, weight

    def critic_loss(self, feats: torch.Tensor, returns: torch.Tensor,
                    weight: torch.Tensor) -> dict[str, torch.Tensor]:
        """Critic: ½‖v(s_τ) − V_λ(s_τ)‖² on detached states and targets (Algorithm 1, ψ
        update)."""
        value = self.components["value"](feats[:-1].detach()).squeeze(-1)
        return {"value/mse": (weight[:, None] * 0.5 * (value - returns.detach()).pow(2)).mean()}

    # -- one update -------------------------------------------------------------------------------
    def update(self, batch: Mapping[str, Any]) -> torch.Tensor:
        if MAIN in batch:
            raise NotImplementedError("Dreamer trains on a single replay stream")
        if not bool(self.meta_ready):
            raise RuntimeError(f"meta_sources={len(self.meta_rewards)} but no source reward "
                               "models are installed (use the 'meta_model' transfer callback)")
        world_model_loss, imagine = self.world_model_loss, self.imagine
        if self.hparams.compile:
            world_model_loss = functools.partial(_compiled(type(self).world_model_loss), self)
            imagine = functools.partial(_compiled(type(self).imagine), self)
        model_terms, states = world_model_loss(batch)
        self._optimise("model", self._weighted(model_terms))
        start = states.map(lambda x: x.detach().flatten(0, 1))
        with self._world_model_params_fixed():  # actor gradients reach the actor only
            feats = imagine(start)
            actor_terms, returns, weight = self.actor_loss(feats)
        self._optimise("actor", self._weighted(actor_terms))
        value_terms = self.critic_loss(feats, returns, weight)
        self._optimise("value", self._weighted(value_terms), counted=True)
        terms = {**model_terms, **actor_terms, **value_terms}
        self.log_terms(terms)
        return sum(t.detach() for t in terms.values())

    def _weighted(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """Σ weight_of(term) · term; ``None`` when every weight is 0."""
        total = None
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(f"loss term '{name}' is {value.item()}")
            w = self.weight_of(name)
            if w != 0.0:
                total = value * w if total is None else total + value * w
        return total

    @contextlib.contextmanager
    def _world_model_params_fixed(self):
        """Temporarily stop parameter gradients of everything but the actor (flags restored);
        gradients still flow through these modules to the actions."""
        params = [p for name in (*self.groups["model"], "value")
                  for p in self.components[name].parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def _optimizer(self, group: str):
        index = list(self.groups).index(group)
        if self._trainer is not None:
            return self.optimizers()[index]
        if self._standalone is None:  # outside a Trainer (unit tests, notebooks)
            self._standalone = self.configure_optimizers()
        return self._standalone[index]

    def _optimise(self, group: str, loss: torch.Tensor | None, counted: bool = False) -> None:
        """zero_grad, backward, clip, step one group; frozen parameters get no gradient and stay
        put, a wholly frozen group (or switched-off loss) is skipped. Exactly one step per update
        is ``counted`` by Lightning, so ``global_step`` counts updates, not optimiser steps."""
        opt = self._optimizer(group)
        opt.zero_grad(set_to_none=True)
        trainable = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
        live = loss is not None and loss.requires_grad and bool(trainable)
        if self._trainer is None:
            if live:
                loss.backward()
                nn.utils.clip_grad_norm_(trainable, self.hparams.clip)
                opt.step()
            return
        if live:
            self.manual_backward(loss)
            self.clip_gradients(opt, gradient_clip_val=self.hparams.clip,
                                gradient_clip_algorithm="norm")
        if counted:
            opt.step()  # a no-op for Adam when no parameter has a gradient
        elif live:
            self.trainer.strategy.optimizer_step(opt.optimizer, closure=lambda: None)

    def configure_optimizers(self):
        h = self.hparams
        return [torch.optim.Adam([p for name in names for p in self.components[name].parameters()],
                                 lr=h[_LR[group]], eps=h.adam_eps)
                for group, names in self.groups.items()]


@functools.cache
def _compiled(method: Callable) -> Callable:
    """``method`` (unbound, so copies of an agent never call back into the original) through
    torch.compile. The observe and imagine loops unroll into graphs of small ops that Python
    dispatch dominates; ``fallback_random`` draws the latent samples from torch's generator, so a
    compiled update matches the eager one for the same seed (up to float rounding)."""
    return torch.compile(method, options={"fallback_random": True})
