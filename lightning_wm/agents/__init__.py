"""Agent registry: suite YAML names an agent here; the builder gets the env's shapes.

A builder is called as ``builder(obs_shape, action_dim, discrete, **config)``;
:func:`check_agent_config` checks a config as :func:`make_agent` would take it, without building.
A builder imports its agent when called; the checks read :mod:`lightning_wm.agents.configs`
only, so suite validation never loads torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from lightning_wm.agents import configs
from lightning_wm.options import check_options

if TYPE_CHECKING:  # the agents import torch; checking a config must not
    from lightning_wm.agents.base import Agent


def _tiny_q(obs_shape, action_dim, discrete, **config) -> Agent:
    from lightning_wm.agents.tiny_q import TinyQAgent
    if not discrete or len(obs_shape) != 1:
        raise ValueError("tiny_q needs a flat observation and a discrete action space")
    return TinyQAgent(obs_shape[0], action_dim, **config)


def _crar(obs_shape, action_dim, discrete, **config) -> Agent:
    from lightning_wm.agents.crar import BLOCK, CRARAgent
    if not discrete or len(obs_shape) != 2:
        raise ValueError("crar needs a 2-D observation and a discrete action space")
    # the 8×8 maze gets the dense encoder, the 48×48 meta-labyrinth (6-pixel blocks) the conv one
    big = min(obs_shape) >= 4 * BLOCK and all(d % BLOCK == 0 for d in obs_shape)
    config.setdefault("encoder", "conv" if big else "dense")
    return CRARAgent(obs_shape, action_dim, **config)


def _dreamer(obs_shape, action_dim, discrete, **config) -> Agent:
    from lightning_wm.agents.dreamer import DreamerAgent
    if discrete:
        raise ValueError("dreamer (V1) takes continuous (Box) actions only; "
                         "discrete actions need DreamerV2's reinforce gradients")
    if len(obs_shape) not in (1, 3):
        raise ValueError(f"dreamer needs [C, 64, 64] uint8 images or flat vectors, got {obs_shape}")
    return DreamerAgent(obs_shape, action_dim, **config)


def _dreamer_v2(obs_shape, action_dim, discrete, **config) -> Agent:
    from lightning_wm.agents.dreamer_v2 import DreamerV2Agent
    if len(obs_shape) not in (1, 3):
        raise ValueError(f"dreamer_v2 needs [C, 64, 64] uint8 images or flat vectors, "
                         f"got {obs_shape}")
    return DreamerV2Agent(obs_shape, action_dim, **{**config, "discrete": bool(discrete)})


def _ppo(obs_shape, action_dim, discrete, **config) -> Agent:
    from lightning_wm.agents.ppo import PPOAgent
    if len(obs_shape) not in (1, 3):
        raise ValueError(f"ppo needs [C, 64, 64] uint8 images or flat vectors, got {obs_shape}")
    return PPOAgent(obs_shape, action_dim, bool(discrete), **config)


def _efficientzero(obs_shape, action_dim, discrete, **config) -> Agent:
    from lightning_wm.agents.efficientzero import EfficientZeroAgent
    if not discrete:
        raise ValueError("efficientzero takes discrete actions only (its search enumerates them)")
    if len(obs_shape) not in (1, 3):
        raise ValueError(f"efficientzero needs [C, H, W] uint8 images or flat vectors, "
                         f"got {obs_shape}")
    return EfficientZeroAgent(obs_shape, action_dim, **config)


AGENTS: dict[str, Callable[..., Agent]] = {
    "tiny_q": _tiny_q,
    "crar": _crar,
    "dreamer": _dreamer,
    "dreamer_v2": _dreamer_v2,
    "ppo": _ppo,
    "efficientzero": _efficientzero,
}


def make_agent(name: str, obs_shape: tuple[int, ...], action_dim: int, discrete: bool,
               config: dict[str, Any] | None = None) -> Agent:
    """Build agent ``name``; a ``loss_weights`` entry in ``config`` ({term glob: weight}) is
    applied to the agent, so a suite can switch loss terms off for a whole run."""
    if name not in AGENTS:
        raise KeyError(f"unknown agent '{name}' (known: {sorted(AGENTS)})")
    config = dict(config or {})
    weights = config.pop("loss_weights", {}) or {}
    agent = AGENTS[name](tuple(obs_shape), action_dim, discrete, **config)
    for pattern, weight in weights.items():
        agent.set_loss_weight(pattern, weight)
    return agent


#: config keys :func:`make_agent` consumes itself, for every agent
MAKE_AGENT_KEYS = ("loss_weights",)


def check_agent_config(name: str, config: Mapping[str, Any], discrete: bool | None = None) -> None:
    """Raise as :func:`make_agent` would for ``config``'s keys, and for the values Dreamer's
    config resolution rejects, without building the agent or knowing its env.

    Unknown keys raise :class:`~lightning_wm.options.UnknownOptionsError` (a ``TypeError``)
    listing them and the accepted keys; a bad value raises ``ValueError``. ``discrete`` is the
    env's action space where known (``None``: not known, see :func:`_check_dreamer_v2`)."""
    if name not in AGENTS:
        raise KeyError(f"unknown agent '{name}' (known: {sorted(AGENTS)})")
    _CHECKS[name](dict(config), discrete)


def _check_keywords(name: str, accepted: tuple[str, ...], config: dict) -> None:
    check_options(f"agent '{name}'", config, set(accepted) | set(MAKE_AGENT_KEYS))


def _check_tiny_q(config: dict, discrete: bool | None) -> None:
    _check_keywords("tiny_q", configs.TINY_Q_OPTIONS, config)


def _check_crar(config: dict, discrete: bool | None) -> None:
    _check_keywords("crar", configs.CRAR_OPTIONS, config)


def _check_ppo(config: dict, discrete: bool | None) -> None:
    _check_keywords("ppo", configs.PPO_OPTIONS, config)


def _check_resolved(name: str, resolve: Callable[..., dict], config: dict) -> None:
    """Dreamer-style config: a ``size`` preset (the constructor's default when absent) under
    overrides that ``resolve(size, overrides)`` checks."""
    size = config.pop("size", configs.DEFAULT_SIZE)
    # the preset's resolved keys are exactly the overrides it accepts
    accepted = set(resolve(size, {})) | {"size", *MAKE_AGENT_KEYS}
    check_options(f"agent '{name}'", config, accepted)
    resolve(size, {k: v for k, v in config.items() if k not in MAKE_AGENT_KEYS})


def _check_efficientzero(config: dict, discrete: bool | None) -> None:
    if discrete is False:
        raise ValueError("efficientzero takes discrete actions only")
    size = config.pop("size", configs.EFFICIENTZERO_DEFAULT_SIZE)
    accepted = set(configs.resolve_efficientzero(size, {})) | {"size", *MAKE_AGENT_KEYS}
    check_options("agent 'efficientzero'", config, accepted)
    configs.resolve_efficientzero(size, {k: v for k, v in config.items()
                                         if k not in MAKE_AGENT_KEYS})


def _check_dreamer(config: dict, discrete: bool | None) -> None:
    _check_resolved("dreamer", configs.resolve_dreamer, config)


def _check_dreamer_v2(config: dict, discrete: bool | None) -> None:
    """The builder sets ``discrete`` from the env; where that is unknown the config passes if it
    resolves for either kind of action space (a value check may depend on it)."""
    kinds = [bool(discrete)] if discrete is not None else [True, False]
    for i, kind in enumerate(kinds):
        try:
            _check_resolved("dreamer_v2", configs.resolve_dreamer_v2,
                            {**config, "discrete": kind})
            return
        except ValueError:
            if i == len(kinds) - 1:
                raise


_CHECKS: dict[str, Callable[[dict, bool | None], None]] = {
    "tiny_q": _check_tiny_q,
    "crar": _check_crar,
    "dreamer": _check_dreamer,
    "dreamer_v2": _check_dreamer_v2,
    "ppo": _check_ppo,
    "efficientzero": _check_efficientzero,
}
