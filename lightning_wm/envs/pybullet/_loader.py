"""Import pybullet's bundled ``pybullet_envs`` classes without their broken package ``__init__``.

``pybullet_envs/__init__.py`` registers ids with ``registry.env_specs`` (gone since gym 0.26) and
its modules import ``gym`` and ``pkg_resources``, neither of which this project depends on. So the
env and robot modules are imported once per process inside :func:`_isolated_imports`, which

* hides any real ``pybullet_envs`` / ``gym`` / ``pkg_resources`` modules and puts tiny shims in
  ``sys.modules`` (``gym.spaces`` is gymnasium's, ``gym.Env`` a plain base class);
* stands in an empty package for ``pybullet_envs`` so ``__init__.py`` never runs;
* afterwards removes the shims and every module loaded from the ``pybullet_envs`` folder (they are
  also imported under top-level names such as ``robot_bases``), puts back whatever it hid, and
  restores ``sys.path`` (the modules insert folders into it) and ``sys.path_importer_cache``.

The loaded classes keep working afterwards because their functions hold their own module globals.
Nothing registers with any registry. The swap is guarded by a lock but other threads importing
``gym`` during those few milliseconds would see the shim; it happens once per process.

pybullet's C code prints a banner when imported (``pybullet build time: ...``) and when a client
connects (``argv[0]=``) straight to file descriptors 1 and 2, past ``sys.stdout``;
:func:`quiet_native_output` points those descriptors at ``/dev/null`` around such calls only.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import math
import os
import sys
import threading
import types
from typing import Any, Iterator

import numpy as np

_LOCK = threading.Lock()
_CLASSES: dict[str, Any] | None = None
_ENV_MODULES = ("pybullet_envs.gym_locomotion_envs", "pybullet_envs.gym_pendulum_envs",
                "pybullet_envs.gym_manipulator_envs")


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Send what C code writes to fds 1 and 2 to ``/dev/null`` inside the block, then restore
    them. Python's own streams are flushed first so nothing queued before is lost, and C stdio is
    flushed before restoring: with a pipe it buffers and would print the banner at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        with open(os.devnull, "wb") as null:
            for fd in (1, 2):
                os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                _flush_c_stdio()
                for fd, copy in zip((1, 2), saved):
                    os.dup2(copy, fd)
    finally:
        for copy in saved:
            os.close(copy)


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library handle (Windows): nothing buffered to lose
        pass


def _shim_modules() -> dict[str, types.ModuleType]:
    """The parts of old ``gym`` and ``pkg_resources`` that pybullet_envs touches."""
    import gymnasium

    class Env:  # the old envs only use gym.Env as a base class
        pass

    gym = types.ModuleType("gym")
    utils = types.ModuleType("gym.utils")
    seeding = types.ModuleType("gym.utils.seeding")
    # The adapter replaces these generators on every reset; this one only has to exist.
    seeding.np_random = lambda seed=None: (np.random.default_rng(seed), seed)
    utils.seeding = seeding
    gym.__version__, gym.Env, gym.spaces, gym.utils = "0.26.2", Env, gymnasium.spaces, utils
    pkg = types.ModuleType("pkg_resources")
    pkg.parse_version = lambda v: tuple(int(p) for p in v.split(".") if p.isdigit())
    return {"gym": gym, "gym.spaces": gymnasium.spaces, "gym.utils": utils,
            "gym.utils.seeding": seeding, "pkg_resources": pkg}


def _owned(name: str, module: Any, folder: str) -> bool:
    """A module this loader must not leave behind: pybullet_envs or a shimmed name."""
    if name.split(".")[0] in ("pybullet_envs", "gym", "pkg_resources"):
        return True
    path = getattr(module, "__file__", None) or ""
    return path.startswith(folder + os.sep)


@contextlib.contextmanager
def _isolated_imports(folder: str) -> Iterator[None]:
    saved_modules, saved_path = dict(sys.modules), list(sys.path)
    saved_cache = set(sys.path_importer_cache)
    for name in [n for n, m in saved_modules.items() if _owned(n, m, folder)]:
        del sys.modules[name]  # hide a real pybullet_envs/gym import while ours runs
    package = types.ModuleType("pybullet_envs")
    package.__path__, package.__package__ = [folder], "pybullet_envs"
    sys.modules.update(_shim_modules(), pybullet_envs=package)
    try:
        yield
    finally:
        for name in [n for n, m in list(sys.modules.items()) if _owned(n, m, folder)]:
            del sys.modules[name]
        sys.modules.update(saved_modules)
        sys.path[:] = saved_path
        for key in set(sys.path_importer_cache) - saved_cache:
            del sys.path_importer_cache[key]


def _double_pendulum_swingup(base_env: type, base_robot: type, mjcf_env: type) -> type:
    """InvertedDoublePendulumSwingup, built the way pybullet_envs builds its single swing-up:
    the same robot, a hanging start and a new reward (see ``swingup_reward``)."""

    class InvertedDoublePendulumSwingup(base_robot):
        def robot_specific_reset(self, bullet_client):
            super().robot_specific_reset(bullet_client)  # both hinges at small random angles
            # Turn the first pole down; the second hinge is relative, so it keeps hanging too.
            self.j1.reset_current_position(math.pi + self.j1.get_position(), 0)

    class InvertedDoublePendulumSwingupBulletEnv(base_env):
        def __init__(self):
            self.robot = InvertedDoublePendulumSwingup()
            mjcf_env.__init__(self, self.robot)
            self.stateId = -1

        def step(self, a):
            state, _, _, info = super().step(a)  # physics; its balance reward/done do not apply
            self.rewards = [swingup_reward(self.robot)]
            return state, self.rewards[0], False, info

    return InvertedDoublePendulumSwingupBulletEnv


def swingup_reward(robot: Any) -> float:
    """cos θ1 + cos θ2 with θ1, θ2 the poles' angles from upright: θ2 = hinge + hinge2, because
    hinge2 is measured relative to the first pole. −2 hanging down, +2 balanced upright."""
    theta1 = robot.j1.get_position()
    return float(math.cos(theta1) + math.cos(theta1 + robot.j2.get_position()))


def load_classes() -> dict[str, Any]:
    """Class name -> pybullet_envs env class (plus the new double swing-up); imported once."""
    global _CLASSES
    with _LOCK:
        if _CLASSES is None:
            _CLASSES = _import_classes()
        return _CLASSES


def _import_classes() -> dict[str, Any]:
    # Real dependencies first, so only pybullet_envs' own modules load inside the swap.
    import gymnasium.spaces  # noqa: F401
    import pybullet_data  # noqa: F401
    with quiet_native_output():  # importing pybullet prints its build time
        from pybullet_utils import bullet_client  # noqa: F401

    spec = importlib.util.find_spec("pybullet_envs")  # locates the folder, runs nothing
    if spec is None or spec.origin is None:
        raise ImportError("pybullet is installed without pybullet_envs")
    with _isolated_imports(os.path.dirname(spec.origin)):
        modules = [importlib.import_module(m) for m in _ENV_MODULES]
        pendula = sys.modules["robot_pendula"]
    classes = {k: v for m in modules for k, v in vars(m).items() if k.endswith("BulletEnv")}
    classes["InvertedDoublePendulumSwingupBulletEnv"] = _double_pendulum_swingup(
        classes["InvertedDoublePendulumBulletEnv"], pendula.InvertedDoublePendulum,
        vars(modules[1])["MJCFBaseBulletEnv"])
    return classes
