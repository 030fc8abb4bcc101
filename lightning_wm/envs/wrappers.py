"""Generic gymnasium wrappers shared by every suite."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


class PadSpaces(gym.Wrapper):
    """Pad a flat observation to ``obs_dim`` and widen a Box action space to ``action_dim``.

    Multi-task agents act in the largest action space of their tasks; the extra action
    dimensions are ignored here, the env only sees its own. Discrete spaces are left alone (the
    collector reads the first ``n`` entries of the action vector).
    """

    def __init__(self, env: gym.Env, obs_dim: int | None = None, action_dim: int | None = None):
        super().__init__(env)
        self._own_obs = int(np.prod(env.observation_space.shape))
        self._obs_dim = obs_dim or self._own_obs
        if self._obs_dim < self._own_obs:
            raise ValueError(f"obs_dim {self._obs_dim} < the env's {self._own_obs}")
        if obs_dim is not None:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self._obs_dim,), np.float32)
        space = env.action_space
        self._own_act = None
        if action_dim is not None and isinstance(space, gym.spaces.Box):
            self._own_act = int(np.prod(space.shape))
            if action_dim < self._own_act:
                raise ValueError(f"action_dim {action_dim} < the env's {self._own_act}")
            low = np.full(action_dim, -1.0, np.float32)
            high = np.full(action_dim, 1.0, np.float32)
            low[: self._own_act], high[: self._own_act] = space.low.ravel(), space.high.ravel()
            self.action_space = gym.spaces.Box(low, high, dtype=np.float32)

    def _pad(self, obs) -> np.ndarray:
        if self.observation_space is self.env.observation_space:  # no obs_dim: images untouched
            return obs
        flat = np.asarray(obs, np.float32).ravel()
        if len(flat) == self._obs_dim:
            return flat
        return np.concatenate([flat, np.zeros(self._obs_dim - len(flat), np.float32)])

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._pad(obs), info

    def step(self, action):
        if self._own_act is not None:
            action = np.asarray(action)[: self._own_act].reshape(self.env.action_space.shape)
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._pad(obs), reward, terminated, truncated, info
