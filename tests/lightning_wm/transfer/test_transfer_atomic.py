"""Transfer callbacks check every address and shape before they change anything (all or nothing).

A failing transfer must leave the target agent bit-identical (parameters, buffers, requires_grad
flags, gradients) and must not draw random numbers; modular transfer re-initialises the actor and
the transition's action input, so a source with another action count transfers the rest.
"""
import pytest
import torch

from lightning_wm.agents.dreamer import DreamerAgent
from lightning_wm.checkpoints import seal
from lightning_wm.components import UnknownComponentError
from lightning_wm.transfer.component import (
    MODULAR_DEFAULT,
    FractionalTransfer,
    LoadComponents,
    ModularTransfer,
    ResetComponents,
)

OBS = (5,)
#: parameters whose shape depends on the action count in a Dreamer agent
ACTION_DEPENDENT = ("components.transition.action_input.", "components.actor.out.")


def _dreamer(seed: int, actions: int) -> DreamerAgent:
    torch.manual_seed(seed)
    return DreamerAgent(OBS, actions, size="tiny")


def _save(state: dict, path) -> str:
    torch.save({"state_dict": state}, path)
    seal(path)  # a source is read only with a sidecar matching its digest
    return str(path)


def _snapshot(agent) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in agent.state_dict().items()},
        "requires_grad": {n: p.requires_grad for n, p in agent.named_parameters()},
        "grad": {n: None if p.grad is None else p.grad.clone()
                 for n, p in agent.named_parameters()},
        "rng": torch.get_rng_state(),
    }


def _assert_same(a: dict, b: dict) -> None:
    assert a["state"].keys() == b["state"].keys()
    changed = [k for k in a["state"] if not torch.equal(a["state"][k], b["state"][k])]
    assert not changed, f"changed tensors: {changed}"
    assert a["requires_grad"] == b["requires_grad"]
    assert a["grad"].keys() == b["grad"].keys()
    for k in a["grad"]:
        ga, gb = a["grad"][k], b["grad"][k]
        assert (ga is None and gb is None) or (ga is not None and gb is not None
                                               and torch.equal(ga, gb)), k
    assert torch.equal(a["rng"], b["rng"]), "torch RNG state differs (random numbers drawn)"


def _target(seed: int = 2, actions: int = 3) -> DreamerAgent:
    agent = _dreamer(seed, actions)
    for p in agent.parameters():  # a stale gradient must survive a failed freeze too
        p.grad = torch.full_like(p, 0.5)
    return agent


def _assert_fails_untouched(callback, agent, error, match) -> None:
    torch.manual_seed(123)
    before = _snapshot(agent)
    with pytest.raises(error, match=match):
        callback.apply(agent)
    _assert_same(_snapshot(agent), before)


@pytest.fixture(scope="module")
def source8():
    return _dreamer(1, 8)


@pytest.fixture
def path8(source8, tmp_path):
    return _save(source8.state_dict(), tmp_path / "source8.ckpt")


@pytest.fixture
def path3_like8(source8, tmp_path):
    """A 3-action source equal to ``source8`` in every parameter whose shape allows it."""
    like = _dreamer(5, 3)
    state = like.state_dict()
    for key, value in source8.state_dict().items():
        if key.startswith(ACTION_DEPENDENT):
            assert value.shape != state[key].shape, key
        else:
            state[key] = value.clone()
    return _save(state, tmp_path / "source3.ckpt")


# -- (1) modular transfer across action counts ---------------------------------------------
@pytest.mark.parametrize("spec", [
    "default",
    "full",
    {"*": "fractional", "transition.action_input": "random", "actor": "random"},
    {"*": "full", "actor": "random", "transition.action_input": "random"},
])
def test_modular_from_more_actions_transfers_the_rest(spec, source8, path8, path3_like8):
    """8-action source -> unpadded 3-action target: what depends on the action count is fresh,
    everything else exactly what a 3-action source with the same weights gives, same RNG use."""
    got, ref = _target(), _target()
    before = _snapshot(got)
    torch.manual_seed(7)
    ModularTransfer(path8, spec).apply(got)
    after_got = _snapshot(got)
    torch.manual_seed(7)
    ModularTransfer(path3_like8, spec).apply(ref)
    _assert_same(after_got, _snapshot(ref))  # weights, flags, grads and the RNG state after

    state, src = got.state_dict(), source8.state_dict()
    w = state["components.transition.action_input.weight"]
    assert w.shape == (16, 3)
    assert not torch.equal(w, before["state"]["components.transition.action_input.weight"])
    assert not torch.equal(state["components.actor.out.weight"],
                           before["state"]["components.actor.out.weight"])
    if not isinstance(spec, dict) or spec.get("*") == "full":
        for name in ("encoder", "representation", "decoder"):
            for key in [k for k in state if k.startswith(f"components.{name}.")]:
                assert torch.equal(state[key], src[key]), key
        for key in ("components.transition.cell.weight_ih",
                    "components.transition.state_input.weight"):
            assert torch.equal(state[key], src[key]), key


def test_modular_copying_action_weights_fails_untouched(path8):
    """Where the spec copies an action-dependent part, 8 -> 3 actions is an error, raised before
    anything changes: here the whole transition after the encoder, and the actor fractionally."""
    _assert_fails_untouched(
        ModularTransfer(path8, {"encoder": "full", "transition": "full"}), _target(),
        ValueError, r"'transition\.action_input\.weight': target \(16, 3\), source \(16, 8\)")
    _assert_fails_untouched(
        ModularTransfer(path8, {**MODULAR_DEFAULT, "encoder": "frozen", "actor": "fractional"}),
        _target(), ValueError, r"'actor\.out\.weight': target \(6, 16\), source \(16, 16\)")


def test_load_components_across_action_counts_fails_untouched(path8):
    _assert_fails_untouched(
        LoadComponents(path8, ["encoder", "representation", "transition"]), _target(),
        ValueError, r"'transition\.action_input\.weight': target \(16, 3\), source \(16, 8\)")


# -- (2) one bad parameter in the last component touched -----------------------------------
def _broken_source(tmp_path, key: str, how: str) -> str:
    state = _dreamer(1, 3).state_dict()
    if how == "shape":
        state[f"components.{key}"] = torch.zeros(3, *state[f"components.{key}"].shape[1:])
    else:
        del state[f"components.{key}"]
    return _save(state, tmp_path / "broken.ckpt")


# (callback, the parameter in the last address it touches, the target's shape of it)
LAST = {
    "load": (lambda p: LoadComponents(p, ["encoder", "transition", "reward", "value"]),
             "value.out.bias", (1,)),
    "fractional": (lambda p: FractionalTransfer(p, ["decoder", "reward", "value"]),
                   "value.out.weight", (1, 16)),
    # plan order: encoder .. value, actor (random), transition.action_input (random),
    # reward.out, value.out (fractional): the mismatch comes after two re-inits would have drawn
    "modular": (lambda p: ModularTransfer(p, {**MODULAR_DEFAULT, "encoder": "frozen"}),
                "value.out.bias", (1,)),
    "modular_glob": (lambda p: ModularTransfer(p, {"actor": "random", "*": "full"}),
                     "actor.out.bias", (6,)),
}


@pytest.mark.parametrize("name", sorted(LAST))
def test_mismatch_in_last_component_leaves_target_untouched(name, tmp_path):
    make, key, shape = LAST[name]
    path = _broken_source(tmp_path, key, "shape")
    escaped = key.replace(".", r"\.")
    shape_re = str(shape).replace("(", r"\(").replace(")", r"\)")
    _assert_fails_untouched(make(path), _target(), ValueError,
                            rf"'{escaped}': target {shape_re}, source \(3")


@pytest.mark.parametrize("name", sorted(LAST))
def test_missing_parameter_in_last_component_leaves_target_untouched(name, tmp_path):
    make, key, _ = LAST[name]
    path = _broken_source(tmp_path, key, "missing")
    _assert_fails_untouched(make(path), _target(), KeyError, key.replace(".", r"\."))


def test_source_without_a_component_leaves_target_untouched(tmp_path):
    state = {k: v for k, v in _dreamer(1, 3).state_dict().items()
             if not k.startswith("components.value.")}
    path = _save(state, tmp_path / "novalue.ckpt")
    _assert_fails_untouched(ModularTransfer(path, "default"), _target(), KeyError, "'value")


def test_a_wholly_fresh_address_needs_no_source(tmp_path):
    """``actor`` is copied by "*" and then re-initialised: the source need not hold it."""
    state = {k: v for k, v in _dreamer(1, 8).state_dict().items()
             if not k.startswith("components.actor.")}
    path = _save(state, tmp_path / "noactor.ckpt")
    agent = _target()
    ModularTransfer(path, {"*": "full", "actor": "random",
                           "transition.action_input": "random"}).apply(agent)
    got = agent.state_dict()
    assert torch.equal(got["components.reward.out.weight"], state["components.reward.out.weight"])


# -- (3) patterns that match nothing -------------------------------------------------------
UNMATCHED = {
    "load": lambda p: LoadComponents(p, ["encoder", "reward", "q"]),
    "fractional": lambda p: FractionalTransfer(p, ["reward", "rew*.nothing"]),
    "modular": lambda p: ModularTransfer(p, {"encoder": "frozen", "actor": "random",
                                             "transition.action": "random"}),
    "reset": lambda p: ResetComponents(["actor", "reward.out", "discount"]),
}


@pytest.mark.parametrize("name", sorted(UNMATCHED))
def test_unmatched_pattern_raises_before_anything_changes(name, tmp_path):
    path = _save(_dreamer(1, 3).state_dict(), tmp_path / "source.ckpt")
    _assert_fails_untouched(UNMATCHED[name](path), _target(), UnknownComponentError,
                            r"q|rew\*\.nothing|transition\.action|discount")
