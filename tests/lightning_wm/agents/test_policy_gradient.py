"""PPO's and REPAINT's maths against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, OneHotCategorical

from lightning_wm.agents.parts.policy_gradient import (clipped_surrogate, gae,
                                                      policy_cross_entropy)

T = torch.tensor


def test_gae_over_one_terminal_episode():
    # γ = λ = 0.5: δ = (1.0, 1.75, 1.5); A2 = 1.5, A1 = 1.75 + 0.25·1.5, A0 = 1 + 0.25·A1
    adv, target = gae(T([1.0, 2.0, 3.0]), T([0.5, 1.0, 1.5]), T([1.0, 1.5, 2.0]),
                      T([False, False, True]), T([False, False, True]), 0.5, 0.5)
    assert adv.tolist() == pytest.approx([1.53125, 2.125, 1.5])
    assert target.tolist() == pytest.approx([2.03125, 3.125, 3.0])


def test_gae_restarts_at_a_cut_and_bootstraps_it():
    # rows 0-1 end at a phase cut (not terminal: δ1 bootstraps from V(s'1) = 1.5); row 2 is
    # another segment whose own cut bootstraps from 2.0
    adv, _ = gae(T([1.0, 2.0, 3.0]), T([0.5, 1.0, 1.5]), T([1.0, 1.5, 2.0]),
                 T([False, False, False]), T([False, True, True]), 0.5, 0.5)
    assert adv.tolist() == pytest.approx([1.4375, 1.75, 2.5])


def test_gae_with_lambda_one_is_the_discounted_return_minus_value():
    r = T([1.0, 1.0, 1.0])
    adv, target = gae(r, torch.zeros(3), torch.zeros(3), T([False, False, True]),
                      T([False, False, True]), 0.9, 1.0)
    assert target.tolist() == pytest.approx([1 + 0.9 + 0.81, 1.9, 1.0])


def test_clipped_surrogate_by_hand():
    logp = T([math.log(1.5), math.log(0.5)])
    old = torch.zeros(2)
    adv = T([2.0, -1.0])
    # ratio 1.5, A 2: min(3.0, 1.2·2) = 2.4; ratio 0.5, A −1: min(−0.5, 0.8·−1) = −0.8
    assert clipped_surrogate(logp, old, adv, 0.2).item() == pytest.approx(-(2.4 - 0.8) / 2)
    assert clipped_surrogate(logp, old, adv, 0.2, T([True, False])).item() == pytest.approx(-2.4)
    assert clipped_surrogate(logp, old, adv, 0.2, T([False, False])).item() == 0.0


def test_clipped_surrogate_has_no_gradient_beyond_the_clip():
    logp = T([math.log(1.5)], requires_grad=True)
    clipped_surrogate(logp, torch.zeros(1), T([2.0]), 0.2).backward()
    assert logp.grad.item() == 0.0  # ratio 1.5 > 1.2 with a positive advantage: clipped


def _gauss(mu, sigma):
    return Independent(Normal(T(mu), T(sigma)), 1)


def test_gaussian_cross_entropy_by_hand():
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    # dim 1: teacher N(1, 2²), student N(0, 1): log 1 + ½ log 2π + (4 + 1) / 2
    # dim 2: teacher N(0, 1), student N(0, e²): log e + ½ log 2π + 1 / (2 e²)
    expected = (half_log_2pi + 2.5) + (1.0 + half_log_2pi + 1 / (2 * math.e ** 2))
    ce = policy_cross_entropy(_gauss([1.0, 0.0], [2.0, 1.0]), _gauss([0.0, 0.0], [1.0, math.e]))
    assert ce.item() == pytest.approx(expected)
    # H(p, p) is p's entropy
    p = _gauss([0.3, -0.2], [0.5, 1.5])
    assert policy_cross_entropy(p, p).item() == pytest.approx(p.entropy().item())


def test_categorical_cross_entropy_by_hand():
    teacher = OneHotCategorical(probs=T([0.5, 0.5, 0.0]))
    student = OneHotCategorical(logits=torch.log(T([0.25, 0.25, 0.5])))
    assert policy_cross_entropy(teacher, student).item() == pytest.approx(math.log(4))


def test_cross_entropy_of_mixed_kinds_is_refused():
    with pytest.raises(TypeError, match="no closed-form"):
        policy_cross_entropy(_gauss([0.0], [1.0]), OneHotCategorical(probs=T([1.0, 0.0])))
