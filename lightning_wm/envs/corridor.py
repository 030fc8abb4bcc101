"""A tiny deterministic corridor: the cheap task every test and the fake suite run on.

The agent starts in cell 0 of ``length`` cells; action 1 moves right, 0 left. Reaching the last
cell pays +1 and ends the episode; every other step costs ``step_cost``. ``slip`` flips the chosen
action with that probability; ``invert`` negates the one-hot observation (the "inverse visuals"
idea of the maze suite, in miniature). The optimal return is ``1 - (length - 2) * step_cost``.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, length: int = 8, slip: float = 0.0, invert: bool = False,
                 step_cost: float = 0.01, max_steps: int | None = None) -> None:
        if length < 2:
            raise ValueError("length must be at least 2")
        if not 0.0 <= slip <= 1.0:
            raise ValueError("slip must be in [0, 1]")
        self.length, self.slip, self.invert, self.step_cost = length, slip, invert, step_cost
        self.max_steps = max_steps or 4 * length
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (length,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos = 0
        self.t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, np.float32)
        obs[self.pos] = -1.0 if self.invert else 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self._obs(), {}

    def step(self, action):
        action = int(action)
        if self.slip and self.np_random.random() < self.slip:
            action = 1 - action
        self.pos = int(np.clip(self.pos + (1 if action == 1 else -1), 0, self.length - 1))
        self.t += 1
        terminated = self.pos == self.length - 1
        reward = 1.0 if terminated else -self.step_cost
        truncated = not terminated and self.t >= self.max_steps
        return self._obs(), reward, terminated, truncated, {}
