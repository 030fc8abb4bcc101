"""check_agent_config: a config is checked as make_agent would take it, without building."""
from __future__ import annotations

import pytest

from lightning_wm.agents import AGENTS, check_agent_config, make_agent
from lightning_wm.options import UnknownOptionsError


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_agent_checks_an_empty_config_and_rejects_a_typo(name):
    check_agent_config(name, {"loss_weights": {"*": 1.0}})  # make_agent's own key, for any agent
    with pytest.raises(UnknownOptionsError) as info:
        check_agent_config(name, {"gama": 0.9})
    assert info.value.unknown == ["gama"] and "gamma" in info.value.accepted
    assert name in str(info.value)


def test_accepts_what_make_agent_builds_with():
    config = {"hidden": 8, "eps_steps": 10, "loss_weights": {"reward/*": 0.0}}
    check_agent_config("tiny_q", config)
    make_agent("tiny_q", (3,), 2, True, config)
    with pytest.raises(TypeError):  # the check and the constructor agree on a bad key
        make_agent("tiny_q", (3,), 2, True, {"hiden": 8})


def test_dreamer_values_are_checked_by_its_resolver():
    check_agent_config("dreamer", {"size": "tiny", "horizon": 3})
    with pytest.raises(ValueError, match="size must be one of"):
        check_agent_config("dreamer", {"size": "huge"})
    with pytest.raises(UnknownOptionsError, match="'discrete'"):  # a V2 option
        check_agent_config("dreamer", {"discrete": False})


def test_dreamer_v2_takes_discrete_from_the_env():
    """The builder overrides ``discrete`` with the env's; with the env unknown, a config that is
    valid for one kind of action space passes."""
    noisy = {"size": "tiny", "expl_noise": 0.3}
    check_agent_config("dreamer_v2", noisy)
    check_agent_config("dreamer_v2", noisy, discrete=False)
    with pytest.raises(ValueError, match="expl_noise"):
        check_agent_config("dreamer_v2", noisy, discrete=True)
    with pytest.raises(ValueError, match="actor_grad"):
        check_agent_config("dreamer_v2", {"actor_grad": "sideways"})


def test_unknown_agent():
    with pytest.raises(KeyError, match="unknown agent 'huge_q'"):
        check_agent_config("huge_q", {})
