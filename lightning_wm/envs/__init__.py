"""Environment registry: suite YAML names an env id here, with options.

Heavy simulators (pybullet, nes-py, ALE) are imported inside their adapters' factories, so listing
or validating a suite never needs them installed.
"""
from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym

from lightning_wm.envs.corridor import Corridor
from lightning_wm.envs.maze import MetaLabyrinth, SimpleMaze

ENVS: dict[str, Callable[..., gym.Env]] = {
    "corridor": Corridor,
    "simple_maze": SimpleMaze,
    "meta_labyrinth": MetaLabyrinth,
}


def make_env(env_id: str, options: dict[str, Any] | None = None) -> gym.Env:
    if env_id not in ENVS:
        raise KeyError(f"unknown env '{env_id}' (known: {sorted(ENVS)})")
    return ENVS[env_id](**(options or {}))
