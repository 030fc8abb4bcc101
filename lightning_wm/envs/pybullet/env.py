"""The gymnasium adapter around one pybullet_envs task (suites pybullet_ftl / pybullet_mmtl).

Protocol (Sasso, Sabatelli and Wiering, "Multi-Source Transfer Learning for Deep Model-Based
Reinforcement Learning", TMLR, 2023, §5, on the Dreamer code base): 64×64 RGB observations,
action repeat 2 and episodes of 1000 *environment* steps, i.e. 500 agent decisions. Here
``max_steps`` counts simulator steps (env steps; each agent decision is ``action_repeat`` of
them), so the defaults give exactly that; the last decision of an episode is cut short if
``max_steps`` is not a multiple of ``action_repeat``.
Rewards are summed over the repeated steps; ``terminated`` is the task's own end (a locomotion
robot that falls over), ``truncated`` the step limit; the two are never both true.

Observations: ``obs="pixels"`` gives ``uint8 [3, size, size]`` (channels first, the layout the
conv encoder takes); ``obs="proprio"`` the task's float32 state vector. Actions: Box in [-1, 1].

Each instance owns its own pybullet DIRECT client, so many coexist in a process. Every reset
rebuilds the scene from scratch (about 10 ms): pybullet_envs' own ``restoreState`` reset does not
reproduce a first reset exactly, and this makes ``reset(seed=s)`` give the same episode whatever
came before. Pickling captures the running simulator (see ``__getstate__``).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

OBS_KINDS = ("pixels", "proprio")
# Dynamic Python-side state of pybullet_envs' envs and robots (read by the next step's reward or
# observation); everything else is rebuilt identically by a fresh reset.
_ENV_FIELDS = ("potential", "frame", "done", "reward", "rewards", "_alive", "camera_x")
_ROBOT_FIELDS = ("feet_contact", "initial_z", "joint_speeds", "joints_at_limit", "body_xyz",
                 "body_real_xyz", "body_rpy", "walk_target_theta", "walk_target_dist", "theta",
                 "pos_x", "pos_y", "camera_x")


@dataclass(frozen=True)
class Camera:
    """A camera ``distance`` m from its target, turned ``yaw``/``pitch`` degrees; ``follow``
    aims it at the robot's torso (locomotion), otherwise at the fixed ``target``."""

    distance: float
    pitch: float
    yaw: float = 0.0
    follow: bool = False
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Task:
    env_class: str  # a key of _loader.load_classes()
    camera: Camera


_FOLLOW = Camera(distance=2.5, pitch=-20.0, follow=True)  # side view: the walkers run along +x
TASKS: dict[str, Task] = {
    "halfcheetah": Task("HalfCheetahBulletEnv", _FOLLOW),
    "hopper": Task("HopperBulletEnv", _FOLLOW),
    "walker2d": Task("Walker2DBulletEnv", _FOLLOW),
    "ant": Task("AntBulletEnv", _FOLLOW),
    # Fixed cameras on the rail's centre: the rail (±1 m) and the poles at any angle stay in view
    # except when the cart is near an end of the rail with the poles sideways.
    "pendulum_swingup": Task("InvertedPendulumSwingupBulletEnv", Camera(distance=2.8, pitch=0.0)),
    "double_pendulum_swingup": Task("InvertedDoublePendulumSwingupBulletEnv",
                                    Camera(distance=3.0, pitch=0.0)),
}
SIM_DT = 0.0165  # seconds per env step in every task above (pybullet_envs' scenes)


class PyBulletEnv(gym.Env):
    """A pybullet_envs task as a gymnasium env; see the module docstring for the protocol."""

    def __init__(self, task: str, obs: str = "pixels", action_repeat: int = 2,
                 max_steps: int = 1000, size: int = 64) -> None:
        if task not in TASKS:
            raise KeyError(f"unknown pybullet task '{task}' (known: {sorted(TASKS)})")
        if obs not in OBS_KINDS:
            raise ValueError(f"obs must be one of {OBS_KINDS}, not {obs!r}")
        if action_repeat < 1 or max_steps < 1 or size < 1:
            raise ValueError("action_repeat, max_steps and size must be positive")
        self._config = dict(task=task, obs=obs, action_repeat=action_repeat,
                            max_steps=max_steps, size=size)
        self.task_name, self._task, self.obs_kind, self.size = task, TASKS[task], obs, size
        self.action_repeat, self.max_steps = action_repeat, max_steps
        self.metadata = {"render_modes": ["rgb_array"],
                         "render_fps": round(1.0 / (SIM_DT * action_repeat))}
        self.render_mode = "rgb_array"
        self._connect()
        probe = self._env_class()  # no simulation yet: just its spaces
        self.action_space = gym.spaces.Box(-1.0, 1.0, probe.action_space.shape, np.float32)
        if obs == "pixels":
            self.observation_space = gym.spaces.Box(0, 255, (3, size, size), np.uint8)
        else:
            shape = probe.observation_space.shape
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
        self._inner: Any = None  # the pybullet_envs env of the current episode
        self._steps = 0

    def _connect(self) -> None:
        # pybullet is imported here, not at module level: the env registry must import without it.
        from lightning_wm.envs.pybullet._loader import load_classes, quiet_native_output

        # its import and each connection print to fds 1/2 from C; a run's output is its own
        with quiet_native_output():
            import pybullet
            from pybullet_utils import bullet_client

            self._pb = pybullet
            self._env_class = load_classes()[self._task.env_class]
            # An explicit DIRECT client: BulletClient() would first try to join a shared-memory
            # server.
            self._client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self._projection = pybullet.computeProjectionMatrixFOV(
            fov=60.0, aspect=1.0, nearVal=0.1, farVal=100.0)

    # -- episodes ---------------------------------------------------------------------------------
    def _build(self) -> Any:
        """A fresh pybullet_envs env on our client; its reset() then loads the scene."""
        self._client.resetSimulation()
        self._client.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        inner = self._env_class()
        # Hand it our client, so its reset() neither connects nor tries shared memory.
        inner._p, inner.physicsClientId = self._client, self._client._client
        inner.ownsPhysicsClient = True  # its reset() restarts the scene only if it "owns" it
        inner.np_random = inner.robot.np_random = self.np_random  # its resets draw from our seed
        return inner

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._inner = self._build()
        state = self._inner.reset()
        self._steps = 0
        return self._observe(state), {"env_steps": 0}

    def step(self, action):
        if self._inner is None:
            raise RuntimeError("call reset() before step()")
        if self._steps >= self.max_steps:
            raise RuntimeError("the episode is over (max_steps reached); call reset()")
        a = np.clip(np.asarray(action, np.float64).reshape(self.action_space.shape), -1.0, 1.0)
        total, terminated = 0.0, False
        for _ in range(min(self.action_repeat, self.max_steps - self._steps)):
            state, reward, done, _ = self._inner.step(a)
            total += float(reward)
            self._steps += 1
            if done:
                terminated = True
                break
        truncated = not terminated and self._steps >= self.max_steps
        return self._observe(state), total, terminated, truncated, {"env_steps": self._steps}

    @property
    def env_steps(self) -> int:
        """Simulator steps taken in the current episode (``action_repeat`` per decision)."""
        return self._steps

    def _observe(self, state) -> np.ndarray:
        if self.obs_kind == "proprio":
            return np.asarray(state, np.float32)
        return np.ascontiguousarray(self.render().transpose(2, 0, 1))

    def render(self) -> np.ndarray:
        """The camera image, ``uint8 [size, size, 3]`` (gymnasium's rgb_array layout)."""
        if self._inner is None:
            raise RuntimeError("call reset() before render()")
        cam = self._task.camera
        target = list(self._inner.robot.body_real_xyz) if cam.follow else list(cam.target)
        view = self._pb.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=target, distance=cam.distance, yaw=cam.yaw, pitch=cam.pitch,
            roll=0.0, upAxisIndex=2)
        # The CPU tiny renderer works on DIRECT clients; no shadows or masks keeps it quick.
        _, _, pixels, _, _ = self._client.getCameraImage(
            self.size, self.size, view, self._projection, shadow=0,
            renderer=self._pb.ER_TINY_RENDERER, flags=self._pb.ER_NO_SEGMENTATION_MASK)
        return np.asarray(pixels, np.uint8).reshape(self.size, self.size, 4)[:, :, :3]

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None and client._client >= 0:
            client.disconnect()
        self._inner = None

    # -- pickling ---------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Config, RNG and, mid-episode, the whole simulator: pybullet's ``saveBullet`` file
        (bodies, joints, velocities and contact caches, so stepping resumes bit for bit) plus the
        Python-side fields the old envs keep between steps (reward potential, foot contacts...)."""
        state: dict[str, Any] = {"config": self._config, "rng": self._np_random,
                                 "rng_seed": self._np_random_seed, "sim": None}
        if self._inner is not None:
            state["sim"] = {
                "bullet": self._save_bullet(), "steps": self._steps,
                "env": {k: getattr(self._inner, k) for k in _ENV_FIELDS if hasattr(self._inner, k)},
                "robot": {k: getattr(self._inner.robot, k) for k in _ROBOT_FIELDS
                          if hasattr(self._inner.robot, k)}}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])
        sim = state["sim"]
        if sim is not None:
            # Rebuild the same scene (same bodies, same ids), then overwrite its dynamic state.
            self._inner = self._build()
            self._inner.reset()
            self._load_bullet(sim["bullet"])
            vars(self._inner).update(sim["env"])
            vars(self._inner.robot).update(sim["robot"])
            self._steps = sim["steps"]
        self._np_random, self._np_random_seed = state["rng"], state["rng_seed"]
        if self._inner is not None and self._np_random is not None:
            self._inner.np_random = self._inner.robot.np_random = self._np_random

    def _save_bullet(self) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:  # saveBullet only writes to a file
            path = os.path.join(tmp, "state.bullet")
            self._client.saveBullet(path)
            with open(path, "rb") as f:
                return f.read()

    def _load_bullet(self, blob: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "state.bullet")
            with open(path, "wb") as f:
                f.write(blob)
            self._client.restoreState(fileName=path)
