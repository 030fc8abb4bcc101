"""Environment registry: suite YAML names an env id here, with options.

Heavy simulators (pybullet, nes-py, ALE) are imported inside their adapters' factories, so listing
or validating a suite never needs them installed.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping

import gymnasium as gym

from lightning_wm.envs.corridor import Corridor
from lightning_wm.envs.maze import MetaLabyrinth, SimpleMaze
from lightning_wm.envs.point import PointMass
from lightning_wm.options import check_options, keyword_options


def _pybullet(task: str, **options: Any) -> gym.Env:
    """A pybullet_envs task (pybullet_ftl / pybullet_mmtl); pybullet is imported only here."""
    from lightning_wm.envs.pybullet import PyBulletEnv

    return PyBulletEnv(task, **options)


def _mario(**options: Any) -> gym.Env:
    """Super Mario Bros levels (mario_levels); nes-py's emulator is loaded only when one is made."""
    from lightning_wm.envs.mario import MarioEnv

    return MarioEnv(**options)


def _atari(**options: Any) -> gym.Env:
    """An Atari 2600 game (atari100k); ale-py is imported only when one is made."""
    from lightning_wm.envs.atari import AtariEnv

    return AtariEnv(**options)


#: pybullet_envs tasks (pybullet_ftl / pybullet_mmtl), each an env id of its own
PYBULLET_TASKS = ("halfcheetah", "hopper", "walker2d", "ant", "pendulum_swingup",
                  "pendulum_balance", "double_pendulum_swingup", "reacher")

ENVS: dict[str, Callable[..., gym.Env]] = {
    "corridor": Corridor,
    "simple_maze": SimpleMaze,
    "meta_labyrinth": MetaLabyrinth,
    "point": PointMass,
    **{task: partial(_pybullet, task) for task in PYBULLET_TASKS},
    "mario": _mario,
    "atari": _atari,
}


#: options every env accepts: pad its flat observation / Box action to a fixed width, so agents
#: for different tasks share shapes and whole components can transfer (proprioceptive suites)
PAD_OPTIONS = ("pad_obs", "pad_action")

#: option names of the adapters whose constructor sits behind a lazy import (``**options`` above
#: hides them), written out so that checking a suite needs no adapter's simulator; a test holds
#: them equal to ``PyBulletEnv`` / ``MarioEnv`` / ``AtariEnv``'s keyword parameters
# obs (pixels|proprio), action_repeat, max_steps (env steps), size, reward (a variant the task
# declares: "default" everywhere; reacher also "mirror" and "effort"), goal (reacher: a fixed
# target [x, y] instead of one drawn per episode)
PYBULLET_OPTIONS = ("obs", "action_repeat", "max_steps", "size", "reward", "goal")
# level ("1-1") or levels (["3-1", ...], one drawn uniformly per episode), size (64),
# action_repeat (4), sticky (0.2, per emulator frame), clip (15), max_steps (agent decisions,
# 27000), grayscale (True)
MARIO_OPTIONS = ("level", "levels", "size", "action_repeat", "sticky", "clip", "max_steps",
                 "grayscale", "render_mode")
# game (an ALE ROM id, "pong", or a score-table name, "MsPacman"), frame_skip (4, max-pool of the
# last two frames), sticky (0.0), noop_max (30), terminal_on_life_loss (True: training only),
# clip_rewards (True: training only), max_frames (emulator frames, 108000), size (96), grayscale
# (False), frame_stack (4); evaluation envs take lightning_wm.envs.atari.evaluation_options
ATARI_OPTIONS = ("game", "frame_skip", "sticky", "noop_max", "terminal_on_life_loss",
                 "clip_rewards", "max_frames", "size", "grayscale", "frame_stack", "render_mode")
_DECLARED = {**{task: PYBULLET_OPTIONS for task in PYBULLET_TASKS}, "mario": MARIO_OPTIONS,
             "atari": ATARI_OPTIONS}

#: env id -> every option name :func:`make_env` accepts for it
ENV_OPTIONS: dict[str, frozenset[str]] = {
    env_id: frozenset(_DECLARED[env_id] if env_id in _DECLARED else keyword_options(factory))
    | frozenset(PAD_OPTIONS)
    for env_id, factory in ENVS.items()
}


def env_receiver(env_id: str) -> Callable[..., gym.Env]:
    """The class that finally receives env ``env_id``'s options: the adapter behind a lazy
    factory (importable without its simulator), the registered constructor otherwise."""
    if env_id in PYBULLET_TASKS:
        from lightning_wm.envs.pybullet import PyBulletEnv
        return PyBulletEnv
    if env_id == "mario":
        from lightning_wm.envs.mario import MarioEnv
        return MarioEnv
    if env_id == "atari":
        from lightning_wm.envs.atari import AtariEnv
        return AtariEnv
    return ENVS[env_id]


def check_env_options(env_id: str, options: Mapping[str, Any]) -> None:
    """Raise :class:`~lightning_wm.options.UnknownOptionsError` for keys of ``options`` env
    ``env_id`` does not take, without building the env (nor importing its simulator)."""
    if env_id not in ENVS:
        raise KeyError(f"unknown env '{env_id}' (known: {sorted(ENVS)})")
    check_options(f"env '{env_id}'", options, ENV_OPTIONS[env_id])


def make_env(env_id: str, options: dict[str, Any] | None = None) -> gym.Env:
    if env_id not in ENVS:
        raise KeyError(f"unknown env '{env_id}' (known: {sorted(ENVS)})")
    options = dict(options or {})
    check_env_options(env_id, options)
    pad = {k: options.pop(k) for k in PAD_OPTIONS if k in options}
    env = ENVS[env_id](**options)
    if pad:
        from lightning_wm.envs.wrappers import PadSpaces
        env = PadSpaces(env, pad.get("pad_obs"), pad.get("pad_action"))
    return env
