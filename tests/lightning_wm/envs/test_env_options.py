"""The option table suites are checked against: equal to what each env's constructor takes, and
misspelt options fail naming the key and the accepted ones, before any env is built."""
from __future__ import annotations

import inspect

import pytest

from lightning_wm.envs import (ENV_OPTIONS, ENVS, PAD_OPTIONS, PYBULLET_TASKS, check_env_options,
                               env_receiver, make_env)
from lightning_wm.envs.atari import AtariEnv
from lightning_wm.envs.mario import MarioEnv
from lightning_wm.envs.pybullet import PyBulletEnv
from lightning_wm.options import UnknownOptionsError


def _keyword_names(cls, supplied=()) -> set[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(cls).parameters
    return {n for n, p in params.items() if p.kind in kinds} - set(supplied)


def _constructor(env_id: str):
    """The class that finally receives an env id's options (the lazy adapters' real ones)."""
    return env_receiver(env_id), ("task",) if env_id in PYBULLET_TASKS else ()


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


def test_option_values_are_checked_against_the_constructor_types():
    """YAML writes bools, numbers, strings and lists; a bool is not a count, a string not a
    number, whatever Python's own coercions would make of them."""
    from lightning_wm.envs.corridor import Corridor
    from lightning_wm.envs.point import PointMass
    from lightning_wm.options import OptionTypeError, check_option_types, declared_types

    corridor, point = declared_types(Corridor), declared_types(PointMass)
    check_option_types("env 'corridor'", corridor,
                       {"length": 8, "slip": 0, "invert": True, "max_steps": None})
    check_option_types("env 'point'", point, {"goal": [1, 0.5], "dim": 1})
    for types, bad in [(corridor, {"length": True}), (corridor, {"length": "8"}),
                       (corridor, {"length": 8.0}), (corridor, {"slip": "0.1"}),
                       (corridor, {"invert": 1}), (point, {"goal": "up"}),
                       (point, {"goal": [1, "x"]})]:
        with pytest.raises(OptionTypeError) as info:
            check_option_types("env", types, bad)
        assert f"option '{next(iter(bad))}' expects" in str(info.value)


@pytest.mark.parametrize("env_id", ["halfcheetah", "mario", "atari"])
def test_lazy_adapters_option_types_come_from_their_classes(env_id):
    from lightning_wm.options import declared_types

    cls, supplied = _constructor(env_id)
    assert ENV_OPTIONS[env_id] - set(PAD_OPTIONS) <= set(declared_types(cls)) - set(supplied)


def test_lazy_env_ids_name_their_adapter_classes():
    assert env_receiver("hopper") is PyBulletEnv and env_receiver("mario") is MarioEnv
    assert env_receiver("atari") is AtariEnv and env_receiver("corridor") is ENVS["corridor"]
