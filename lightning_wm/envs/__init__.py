"""Environment registry: suite YAML names an env id here, with options.

Heavy simulators (pybullet, nes-py, ALE) are imported inside their adapters' factories, so listing
or validating a suite never needs them installed.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import gymnasium as gym

from lightning_wm.envs.corridor import Corridor
from lightning_wm.envs.maze import MetaLabyrinth, SimpleMaze
from lightning_wm.envs.point import PointMass


def _pybullet(task: str, **options: Any) -> gym.Env:
    """A pybullet_envs task (pybullet_ftl / pybullet_mmtl); pybullet is imported only here."""
    from lightning_wm.envs.pybullet import PyBulletEnv

    return PyBulletEnv(task, **options)


def _mario(**options: Any) -> gym.Env:
    """Super Mario Bros levels (mario_levels); nes-py's emulator is loaded only when one is made."""
    from lightning_wm.envs.mario import MarioEnv

    return MarioEnv(**options)


ENVS: dict[str, Callable[..., gym.Env]] = {
    "corridor": Corridor,
    "simple_maze": SimpleMaze,
    "meta_labyrinth": MetaLabyrinth,
    "point": PointMass,
    # options: obs (pixels|proprio), action_repeat, max_steps (env steps), size
    "halfcheetah": partial(_pybullet, "halfcheetah"),
    "hopper": partial(_pybullet, "hopper"),
    "walker2d": partial(_pybullet, "walker2d"),
    "ant": partial(_pybullet, "ant"),
    "pendulum_swingup": partial(_pybullet, "pendulum_swingup"),
    "double_pendulum_swingup": partial(_pybullet, "double_pendulum_swingup"),
    # options: level ("1-1") or levels (["3-1", ...], one drawn uniformly per episode), size (64),
    # action_repeat (4), sticky (0.2, per emulator frame), clip (15), max_steps (agent decisions,
    # 27000), grayscale (True)
    "mario": _mario,
}


#: options every env accepts: pad its flat observation / Box action to a fixed width, so agents
#: for different tasks share shapes and whole components can transfer (proprioceptive suites)
PAD_OPTIONS = ("pad_obs", "pad_action")


def make_env(env_id: str, options: dict[str, Any] | None = None) -> gym.Env:
    if env_id not in ENVS:
        raise KeyError(f"unknown env '{env_id}' (known: {sorted(ENVS)})")
    options = dict(options or {})
    pad = {k: options.pop(k) for k in PAD_OPTIONS if k in options}
    env = ENVS[env_id](**options)
    if pad:
        from lightning_wm.envs.wrappers import PadSpaces
        env = PadSpaces(env, pad.get("pad_obs"), pad.get("pad_action"))
    return env
