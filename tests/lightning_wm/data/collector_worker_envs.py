"""Envs for the env-worker tests (test_collector_workers.py), in a module of their own: a worker
process unpickles its env factory by reference and so imports the module defining it, and this one
imports neither torch nor Lightning (a test module would, costing every worker seconds to start).
"""
from __future__ import annotations

import os
import threading

import gymnasium as gym
import numpy as np

from lightning_wm.envs.corridor import Corridor


def corridor(task, length=6, slip=0.3):
    # task 1 is the inverted corridor, so stored observations reveal their task
    return Corridor(length=length, slip=slip, invert=(task == 1), step_cost=0.01)


class PidEnv(gym.Env):
    """Observes the id of the process it runs in."""
    observation_space = gym.spaces.Box(0, np.inf, (1,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([os.getpid()], np.float64), {}

    def step(self, action):
        return np.array([os.getpid()], np.float64), 0.0, False, False, {}


class Unpicklable(Corridor):
    def __init__(self, task):
        super().__init__(length=20)
        self.lock = threading.Lock()


def failing_env(task):
    raise RuntimeError("no such simulator")


class Crashing(Corridor):
    def step(self, action):
        os._exit(3)


def pendulum(task):
    from lightning_wm.envs.pybullet import PyBulletEnv
    return PyBulletEnv("pendulum_swingup", obs="pixels", size=32, max_steps=30)
