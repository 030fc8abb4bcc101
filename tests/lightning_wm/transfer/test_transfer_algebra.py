"""The weight-surgery helpers of lightning_wm.transfer.base, on plain modules."""
import copy

import pytest
import torch
from torch import nn

from lightning_wm.checkpoints import seal
from lightning_wm.transfer import (
    TransferCallback,
    copy_,
    freeze,
    load_source,
    mix_,
    reinit,
    source_state_for,
    unfreeze,
)


def _net(seed: int, hidden: int = 6) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, hidden), nn.LayerNorm(hidden), nn.Linear(hidden, 2))


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_copy_equals_source_exactly():
    target, source = _net(0), _net(1)
    copy_(target, source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_copy_keeps_parameter_objects():
    # the optimizer holds these objects, so surgery must be in place
    target = _net(0)
    before = [id(p) for p in target.parameters()]
    copy_(target, _net(1).state_dict())
    assert [id(p) for p in target.parameters()] == before


def test_reinit_xavier_weights_zero_biases():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(50, 40), nn.Conv1d(4, 8, 3), nn.GRU(5, 7), nn.LayerNorm(7))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(5.0)
    reinit(net)
    lin, conv, gru, norm = net
    bound = (6.0 / (50 + 40)) ** 0.5
    assert lin.weight.abs().max() <= bound and lin.weight.std() > bound / 4
    for bias in (lin.bias, conv.bias, gru.bias_ih_l0, gru.bias_hh_l0, norm.bias):
        assert torch.count_nonzero(bias) == 0
    assert (conv.weight != 5.0).all() and (gru.weight_hh_l0 != 5.0).all()
    assert torch.equal(norm.weight, torch.ones(7))  # LayerNorm's own fresh init


def test_reinit_is_reproducible_with_seed():
    a, b = _net(0), _net(1)
    torch.manual_seed(11)
    reinit(a)
    torch.manual_seed(11)
    reinit(b)
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value)


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5])
def test_mix_is_fresh_init_plus_fraction_of_source(fraction):
    target, source = _net(0), _net(1)
    reference = copy.deepcopy(target)
    torch.manual_seed(5)
    mix_(target, source.state_dict(), fraction)
    torch.manual_seed(5)
    reinit(reference)
    for key, value in target.named_parameters():
        expected = torch.add(reference.state_dict()[key], source.state_dict()[key], alpha=fraction)
        assert torch.equal(value, expected), key
    if fraction > 0:  # differs from both the source and the fresh init
        assert not torch.equal(target[0].weight, source[0].weight)
        assert not torch.equal(target[0].weight, reference[0].weight)


def test_mix_keeps_buffers():
    target, source = nn.BatchNorm1d(4), nn.BatchNorm1d(4)
    target.running_mean.fill_(3.0)
    source.running_mean.fill_(-1.0)
    mix_(target, source.state_dict(), 0.2)
    assert torch.equal(target.running_mean, torch.zeros(4))  # reset_parameters, not the source


def test_shape_mismatch_names_the_parameter():
    target, source = _net(0, hidden=6), _net(1, hidden=5)
    before = _params(target)
    with pytest.raises(ValueError, match=r"'0\.weight'"):
        copy_(target, source.state_dict())
    with pytest.raises(ValueError, match=r"'reward\.out\.0\.weight'"):
        mix_(target, source.state_dict(), 0.2, where="reward.out")
    for key, value in before.items():  # nothing was touched before the check failed
        assert torch.equal(target.state_dict()[key], value)


def test_missing_and_unexpected_keys_raise():
    target = _net(0)
    state = dict(_net(1).state_dict())
    del state["2.bias"]
    with pytest.raises(KeyError, match=r"2\.bias"):
        copy_(target, state)
    state = dict(_net(1).state_dict(), extra=torch.zeros(1))
    with pytest.raises(KeyError, match="extra"):
        mix_(target, state, 0.2)


def test_freeze_and_unfreeze():
    net = _net(0)
    net[0].weight.grad = torch.ones_like(net[0].weight)
    freeze({"a": net[0], "b": net[1]})
    assert [p.requires_grad for p in net.parameters()] == [False] * 4 + [True] * 2
    assert net[0].weight.grad is None
    unfreeze([net[0], net[1]])
    assert all(p.requires_grad for p in net.parameters())


def test_helpers_exposed_as_staticmethods():
    assert TransferCallback.copy_ is copy_ and TransferCallback.mix_ is mix_
    assert TransferCallback.reinit is reinit and TransferCallback.freeze is freeze


def test_load_source_and_addresses(tmp_path):
    path = tmp_path / "src.ckpt"
    torch.save({"state_dict": {
        "components.reward.hidden.0.weight": torch.ones(2, 2),
        "components.reward.out.weight": torch.full((1, 2), 2.0),
        "components.reward.out.bias": torch.zeros(1),
        "other.thing": torch.zeros(1),
    }}, path)
    seal(path)  # a source is read only with a sidecar matching its digest
    source = load_source(str(path))
    assert sorted(source) == ["reward"]
    assert sorted(source_state_for(source, "reward")) == ["hidden.0.weight", "out.bias", "out.weight"]
    out = source_state_for(source, "reward.out")
    assert sorted(out) == ["bias", "weight"] and torch.equal(out["weight"], torch.full((1, 2), 2.0))
    with pytest.raises(KeyError, match=r"src\.ckpt.*'reward\.outer'"):
        source_state_for(source, "reward.outer")  # a prefix of "out" must not match
    with pytest.raises(KeyError, match="'actor'"):
        source_state_for(source, "actor")
