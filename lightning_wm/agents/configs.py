"""Agent option tables, importable without torch.

Suite validation checks every agent config before anything trains; importing the agents
themselves would load torch (seconds of CPU) just to read a few dicts. So the tables live here and
the agent modules import them from here: Dreamer's and DreamerV2's presets and their resolution
(:func:`resolve_preset`, which :class:`~lightning_wm.agents.parts.recipe.Recipe` also uses), and
the keyword options of TinyQ and CRAR, whose constructors are their own truth (a test holds these
lists equal to their signatures).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

Config = Mapping[str, Any]

#: the ``size`` a Dreamer (V1 or V2) constructor builds when a config names none
DEFAULT_SIZE = "small"

# -- Dreamer V1 ------------------------------------------------------------------------------
#: everything not a size: Dreamer V1's values (V1's code, which Sasso et al. (2023), §5, build on)
DREAMER_DEFAULTS: dict[str, Any] = dict(
    reward_layers=2, value_layers=3, actor_layers=4, dense_layers=2, horizon=15,
    gamma=0.99, lam=0.95, model_lr=6e-4, value_lr=8e-5, actor_lr=8e-5, adam_eps=1e-7,
    clip=100.0, free_nats=3.0, expl_noise=0.3, latent_min_std=0.1, actor_init_std=5.0,
    meta_sources=0,
    # not V1's: a squashed-entropy bonus for the actor (DynamicsActorCritic says why); V1 has 0
    actor_ent=0.0,
    compile=False,  # torch.compile the unrolled RSSM loops of an update (see DreamerAgent.update)
)

#: ``size`` presets. ``paper``: 200 deterministic + 30 stochastic units, heads of 400 units
#: (V1's code; its paper text says 300), CNN depth 32, sequences of 50.
DREAMER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(deter=16, stoch=4, hidden=16, units=16, embed=16, depth=2, seq_len=6, horizon=4),
    "small": dict(deter=64, stoch=8, hidden=64, units=64, embed=64, depth=8, seq_len=16),
    "paper": dict(deter=200, stoch=30, hidden=200, units=400, embed=400, depth=32, seq_len=50),
}

# -- DreamerV2 -------------------------------------------------------------------------------
#: everything not a size: DreamerV2's Atari values (Voskuil (2022) reuses them).
#: ``stoch`` counts categoricals, ``classes`` their classes; ``free_nats`` 0: V2's KL is free-free.
DREAMER_V2_DEFAULTS: dict[str, Any] = dict(
    reward_layers=4, value_layers=4, actor_layers=4, dense_layers=4, horizon=15,
    gamma=0.999, lam=0.95, model_lr=2e-4, value_lr=1e-4, actor_lr=4e-5, adam_eps=1e-5,
    clip=100.0, free_nats=0.0, expl_noise=0.0, latent_min_std=0.1, actor_init_std=5.0,
    meta_sources=0, compile=False,
    # DreamerV2 only
    classes=32, discrete=True, kl_balance=0.8, kl_scale=0.1, discount_scale=5.0,
    discount_layers=4, actor_ent=1e-3, actor_grad="auto", target_every=100, clip_rewards="tanh",
    absorbing=True,
)

_SMALL_HEADS = dict(reward_layers=2, value_layers=2, actor_layers=2, discount_layers=2,
                    dense_layers=2)
#: ``size`` presets (the same names as V1's). ``paper``: DreamerV2 on Atari.
DREAMER_V2_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(deter=16, stoch=4, classes=4, hidden=16, units=16, embed=16, depth=2,
                 seq_len=6, horizon=4, **_SMALL_HEADS),
    "small": dict(deter=64, stoch=8, classes=8, hidden=64, units=64, embed=64, depth=8,
                  seq_len=16, **_SMALL_HEADS),
    "paper": dict(deter=600, stoch=32, classes=32, hidden=600, units=400, embed=400, depth=48,
                  seq_len=50),
}


def check_dreamer_v2(cfg: Config) -> None:
    """DreamerV2's consistency checks of a resolved config (``ValueError``)."""
    if cfg["actor_grad"] not in ("auto", "reinforce", "dynamics"):
        raise ValueError(f"actor_grad must be auto|reinforce|dynamics, not {cfg['actor_grad']!r}")
    if cfg["clip_rewards"] not in ("none", "tanh"):
        raise ValueError(f"clip_rewards must be none|tanh, not {cfg['clip_rewards']!r}")
    if int(cfg["target_every"]) < 1:
        raise ValueError("target_every must be >= 1 (1: the target critic is the critic)")
    if cfg["discrete"] and cfg["expl_noise"]:
        raise ValueError("discrete DreamerV2 explores by sampling its actor; expl_noise must be 0")


def resolve_preset(name: str, defaults: Config, sizes: Mapping[str, Config], size: str,
                   overrides: Config, check: Callable[[Config], None] | None = None
                   ) -> dict[str, Any]:
    """``size`` preset + ``defaults``, then explicit ``overrides`` (unknown keys raise a
    TypeError that lists the known ones), then the version's ``check``; ``name`` is the
    version's, for the messages."""
    if size not in sizes:
        raise ValueError(f"size must be one of {sorted(sizes)}, not {size!r}")
    cfg = {**defaults, **sizes[size]}
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise TypeError(f"unknown {name} option(s) {unknown}; known: {sorted(cfg)}")
    cfg.update(overrides)
    if check is not None:
        check(cfg)
    return cfg


def resolve_dreamer(size: str, overrides: Config) -> dict[str, Any]:
    """V1's ``size`` preset + :data:`DREAMER_DEFAULTS`, then ``overrides``."""
    return resolve_preset("Dreamer", DREAMER_DEFAULTS, DREAMER_SIZES, size, overrides)


def resolve_dreamer_v2(size: str, overrides: Config) -> dict[str, Any]:
    """V2's ``size`` preset + :data:`DREAMER_V2_DEFAULTS`, then ``overrides``, then
    :func:`check_dreamer_v2`."""
    return resolve_preset("DreamerV2", DREAMER_V2_DEFAULTS, DREAMER_V2_SIZES, size, overrides,
                          check_dreamer_v2)


# -- value-based agents ----------------------------------------------------------------------
#: keyword options of :class:`~lightning_wm.agents.tiny_q.TinyQAgent` a config may set (the
#: builder supplies ``obs_dim`` and ``action_dim`` from the env)
TINY_Q_OPTIONS = ("hidden", "latent", "lr", "gamma", "eps_start", "eps_end", "eps_steps",
                  "target_every")
#: keyword options of :class:`~lightning_wm.agents.crar.CRARAgent` a config may set (the builder
#: supplies ``obs_shape`` and ``action_dim``)
CRAR_OPTIONS = ("abstract_dim", "encoder", "hidden", "layers", "lr", "gamma", "c_d", "eps_start",
                "eps_end", "eps_steps", "target_every", "conv_channels", "conv_width",
                "conv_stem", "heads", "plan_depth", "n_step")

#: keyword options of :class:`~lightning_wm.agents.ppo.PPOAgent` a config may set (the builder
#: supplies ``obs_shape``, ``action_dim`` and ``discrete``)
PPO_OPTIONS = ("hidden", "layers", "lr", "gamma", "lam", "clip", "epochs", "minibatches",
               "value_coef", "ent_coef", "max_grad_norm", "init_log_std", "depth",
               "normalise_obs")


# -- EfficientZero ---------------------------------------------------------------------------
#: the ``size`` an EfficientZero constructor builds when a config names none (a toy env's
#: vector or 16×16 frames: the cheap size of tests and the fake suite)
EFFICIENTZERO_DEFAULT_SIZE = "tiny"
SEARCHES = ("gumbel", "puct")
OPTIMISERS = ("adam", "sgd")

#: everything not a size: EfficientZero's Atari values (Ye et al. 2021, the released config)
#: where they exist. ``optimiser`` adam (EfficientZero: SGD, lr 0.2, momentum 0.9, weight decay
#: 1e-4, warm-up over the first 1 % of its 100k updates and a decay of 0.1 per 100k after it:
#: ``optimiser: sgd, lr: 0.2, lr_warmup: 1000, lr_decay_rate: 0.1, lr_decay_steps: 100000``;
#: the defaults keep the rate constant); ``clip`` 5 is its gradient-norm clip;
#: ``target_every`` 200 its target-model interval; pUCT's constants and Dirichlet(0.3) at 25 %
#: are MuZero's; Gumbel's ``num_considered`` 16, ``c_visit`` 50, ``c_scale`` 0.1 are Danihelka
#: et al.'s (2022).
EFFICIENTZERO_DEFAULTS: dict[str, Any] = dict(
    gamma=0.997, lr=1e-3, optimiser="adam", momentum=0.9, weight_decay=1e-4, clip=5.0,
    lr_warmup=0, lr_decay_rate=1.0, lr_decay_steps=100_000,
    # EfficientZero's off-policy correction: the bootstrap horizon shrinks by one per 0.3 x this
    # many steps of a window's age (its Atari config: 100k, its training steps); 0 = fixed n
    off_policy_budget=0,
    target_every=200, lstm_horizon=5, temperature=1.0,
    # the acting temperature halves at each of these update counts (EfficientZero: half and three
    # quarters of its training steps); empty: constant
    temperature_halvings=[],
    # EfficientZero's reanalysis searches with the root's Dirichlet noise too (pUCT only)
    reanalyse_noise=True,
    dirichlet_alpha=0.3, noise_fraction=0.25, pb_c_init=1.25, pb_c_base=19652.0, min_delta=0.01,
    num_considered=16, c_visit=50.0, c_scale=0.1,
    # the smallest Q range Gumbel's min-max rescale stretches onto [0, 1] (pUCT's min_delta);
    # the default only avoids 0 / 0, as in Danihelka et al.'s
    gumbel_min_delta=1e-8,
    action_encoding="scalar", normalise_latent=False,
    # windows may start at any step and run past an episode's end (EfficientZero pads its
    # targets there); plain windows never unroll over an episode's last n transitions
    absorbing=True,
)

#: ``size`` presets; the size also names the networks' table (``nets.efficientzero.SIZES``).
#: ``unroll`` K and ``n_step`` n (window = K + n + 1 steps), the search and its simulations, and
#: the value / value-prefix supports S (atoms −S..S). ``paper``: EfficientZero's Atari 100k
#: (K = n = 5, 50 pUCT simulations, S = 300).
EFFICIENTZERO_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(unroll=3, n_step=3, search="gumbel", simulations=6, value_support=10,
                 reward_support=10, target_every=50),
    "small": dict(unroll=5, n_step=5, search="gumbel", simulations=8, value_support=50,
                  reward_support=50),
    "paper": dict(unroll=5, n_step=5, search="puct", simulations=50, value_support=300,
                  reward_support=300),
}


def check_efficientzero(cfg: Config) -> None:
    """EfficientZero's checks of a resolved config (``ValueError``)."""
    if cfg["search"] not in SEARCHES:
        raise ValueError(f"search must be one of {list(SEARCHES)}, not {cfg['search']!r}")
    if cfg["optimiser"] not in OPTIMISERS:
        raise ValueError(f"optimiser must be one of {list(OPTIMISERS)}, not {cfg['optimiser']!r}")
    if cfg["action_encoding"] not in ("scalar", "one_hot"):
        raise ValueError(f"action_encoding must be scalar|one_hot, not {cfg['action_encoding']!r}")
    for key in ("unroll", "n_step", "simulations", "lstm_horizon", "target_every",
                "value_support", "reward_support", "num_considered"):
        if int(cfg[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]!r}")
    for key in ("min_delta", "gumbel_min_delta"):
        if not float(cfg[key]) > 0.0:
            raise ValueError(f"{key} must be > 0 (the smallest Q range the search stretches onto "
                             f"[0, 1]), got {cfg[key]!r}")
    if not 0.0 < float(cfg["gamma"]) <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {cfg['gamma']!r}")
    if int(cfg["off_policy_budget"]) < 0:
        raise ValueError(f"off_policy_budget must be >= 0 (0: fixed n-step horizon), got "
                         f"{cfg['off_policy_budget']!r}")
    if int(cfg["lr_warmup"]) < 0 or int(cfg["lr_decay_steps"]) < 1:
        raise ValueError(f"lr_warmup must be >= 0 and lr_decay_steps >= 1, got "
                         f"{cfg['lr_warmup']!r} and {cfg['lr_decay_steps']!r}")
    if not 0.0 < float(cfg["lr_decay_rate"]) <= 1.0:
        raise ValueError(f"lr_decay_rate must be in (0, 1], got {cfg['lr_decay_rate']!r}")
    halvings = cfg["temperature_halvings"]
    if (not isinstance(halvings, (list, tuple))
            or not all(isinstance(h, int) and h >= 0 for h in halvings)
            or list(halvings) != sorted(halvings)):
        raise ValueError(f"temperature_halvings must be a list of ascending update counts >= 0, "
                         f"got {halvings!r}")


def resolve_efficientzero(size: str, overrides: Config) -> dict[str, Any]:
    """EfficientZero's ``size`` preset + :data:`EFFICIENTZERO_DEFAULTS`, then ``overrides``, then
    :func:`check_efficientzero`."""
    return resolve_preset("EfficientZero", EFFICIENTZERO_DEFAULTS, EFFICIENTZERO_SIZES, size,
                          overrides, check_efficientzero)
