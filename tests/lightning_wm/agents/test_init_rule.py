"""Every agent is built under the library's one init rule (Glorot-uniform weights, zero
biases), the rule transfer methods use for the layers they re-initialise, so a scratch baseline
differs from a transferred agent only by the transfer."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_wm.agents import make_agent
from lightning_wm.transfer import reinit

AGENTS = [
    ("tiny_q", (4,), 2, True, {}),
    ("crar", (8, 8), 4, True, {}),                # dense encoder
    ("crar", (48, 48), 4, True, {}),              # conv encoder
    ("dreamer", (5,), 2, False, {"size": "tiny"}),
    ("dreamer", (3, 64, 64), 2, False, {"size": "tiny"}),
    ("dreamer_v2", (5,), 3, True, {"size": "tiny"}),
    ("dreamer_v2", (3, 64, 64), 3, True, {"size": "tiny"}),
]
IDS = [f"{a[0]}-{'x'.join(map(str, a[1]))}" for a in AGENTS]


def _glorot_bound(p: torch.Tensor) -> float:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(p)
    return math.sqrt(6.0 / (fan_in + fan_out))


def _agent(spec, seed=0):
    name, shape, actions, discrete, config = spec
    torch.manual_seed(seed)
    return make_agent(name, shape, actions, discrete, dict(config))


def _check_rule(module: nn.Module, where: str) -> None:
    for name, p in module.named_parameters():
        if p.dim() < 2:
            assert torch.count_nonzero(p) == 0, f"{where}.{name}: biases start at zero"
            continue
        bound = _glorot_bound(p)
        assert p.abs().max() <= bound + 1e-6, f"{where}.{name} exceeds the Glorot bound"
        if p.numel() >= 512:  # uniform(−b, b) has std b/√3; PyTorch's default is ~√3× smaller
            std = p.std().item()
            assert abs(std - bound / math.sqrt(3)) < 0.12 * bound / math.sqrt(3), \
                f"{where}.{name}: std {std:.4f}, Glorot-uniform {bound / math.sqrt(3):.4f}"


@pytest.mark.parametrize("spec", AGENTS, ids=IDS)
def test_scratch_components_follow_the_rule(spec):
    agent = _agent(spec)
    _check_rule(agent.components, "components")


@pytest.mark.parametrize("spec", AGENTS, ids=IDS)
def test_target_copies_start_equal_to_their_components(spec):
    agent = _agent(spec)
    copies = {name: mod for name, mod in agent.named_children()
              if name in ("target", "target_value") and mod is not None}
    for name, copy in copies.items():
        for key, value in copy.state_dict().items():
            source = agent.components.state_dict()
            full = key if name == "target" else f"value.{key}"
            assert torch.equal(value, source[full]), f"{name}.{key} differs from components.{full}"


@pytest.mark.parametrize("spec", AGENTS, ids=IDS)
def test_a_transfer_reinit_draws_by_the_same_rule(spec):
    """The layers a transfer re-initialises pass the same check as a scratch agent's, and the
    draw differs from the scratch one (fresh values, not a copy)."""
    agent = _agent(spec)
    before = {k: v.clone() for k, v in agent.components.state_dict().items()}
    torch.manual_seed(1)
    reinit(agent.components)
    _check_rule(agent.components, "reinit")
    assert any(not torch.equal(v, agent.components.state_dict()[k])
               for k, v in before.items() if v.dim() >= 2)


def test_pytorch_default_init_would_fail_the_check():
    torch.manual_seed(0)
    layer = nn.Linear(64, 64)   # Kaiming-uniform(a=√5) weights, uniform biases
    with pytest.raises(AssertionError):
        _check_rule(layer, "default")
