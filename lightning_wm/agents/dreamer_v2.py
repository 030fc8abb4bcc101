"""DreamerV2: Dreamer with categorical latents, a discount head and a reinforce actor.

Hafner et al., "Mastering Atari with Discrete World Models", 2021, as Voskuil, "Pre-training World
Models to efficiently learn related tasks" (Master's thesis, Leiden University, 2022) uses it
(multi-task pre-training on Super Mario Bros levels); the agent of the mario_levels and atari100k
suites. There is no DreamerV2 class: :func:`DreamerV2Agent` builds
:class:`~lightning_wm.agents.dreamer.DreamerAgent` from V2's :data:`RECIPE`, which keeps V1's RSSM,
encoders, decoders and acting and chooses other parts:

- latent (eq. (1) of Voskuil (2022)): 32 categoricals × 32 classes with straight-through
  samples (:class:`~lightning_wm.nets.categorical.CategoricalLatent`), whose ``kl`` is
  KL-balanced (α 0.8);
- components add ``discount``: γ̂_t ~ p_φ(γ̂ | h_t, z_t), a Bernoulli continuation head trained
  on 1 − is_terminal; ``actor`` is one-hot categorical for discrete actions;
- world-model loss (eq. (3)): V1's terms with tanh-clipped reward targets, the KL scaled by
  ``kl_scale`` (β = 0.1) and ``discount/nll`` scaled by ``discount_scale`` (5)
  (:class:`~lightning_wm.agents.parts.world_model.WorldModel`);
- behaviour (:class:`~lightning_wm.agents.parts.slow_critic.SlowCriticActorCritic`): λ-targets
  (eq. (4)) from predicted rewards and discounts γ·γ̂_t and a slow target critic
  (``target_value``, a copy of ``value`` re-synced every ``target_every`` = 100 updates; never a
  component, so transfer never addresses it), imagined steps weighted by the cumulative predicted
  discount; critic (eq. (5)): ½ (v(ẑ_t) − sg(V^λ_t))², discount-weighted; actor (eq. (6)):
  reinforce gradients with the target critic as baseline and entropy regularisation
  η = ``actor_ent`` (1e-3) for discrete actions; continuous (Box) actions keep V1's tanh-Gaussian
  actor and dynamics backprop (``actor_grad="auto"`` picks per action space).

Hyperparameters: Voskuil (2022) "reuse[s] all hyperparameters from the Atari experiments"
of DreamerV2 without listing them; ``paper`` holds those (deter 600, 32 × 32 latents, heads
4 × 400, CNN depth 48, sequences 50, batch 16, horizon 15, lr 2e-4 / 4e-5 / 1e-4, γ 0.999, λ 0.95,
KL scale 0.1, discount scale 5, η 1e-3, target every 100, Adam ε 1e-5, clip 100, tanh rewards).

Short episodes (Voskuil (2022), §5.2): ``absorbing=True`` declares in
:meth:`~lightning_wm.agents.dreamer.DreamerAgent.data_needs` that replay windows may run past an
episode's end into absorbing states.

Where we differ from DreamerV2's code: V1's RSSM is reused as is (a plain GRU cell, not V2's
layer-normalised one); the discount head learns P(continue) and is scaled by γ where used (V2
fits γ·(1 − terminal) directly: the same mean); no weight decay (V2: 1e-6); no "both" mix of
reinforce and dynamics gradients; the world model is stepped before imagination (as V1 here).
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from lightning_wm.agents.configs import (DEFAULT_SIZE, DREAMER_V2_DEFAULTS, DREAMER_V2_SIZES,
                                         check_dreamer_v2, resolve_dreamer_v2)
from lightning_wm.agents.dreamer import DreamerAgent
from lightning_wm.agents.parts import (Recipe, SlowCriticActorCritic, WorldModel,
                                       WorldModelOptions)
from lightning_wm.agents.protocol import AbsorbingOptions
from lightning_wm.nets.categorical import CategoricalLatent, OneHotActor
from lightning_wm.nets.dense import ActorHead
from lightning_wm.nets.heads import MLPHead

#: everything not a size, and the ``size`` presets (in :mod:`lightning_wm.agents.configs`, which
#: suite validation reads without importing torch)
DEFAULTS: dict[str, Any] = DREAMER_V2_DEFAULTS
SIZES: dict[str, dict[str, Any]] = DREAMER_V2_SIZES

#: DreamerV2's Atari loop as a ``TrainingConfig``: one update of a 16 × 50 batch every 16 agent
#: steps (``train_every``), after 50k random prefill steps.
PAPER_TRAINING: dict[str, int] = dict(collect_every=16, updates_per_collect=1, prefill=50_000,
                                      batch_size=16)


def _heads(cfg: Mapping[str, Any], feature_size: int, action_dim: int) -> dict[str, nn.Module]:
    """``value``, ``actor`` (one-hot for discrete actions) and ``discount``."""
    units = cfg["units"]
    value = MLPHead(feature_size, 1, units, cfg["value_layers"])
    # V1's tanh-Gaussian actor is built even for discrete actions: its random draws at init
    # come before the one-hot actor's in the committed results (mario_levels), which reproduce
    # bit for bit only with them
    actor: nn.Module = ActorHead(feature_size, action_dim, units, cfg["actor_layers"],
                                 cfg["actor_init_std"])
    if cfg["discrete"]:
        actor = OneHotActor(feature_size, action_dim, units, cfg["actor_layers"])
    return {"value": value, "actor": actor,
            "discount": MLPHead(feature_size, 1, units, cfg["discount_layers"])}


def _world_model(cfg: Mapping[str, Any]) -> WorldModelOptions:
    return WorldModelOptions(
        free_nats=cfg["free_nats"], clip_rewards=cfg["clip_rewards"], discount=True,
        scales={"transition/kl": cfg["kl_scale"], "discount/nll": cfg["discount_scale"]})


def _behaviour(cfg: Mapping[str, Any], components: nn.ModuleDict,
               world_model: WorldModel) -> SlowCriticActorCritic:
    grad, discrete = cfg["actor_grad"], bool(cfg["discrete"])
    return SlowCriticActorCritic(
        components, world_model, horizon=cfg["horizon"], gamma=cfg["gamma"], lam=cfg["lam"],
        discrete=discrete, reinforce=grad == "reinforce" or (grad == "auto" and discrete),
        actor_ent=cfg["actor_ent"], target_every=cfg["target_every"])


def _absorbing(cfg: Mapping[str, Any]) -> AbsorbingOptions | None:
    return AbsorbingOptions(discrete=bool(cfg["discrete"])) if cfg["absorbing"] else None


#: DreamerV2: categorical latents, discount head, slow critic, tanh rewards, absorbing replay
RECIPE = Recipe(
    name="DreamerV2", defaults=DEFAULTS, sizes=SIZES,
    latent=lambda cfg: CategoricalLatent(cfg["stoch"], cfg["classes"], cfg["kl_balance"]),
    heads=_heads, world_model=_world_model, behaviour=_behaviour, absorbing=_absorbing,
    check=check_dreamer_v2,
)


def resolve_config(size: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """V2's ``size`` preset + :data:`DEFAULTS`, then ``overrides`` (unknown keys raise a
    TypeError listing the known ones), then V2's consistency checks."""
    return resolve_dreamer_v2(size, overrides)


def DreamerV2Agent(obs_shape: tuple[int, ...], action_dim: int, size: str = DEFAULT_SIZE,
                   **overrides: Any) -> DreamerAgent:
    """The Dreamer agent composed from DreamerV2's recipe (a named constructor, no subclass)."""
    return DreamerAgent(obs_shape, action_dim, size, recipe=RECIPE, **overrides)
