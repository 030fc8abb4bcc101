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


AGENTS: dict[str, Callable[..., Agent]] = {
    "tiny_q": _tiny_q,
}


def make_agent(name: str, obs_shape: tuple[int, ...], action_dim: int, discrete: bool,
               config: dict[str, Any] | None = None) -> Agent:
    if name not in AGENTS:
        raise KeyError(f"unknown agent '{name}' (known: {sorted(AGENTS)})")
    return AGENTS[name](tuple(obs_shape), action_dim, discrete, **(config or {}))
