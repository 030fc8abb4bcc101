"""The torch-free agent tables (:mod:`lightning_wm.agents.configs`) equal the agents they
describe."""
from __future__ import annotations

import inspect

import pytest

from lightning_wm.agents import configs, dreamer, dreamer_v2
from lightning_wm.agents.crar import CRARAgent
from lightning_wm.agents.dreamer import DreamerAgent
from lightning_wm.agents.dreamer_v2 import DreamerV2Agent
from lightning_wm.agents.ppo import PPOAgent
from lightning_wm.agents.tiny_q import TinyQAgent


def _keywords(receiver, supplied: tuple[str, ...]) -> set[str]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(receiver).parameters
    return {n for n, p in params.items() if p.kind in kinds} - set(supplied)


@pytest.mark.parametrize("table, cls, supplied", [
    (configs.TINY_Q_OPTIONS, TinyQAgent, ("obs_dim", "action_dim")),
    (configs.CRAR_OPTIONS, CRARAgent, ("obs_shape", "action_dim")),
    (configs.PPO_OPTIONS, PPOAgent, ("obs_shape", "action_dim", "discrete")),
])
def test_keyword_tables_equal_the_constructors(table, cls, supplied):
    assert len(set(table)) == len(table)
    assert set(table) == _keywords(cls, supplied)


@pytest.mark.parametrize("module, agent", [(dreamer, DreamerAgent), (dreamer_v2, DreamerV2Agent)])
def test_dreamer_presets_are_the_agents_own(module, agent):
    assert inspect.signature(agent).parameters["size"].default == configs.DEFAULT_SIZE
    recipe = module.RECIPE
    assert recipe.defaults is module.DEFAULTS and recipe.sizes is module.SIZES
    for size in recipe.sizes:
        assert module.resolve_config(size, {}) == recipe.resolve(size, {})


def test_the_tables_resolve_with_the_agents_messages():
    with pytest.raises(TypeError, match=r"unknown DreamerV2 option\(s\) \['bogus'\]"):
        configs.resolve_dreamer_v2("tiny", {"bogus": 1})
    with pytest.raises(ValueError, match="actor_grad must be"):
        dreamer_v2.RECIPE.resolve("tiny", {"actor_grad": "both"})
    with pytest.raises(ValueError, match="size must be one of"):
        configs.resolve_dreamer("huge", {})
