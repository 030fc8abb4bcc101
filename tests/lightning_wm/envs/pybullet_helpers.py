"""Helpers the PyBullet adapter tests share: seeded random actions, a recorded rollout, and an
exact comparison of two rollouts."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


def actions(env: gym.Env, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uniform actions in [-1, 1] of ``env``'s action shape, from ``seed``."""
    shape = (n,) + env.action_space.shape
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def rollout(env: gym.Env, acts: np.ndarray) -> list[tuple]:
    """(obs, reward, terminated, truncated) per step, until ``acts`` or the episode ends."""
    out = []
    for a in acts:
        obs, reward, terminated, truncated, _ = env.step(a)
        out.append((obs.copy(), reward, terminated, truncated))
        if terminated or truncated:
            break
    return out


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    """Two rollouts with bit-identical observations and equal rewards and flags."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:]
