"""The option table suites are checked against: equal to what each env's constructor takes, and
misspelt options fail naming the key and the accepted ones, before any env is built."""
from __future__ import annotations

import inspect

import pytest

from lightning_wm.envs import (ENV_OPTIONS, ENVS, PAD_OPTIONS, PYBULLET_TASKS, check_env_options,
                               make_env)
from lightning_wm.envs.mario import MarioEnv
from lightning_wm.envs.pybullet import PyBulletEnv
from lightning_wm.options import UnknownOptionsError


def _keyword_names(cls, supplied=()) -> set[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(cls).parameters
    return {n for n, p in params.items() if p.kind in kinds} - set(supplied)


def _constructor(env_id: str):
    """The class that finally receives an env id's options (the lazy adapters' real ones)."""
    if env_id in PYBULLET_TASKS:
        return PyBulletEnv, ("task",)
    if env_id == "mario":
        return MarioEnv, ()
    return ENVS[env_id], ()


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_table_equals_the_constructor_signature(env_id):
    cls, supplied = _constructor(env_id)
    assert ENV_OPTIONS[env_id] == _keyword_names(cls, supplied) | set(PAD_OPTIONS)


def test_every_pybullet_task_is_registered():
    from lightning_wm.envs.pybullet import TASKS
    assert set(PYBULLET_TASKS) == set(TASKS)


@pytest.mark.parametrize("env_id", ["corridor", "halfcheetah", "mario"])
def test_misspelt_option_names_key_and_accepted_options(env_id):
    with pytest.raises(UnknownOptionsError) as info:
        check_env_options(env_id, {"max_stpes": 10, "pad_obs": 4})
    err = info.value
    assert err.unknown == ["max_stpes"] and "max_steps" in err.accepted
    assert "'max_stpes'" in str(err) and "'max_steps'" in str(err) and env_id in str(err)


def test_make_env_rejects_an_unknown_option_before_building():
    with pytest.raises(UnknownOptionsError, match="lenght"):
        make_env("corridor", {"lenght": 4})
    assert make_env("corridor", {"length": 4, "pad_obs": 6}).observation_space.shape == (6,)


def test_unknown_env_id():
    with pytest.raises(KeyError, match="unknown env 'icy'"):
        check_env_options("icy", {})
