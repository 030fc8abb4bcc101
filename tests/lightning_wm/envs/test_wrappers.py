"""Padding through ``make_env``'s generic options, and PadSpaces on image observations."""
from __future__ import annotations

import numpy as np
import pytest

from lightning_wm.envs import make_env
from lightning_wm.envs.wrappers import PadSpaces


def test_make_env_pads_observation_and_action():
    env = make_env("point", {"pad_obs": 10, "pad_action": 5})
    assert isinstance(env, PadSpaces)
    assert env.observation_space.shape == (10,) and env.action_space.shape == (5,)
    obs, _ = env.reset(seed=0)
    own = env.unwrapped.observation_space.shape[0]
    assert obs.shape == (10,) and np.all(obs[own:] == 0)
    # the extra action dimensions never reach the env
    obs2, *_ = env.step(np.array([0.5] * env.unwrapped.action_space.shape[0] + [9.0] * (5 - env.unwrapped.action_space.shape[0]), np.float32))
    assert obs2.shape == (10,)


def test_make_env_without_padding_is_the_bare_env():
    assert not isinstance(make_env("point", {}), PadSpaces)
    with pytest.raises(ValueError, match="obs_dim 1 < the env's"):
        make_env("point", {"pad_obs": 1})


def test_images_pass_through_untouched_when_only_actions_are_padded():
    env = PadSpaces(make_env("point", {"image": True}), None, 6)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (3, 64, 64) and obs.dtype == np.uint8
    obs, *_ = env.step(np.zeros(6, np.float32))
    assert obs.shape == (3, 64, 64)
