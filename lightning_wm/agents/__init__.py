"""Agent registry: suite YAML names an agent here; the builder gets the env's shapes.

A builder is called as ``builder(obs_shape, action_dim, discrete, **config)``.
"""
from __future__ import annotations

from typing import Any, Callable

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


AGENTS: dict[str, Callable[..., Agent]] = {
    "tiny_q": _tiny_q,
    "crar": _crar,
    "dreamer": _dreamer,
    "dreamer_v2": _dreamer_v2,
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
