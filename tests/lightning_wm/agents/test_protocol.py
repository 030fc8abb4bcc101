"""Every registered agent implements the declared protocol, and declares its optional powers."""
from __future__ import annotations

import pytest
import torch

from lightning_wm.agents import AGENTS, make_agent
from lightning_wm.agents.protocol import (AgentProtocol, DataNeeds, Embeds, ExplicitPolicy,
                                          MetaRewards, Reconstructs, require)

#: agent -> (obs shape, action width, discrete, config, powers it must declare)
CASES = {
    "tiny_q": ((8,), 2, True, {}, set()),
    "crar": ((8, 8), 4, True, {}, {Embeds}),
    "dreamer": ((4,), 2, False, {"size": "tiny"},
                {Reconstructs, MetaRewards, ExplicitPolicy}),
    "dreamer_v2": ((4,), 3, True, {"size": "tiny"},
                   {Reconstructs, MetaRewards, ExplicitPolicy}),
    "ppo": ((4,), 2, False, {}, {ExplicitPolicy}),
    "efficientzero": ((4,), 2, True, {"size": "tiny"}, set()),
}


def test_every_registered_agent_is_covered():
    assert set(CASES) == set(AGENTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_agent_implements_the_protocol(name):
    obs, action_dim, discrete, config, powers = CASES[name]
    agent = make_agent(name, obs, action_dim, discrete, config)
    assert isinstance(agent, AgentProtocol)
    needs = agent.data_needs()
    assert isinstance(needs, DataNeeds) and needs.sequence_length >= 2
    groups = agent.optimiser_groups()
    # every component is trained by exactly one optimiser group
    owned = [c for names in groups.values() for c in names]
    assert sorted(owned) == sorted(agent.components)
    declared = (Embeds, Reconstructs, MetaRewards, ExplicitPolicy)
    assert {p for p in declared if isinstance(agent, p)} == powers
    state = agent.initial_state(3)
    action, _ = agent.act(torch.zeros(3, *obs), state, explore=True)
    assert action.shape == (3, action_dim)


def test_require_names_the_missing_power():
    agent = make_agent("tiny_q", (8,), 2, True)
    with pytest.raises(TypeError, match="declares Reconstructs; TinyQAgent does not"):
        require(agent, Reconstructs, "the reconstruction diagnostic")
