"""A point-mass "reach the goal" task: the cheap continuous-control env of tests and checks.

A point in [-1, 1]^dim (dim 1 or 2) moves by ``speed · action`` per step (actions in [-1, 1]^dim,
clipped; ``invert_actions`` negates them, a related task for transfer). Start and goal are drawn
uniformly in [-0.8, 0.8]^dim at every reset (or the goal is ``goal``). Each step pays
−‖pos − goal‖: over 50 steps in 2-D a random policy earns about −45, standing still about −43,
heading straight for the goal about −3.4. Episodes never terminate; they are truncated after
``max_steps``, like the control suites Dreamer was made for.

``discrete=True`` replaces the Box actions by 2·dim + 1 moves (stay, or a full step along one
axis), the same task for agents with discrete actions.

Observations: ``[pos, goal]`` (float32, 2·dim), or with ``image=True`` a ``[3, S, S]`` uint8
picture (S = ``image_size``, 64 for Dreamer's CNN): the point red, the goal green (1-D tasks
are drawn on the middle row).
"""
from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np


class PointMass(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, dim: int = 2, max_steps: int = 50, speed: float = 0.1, image: bool = False,
                 image_size: int = 64, goal: Sequence[float] | None = None,
                 invert_actions: bool = False, discrete: bool = False) -> None:
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2, got {dim}")
        if image and image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        self.dim, self.max_steps, self.speed = dim, int(max_steps), float(speed)
        self.image, self.image_size = image, int(image_size)
        self.fixed_goal = None if goal is None else np.asarray(goal, np.float32).reshape(dim)
        self.invert_actions = invert_actions
        if discrete:  # stay, or a full step along one axis: the cheap task of discrete agents
            moves = [np.zeros(dim, np.float32)]
            for axis in range(dim):
                for sign in (-1.0, 1.0):
                    moves.append(np.eye(dim, dtype=np.float32)[axis] * sign)
            self.moves: np.ndarray | None = np.stack(moves)
            self.action_space: gym.Space = gym.spaces.Discrete(len(moves))
        else:
            self.moves = None
            self.action_space = gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)
        if image:
            self.observation_space = gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-1.0, 1.0, (2 * dim,), np.float32)
        self.pos = np.zeros(dim, np.float32)
        self.goal = np.zeros(dim, np.float32)
        self.t = 0

    def _obs(self) -> np.ndarray:
        if not self.image:
            return np.concatenate([self.pos, self.goal]).astype(np.float32)
        return render_points(self.pos, self.goal, self.image_size)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.8, 0.8, self.dim).astype(np.float32)
        self.goal = (self.fixed_goal.copy() if self.fixed_goal is not None
                     else self.np_random.uniform(-0.8, 0.8, self.dim).astype(np.float32))
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        if self.moves is not None:
            a = self.moves[int(action)]
        else:
            a = np.clip(np.asarray(action, np.float32).reshape(self.dim), -1.0, 1.0)
        if self.invert_actions:
            a = -a
        self.pos = np.clip(self.pos + self.speed * a, -1.0, 1.0).astype(np.float32)
        self.t += 1
        reward = -float(np.linalg.norm(self.pos - self.goal))
        return self._obs(), reward, False, self.t >= self.max_steps, {}


def render_points(pos: np.ndarray, goal: np.ndarray, size: int) -> np.ndarray:
    """``[3, size, size]`` uint8: a red disc at ``pos``, a green one at ``goal`` (coordinates
    in [-1, 1]; x along columns, y along rows; a 1-D point sits on the middle row)."""
    radius = max(size / 16.0, 1.0)
    grid = np.arange(size, dtype=np.float32)

    def disc(p: np.ndarray) -> np.ndarray:
        col = (p[0] + 1.0) / 2.0 * (size - 1)
        row = (p[1] + 1.0) / 2.0 * (size - 1) if len(p) > 1 else (size - 1) / 2.0
        return (grid[:, None] - row) ** 2 + (grid[None, :] - col) ** 2 <= radius ** 2

    img = np.zeros((3, size, size), np.uint8)
    img[1][disc(goal)] = 255
    img[0][disc(pos)] = 255
    return img
