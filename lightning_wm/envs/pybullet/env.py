"""The gymnasium adapter around one pybullet_envs task (suites pybullet_ftl / pybullet_mmtl, and
the Reacher arm for REPAINT-style transfer).

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

Reacher (``reacher``): pybullet_envs' two-link arm reaching a random target in a flat ±0.3 m
arena, seen from above. It has no step limit of its own (gym registered it with 150 steps); our
``max_steps`` bounds it, e.g. ``max_steps=150, action_repeat=1``.

Reward variants (``reward``) turn one task into a family of teacher/student tasks, as in Tao,
Genc, Chung, Sun and Mallya, "REPAINT: Knowledge Transfer in Deep Reinforcement Learning", ICML,
2021: a teacher learns on a source reward, a student on the target one. Every task has
``default`` (pybullet_envs' own reward); the others are declared per task in ``Task.rewards``.
Reacher has ``mirror`` (the same reward structure, but the goal is the target
reflected through the arena centre: a *different* source task) and ``effort`` (ten times the
electricity cost: the same goal reached slowly and economically, a *similar* source task); see
:func:`mirrored_potential` and :func:`reacher_reward`.
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
    rewards: tuple[str, ...] = ("default",)  # the accepted ``reward`` variants, default first
    # (robot part, RGBA) recolourings for the camera, applied after every scene load; they change
    # nothing but pixels
    colours: tuple[tuple[str, tuple[float, float, float, float]], ...] = ()
    # (robot part, radius, RGBA): a visual-only sphere (no mass, no collision shape) put on a part
    # that never moves in an episode at every scene load, so a part too small for the camera shows
    markers: tuple[tuple[str, float, tuple[float, float, float, float]], ...] = ()
    # the task draws its goal's coordinates first at every reset (``goal`` may fix them)
    goal_dims: int = 0


_FOLLOW = Camera(distance=2.5, pitch=-20.0, follow=True)  # side view: the walkers run along +x
TASKS: dict[str, Task] = {
    "halfcheetah": Task("HalfCheetahBulletEnv", _FOLLOW),
    "hopper": Task("HopperBulletEnv", _FOLLOW),
    "walker2d": Task("Walker2DBulletEnv", _FOLLOW),
    "ant": Task("AntBulletEnv", _FOLLOW),
    # Fixed cameras on the rail's centre: the rail (±1 m) and the poles at any angle stay in view
    # except when the cart is near an end of the rail with the poles sideways.
    "pendulum_swingup": Task("InvertedPendulumSwingupBulletEnv", Camera(distance=2.8, pitch=0.0)),
    # the pole starts upright and the episode ends when it falls: the cheap task on which the
    # PPO agent shows it learns (pybullet_repaint's nightly gate)
    "pendulum_balance": Task("InvertedPendulumBulletEnv", Camera(distance=2.8, pitch=0.0)),
    "double_pendulum_swingup": Task("InvertedDoublePendulumSwingupBulletEnv",
                                    Camera(distance=3.0, pitch=0.0)),
    # Straight down on the arena's centre (pitch -90 exactly is a degenerate view matrix), +x to
    # the right and +y up: the ±0.3 m walls just fit, so the arm (reach 0.21 m) and the target
    # (±0.27 m) are always seen. pybullet's MJCF load drops the file's colours, leaving the
    # target and the first link green on the green floor: they are repainted to stand out, and
    # the target (0.9 cm radius, under 2 pixels at 64×64, sometimes lost between pixels) gets a
    # 2 cm marker (gravity is off and nothing drives or touches the target: it stays put).
    "reacher": Task("ReacherBulletEnv", Camera(distance=0.56, pitch=-89.9),
                    rewards=("default", "mirror", "effort"),
                    colours=(("target", (0.9, 0.1, 0.1, 1.0)), ("body0", (0.28, 0.52, 0.93, 1.0)),
                             ("body1", (0.28, 0.52, 0.93, 1.0)),
                             ("fingertip", (0.95, 0.76, 0.05, 1.0))),
                    markers=(("target", 0.02, (0.9, 0.1, 0.1, 1.0)),), goal_dims=2),
}
SIM_DT = 0.0165  # seconds per env step in every task above (pybullet_envs' scenes)

#: electricity cost multiplier of Reacher's ``effort`` variant
EFFORT_ELECTRICITY_SCALE = 10.0


def reacher_reward(progress: float, electricity: float, stuck_joint: float,
                   electricity_scale: float = 1.0) -> float:
    """pybullet_envs' Reacher reward from its three terms (potential progress, electricity cost,
    stuck-joint cost), summed the way its ``step`` sums them, so ``electricity_scale=1`` gives
    its reward bit for bit. The scale exists for the ``effort`` variant: weighting the (negative)
    electricity cost up keeps the goal but favours slow, economical reaching, a source task
    *similar* to the default one."""
    return sum([float(progress), float(electricity_scale * electricity), float(stuck_joint)])


def mirrored_potential(fingertip: Any, target: Any) -> float:
    """Reacher's potential, −100 × the fingertip's distance to a goal, with the goal being the
    target reflected through the arena centre ((x, y, z) -> (−x, −y, z)). It exists for the
    ``mirror`` variant: the same robot, costs and observations, but progress is rewarded towards
    another goal region, a source task *different* from the default one (the observation still
    shows the real target, so the goal is still a known function of it)."""
    tx, ty, tz = (float(v) for v in target)
    goal = np.array([-tx, -ty, tz])
    return float(-100.0 * np.linalg.norm(np.asarray(fingertip, np.float64) - goal))


class FixedFirstDraws:
    """A generator whose first ``len(values)`` ``uniform`` draws of an episode are ``values``.

    pybullet_envs' Reacher draws its target's x and y first at every reset, then the arm's
    joints; this fixes the target and leaves every later draw as the wrapped generator makes it
    (each fixed draw still consumes one), so an episode differs from the default one by the
    target only."""

    def __init__(self, rng: np.random.Generator, values: tuple[float, ...]) -> None:
        self._rng, self._values, self._used = rng, tuple(float(v) for v in values), 0

    def uniform(self, *args: Any, **kwargs: Any) -> Any:
        drawn = self._rng.uniform(*args, **kwargs)
        if self._used < len(self._values):
            self._used += 1
            return self._values[self._used - 1]
        return drawn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rng, name)


class PyBulletEnv(gym.Env):
    """A pybullet_envs task as a gymnasium env; see the module docstring for the protocol.

    ``reward`` picks a reward variant of the task (``Task.rewards``): ``"default"`` is
    pybullet_envs' own reward; Reacher also has ``"mirror"`` (progress towards the target reflected
    through the arena centre) and ``"effort"`` (ten times the electricity cost), the source tasks
    of a REPAINT transfer suite (Tao et al., "REPAINT: Knowledge Transfer in Deep Reinforcement
    Learning", 2021). Variant rewards are summed over ``action_repeat`` like the default one.

    ``goal`` fixes the goal a task would draw at every reset (Reacher: the target's ``[x, y]``,
    each within ±0.27 m): a CPU-sized Reacher whose policy needs no goal generalisation."""

    def __init__(self, task: str, obs: str = "pixels", action_repeat: int = 2,
                 max_steps: int = 1000, size: int = 64, reward: str = "default",
                 goal: tuple[float, ...] | list[float] | None = None) -> None:
        if task not in TASKS:
            raise KeyError(f"unknown pybullet task '{task}' (known: {sorted(TASKS)})")
        if obs not in OBS_KINDS:
            raise ValueError(f"obs must be one of {OBS_KINDS}, not {obs!r}")
        if action_repeat < 1 or max_steps < 1 or size < 1:
            raise ValueError("action_repeat, max_steps and size must be positive")
        if reward not in TASKS[task].rewards:
            raise ValueError(f"pybullet task '{task}' has no reward variant {reward!r} "
                             f"(accepted: {list(TASKS[task].rewards)})")
        if goal is not None:
            dims = TASKS[task].goal_dims
            if len(goal) != dims or dims == 0 or not all(abs(float(g)) <= 0.27 for g in goal):
                raise ValueError(f"pybullet task '{task}': goal must be "
                                 + (f"{dims} coordinates within ±0.27, got {list(goal)!r}" if dims
                                    else "left out (the task draws no goal)"))
            goal = tuple(float(g) for g in goal)
        self.goal = goal
        self._config = dict(task=task, obs=obs, action_repeat=action_repeat,
                            max_steps=max_steps, size=size, reward=reward, goal=goal)
        self.task_name, self._task, self.obs_kind, self.size = task, TASKS[task], obs, size
        self.reward_variant = reward
        self._potential: float | None = None  # the variant's own reward potential (mirror)
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
        if self.goal is not None:
            inner.robot.np_random = FixedFirstDraws(self.np_random, self.goal)
        return inner

    def _paint(self) -> None:
        """Apply the task's recolourings and markers to the freshly loaded scene."""
        parts = self._inner.robot.parts
        for name, rgba in self._task.colours:
            part = parts[name]
            self._client.changeVisualShape(part.bodies[part.bodyIndex], part.bodyPartIndex,
                                           rgbaColor=rgba)
        for name, radius, rgba in self._task.markers:
            shape = self._client.createVisualShape(self._pb.GEOM_SPHERE, radius=radius,
                                                   rgbaColor=rgba)
            self._client.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=-1,
                                         baseVisualShapeIndex=shape,
                                         basePosition=list(parts[name].pose().xyz()))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._inner = self._build()
        state = self._inner.reset()
        self._paint()
        self._steps = 0
        self._potential = self._variant_potential()
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
            total += self._variant_reward(float(reward))
            self._steps += 1
            if done:
                terminated = True
                break
        truncated = not terminated and self._steps >= self.max_steps
        return self._observe(state), total, terminated, truncated, {"env_steps": self._steps}

    def _variant_potential(self) -> float | None:
        """The potential the variant keeps itself (``mirror``), from the simulator as it is now.
        It reads part poses the way pybullet_envs' own potential does (pybullet's link positions
        as of the start of the last simulator step, a step behind the joints), so ``mirror`` and
        ``default`` differ only in the goal."""
        if self.reward_variant != "mirror":
            return None
        robot = self._inner.robot
        return mirrored_potential(robot.fingertip.pose().xyz(), robot.target.pose().xyz())

    def _variant_reward(self, reward: float) -> float:
        """The chosen variant's reward for the simulator step just taken, whose pybullet_envs
        reward is ``reward``. Reacher's variants reuse its step's terms ``rewards`` =
        [progress, electricity, stuck joint]."""
        if self.reward_variant == "default":
            return reward
        progress, electricity, stuck = self._inner.rewards
        if self.reward_variant == "effort":
            return reacher_reward(progress, electricity, stuck, EFFORT_ELECTRICITY_SCALE)
        if self.reward_variant == "mirror":
            old, self._potential = self._potential, self._variant_potential()
            return reacher_reward(self._potential - old, electricity, stuck)
        raise AssertionError(f"reward variant {self.reward_variant!r} has no implementation")

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
        Python-side fields the old envs keep between steps (reward potential, foot contacts...)
        and the reward variant's own potential."""
        state: dict[str, Any] = {"config": self._config, "rng": self._np_random,
                                 "rng_seed": self._np_random_seed, "sim": None}
        if self._inner is not None:
            state["sim"] = {
                "bullet": self._save_bullet(), "steps": self._steps,
                "variant_potential": self._potential,
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
            self._paint()
            self._load_bullet(sim["bullet"])
            vars(self._inner).update(sim["env"])
            vars(self._inner.robot).update(sim["robot"])
            self._steps = sim["steps"]
            self._potential = sim["variant_potential"]
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
