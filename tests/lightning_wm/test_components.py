"""Component vocabulary and selection by name, dotted sub-path and glob."""
from __future__ import annotations

import pytest
from torch import nn

from lightning_wm.agents.base import Agent
from lightning_wm.components import (
    COMPONENTS,
    UnknownComponentError,
    check_vocabulary,
    parameters_of,
    select,
)
from lightning_wm.nets.heads import MLPHead


@pytest.fixture
def components():
    return nn.ModuleDict({
        "encoder": MLPHead(4, 3, 5),
        "reward": MLPHead(3, 1, 5),
        "representation": MLPHead(3, 2, 5),
        "q": MLPHead(3, 2, 5),
    })


def test_select_by_name(components):
    got = select(components, "reward")
    assert list(got) == ["reward"]
    assert got["reward"] is components["reward"]


def test_select_several_names(components):
    got = select(components, ["q", "encoder"])
    assert set(got) == {"q", "encoder"}
    assert got["q"] is components["q"] and got["encoder"] is components["encoder"]


def test_select_by_dotted_subpath(components):
    got = select(components, "reward.out")
    assert list(got) == ["reward.out"]
    assert got["reward.out"] is components["reward"].out
    deeper = select(components, "reward.hidden.0")
    assert deeper["reward.hidden.0"] is components["reward"].hidden[0]


def test_select_glob_star(components):
    got = select(components, "*")
    assert set(got) == set(components.keys())
    for name, module in got.items():
        assert module is components[name]


def test_select_glob_prefix(components):
    got = select(components, "re*")
    assert set(got) == {"reward", "representation"}


def test_select_glob_with_subpath(components):
    got = select(components, "*.out")
    assert set(got) == {f"{n}.out" for n in components}
    for name in components:
        assert got[f"{name}.out"] is components[name].out


def test_pattern_matching_nothing_names_pattern_and_components(components):
    with pytest.raises(UnknownComponentError) as info:
        select(components, "decod*")
    msg = str(info.value)
    assert "decod*" in msg
    for name in components:
        assert name in msg


def test_one_bad_pattern_among_good_ones_still_raises(components):
    with pytest.raises(UnknownComponentError, match="actor"):
        select(components, ["reward", "actor"])


def test_bad_subpath_names_available_children(components):
    with pytest.raises(UnknownComponentError) as info:
        select(components, "reward.action_input")
    msg = str(info.value)
    assert "reward.action_input" in msg
    assert "action_input" in msg
    assert "hidden" in msg and "out" in msg


def test_unknown_component_error_is_a_keyerror_with_readable_message():
    err = UnknownComponentError("plain message")
    assert isinstance(err, KeyError)
    assert str(err) == "plain message"


def test_check_vocabulary_accepts_known_names():
    check_vocabulary(COMPONENTS)  # no raise
    check_vocabulary(["encoder", "q"])


def test_check_vocabulary_rejects_unknown_names():
    with pytest.raises(UnknownComponentError) as info:
        check_vocabulary(["encoder", "policy_net", "world"])
    msg = str(info.value)
    assert "policy_net" in msg and "world" in msg


def test_agent_init_rejects_name_outside_vocabulary():
    with pytest.raises(UnknownComponentError, match="policy_net"):
        Agent({"encoder": nn.Linear(2, 2), "policy_net": nn.Linear(2, 2)})


def test_agent_init_accepts_vocabulary_names():
    agent = Agent({"encoder": nn.Linear(2, 2), "q": nn.Linear(2, 2)})
    assert set(agent.components) == {"encoder", "q"}


def _ids(params):
    return [id(p) for p in params]


def test_parameters_of_single_component(components):
    params = parameters_of(components, "reward")
    assert set(_ids(params)) == set(_ids(components["reward"].parameters()))
    assert len(params) == len(list(components["reward"].parameters()))


def test_parameters_of_overlapping_patterns_are_unique(components):
    params = parameters_of(components, ["reward", "reward.out", "re*", "*", "q.out"])
    ids = _ids(params)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(_ids(components.parameters()))
    assert len(ids) == len(list(components.parameters()))


def test_parameters_of_subpath_only(components):
    params = parameters_of(components, "reward.out")
    assert set(_ids(params)) == {id(components["reward"].out.weight), id(components["reward"].out.bias)}


def test_parameters_of_shared_parameter_counted_once():
    shared = nn.Linear(3, 3)
    comps = {"encoder": nn.Sequential(shared), "transition": nn.Sequential(shared, nn.Linear(3, 1))}
    params = parameters_of(comps, "*")
    assert len(params) == 4  # shared weight+bias once, plus the extra Linear
    assert len(set(_ids(params))) == 4


def test_parameters_of_bad_pattern_raises(components):
    with pytest.raises(UnknownComponentError):
        parameters_of(components, "nothing*")
