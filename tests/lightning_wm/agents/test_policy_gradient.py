"""PPO's and REPAINT's maths against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (Independent, Normal, OneHotCategorical, TanhTransform,
                                 TransformedDistribution)

from lightning_wm.agents.parts.policy_gradient import (clipped_surrogate, gae, one_step_advantage,
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


def test_masked_surrogate_ignores_infinite_advantages_it_drops():
    # −inf marks a step with no successor; dropping it must not turn the mean into NaN
    log_prob = torch.zeros(3)
    advantage = torch.tensor([1.0, float("-inf"), 3.0])
    loss = clipped_surrogate(log_prob, log_prob, advantage, 0.2, advantage >= 0)
    assert loss.item() == pytest.approx(-2.0)  # ratio 1: −(1 + 3) / 2


def test_squashed_cross_entropy_is_the_pre_tanh_one_and_differs_by_a_student_free_constant():
    def squashed(mu, sd):
        base = Normal(torch.tensor([mu]), torch.tensor([sd]))
        return Independent(TransformedDistribution(base, [TanhTransform()]), 1)

    teacher = squashed(0.3, 0.5)
    # pre-tanh CE by hand, one dim: log σ_S + ½ log 2π + (σ_T² + (μ_T − μ_S)²) / (2 σ_S²)
    by_hand = math.log(0.8) + 0.5 * math.log(2 * math.pi) + (0.25 + 0.09) / (2 * 0.64)
    assert policy_cross_entropy(teacher, squashed(0.0, 0.8)).item() == pytest.approx(by_hand)
    # Monte Carlo of the true squashed CE minus ours is the same for two different students
    torch.manual_seed(0)
    a = teacher.sample((200_000,)).clamp(-1 + 1e-6, 1 - 1e-6)
    gaps = [(-student.log_prob(a).mean() - policy_cross_entropy(teacher, student)).item()
            for student in (squashed(0.0, 0.8), squashed(-0.4, 1.3))]
    assert gaps[0] == pytest.approx(gaps[1], abs=0.01)


def test_one_step_advantage_by_hand():
    # one window of T = 4: rewards arrive with their step; step 2 is terminal, step 3 starts anew
    reward = torch.tensor([[9.0, 1.0, 2.0, 5.0]])
    value = torch.tensor([[0.5, 1.0, 4.0, 7.0]])
    terminal = torch.tensor([[False, False, True, False]])
    first = torch.tensor([[True, False, False, True]])
    advantage = one_step_advantage(reward, value, terminal, first, gamma=0.5)
    # t=0: 1 + 0.5·1 − 0.5 = 1;  t=1: 2 + 0 (terminal) − 1 = 1;  t=2: successor starts anew
    assert advantage.tolist() == [[1.0, 1.0, float("-inf")]]
