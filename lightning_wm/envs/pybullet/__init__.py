"""PyBullet tasks of the pybullet_ftl / pybullet_mmtl suites as gymnasium envs.

HalfCheetah, Hopper, Walker2D, Ant and InvertedPendulumSwingup are pybullet's own Bullet ports
(``pybullet_envs``), imported without their broken package ``__init__`` (see ``_loader``);
InvertedDoublePendulumSwingup is new: pybullet's double pendulum started hanging down and rewarded
cos θ1 + cos θ2. The adapter (``env.PyBulletEnv``) gives 64×64 uint8 CHW pixels or proprioceptive
vectors, action repeat and 1000-env-step episodes. Importing this package does not import
pybullet; creating an env does.
"""
from lightning_wm.envs.pybullet.env import OBS_KINDS, TASKS, PyBulletEnv

__all__ = ["OBS_KINDS", "TASKS", "PyBulletEnv"]
