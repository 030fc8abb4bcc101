"""EfficientZero's targets and losses against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from lightning_wm.agents.parts.muzero_targets import (EFFICIENTZERO_LOSS_WEIGHTS, SUPPORT_SIZE,
                                                      bootstrap_offsets, categorical_to_scalar,
                                                      consistency_loss, cross_entropy,
                                                      inverse_value_transform,
                                                      learning_rate_factor,
                                                      n_step_value_targets, off_policy_horizon,
                                                      scalar_cross_entropy,
                                                      scalar_to_categorical, scale_gradient,
                                                      two_hot, value_prefix_targets,
                                                      value_transform, visit_policy,
                                                      visit_temperature)

T = torch.tensor
NAN = float("nan")


def test_value_transform_by_hand():
    # h(x) = sign(x)(√(|x|+1) − 1) + 0.001x:
    # h(3) = 2 − 1 + 0.003;  h(8) = 3 − 1 + 0.008;  h(99) = 10 − 1 + 0.099;
    # h(0.21) = 1.1 − 1 + 0.00021
    x = T([0.0, 3.0, -3.0, 8.0, 99.0, 0.21], dtype=torch.float64)
    expected = [0.0, 1.003, -1.003, 2.008, 9.099, 0.10021]
    assert value_transform(x).tolist() == pytest.approx(expected, abs=1e-12)
    assert inverse_value_transform(T(expected, dtype=torch.float64)).tolist() == pytest.approx(
        x.tolist(), abs=1e-10)


def test_inverse_transform_round_trips_in_float32_near_zero_and_far_out():
    x = torch.cat([T([1e-4, -3e-4, 2e-3, 0.5, -7.0]), torch.linspace(-1e4, 1e4, 101)])
    assert torch.allclose(inverse_value_transform(value_transform(x)), x, rtol=1e-5, atol=1e-9)
    y = torch.linspace(-300.0, 300.0, 61)
    assert torch.allclose(value_transform(inverse_value_transform(y)), y, rtol=1e-5, atol=1e-6)


def test_two_hot_by_hand():
    # support −5..5 has 11 atoms, atom a at index a + 5
    probs = two_hot(T([2.3, -1.25, 1.0]), 5)
    assert probs.shape == (3, 11)
    # 2.3 lies 0.3 of the way from atom 2 (index 7) to atom 3 (index 8)
    assert probs[0, 7].item() == pytest.approx(0.7) and probs[0, 8].item() == pytest.approx(0.3)
    # −1.25 lies 0.75 of the way from atom −2 (index 3) to atom −1 (index 4)
    assert probs[1, 3].item() == pytest.approx(0.25) and probs[1, 4].item() == pytest.approx(0.75)
    assert probs[2].tolist() == [0.0] * 6 + [1.0] + [0.0] * 4
    assert probs.sum(-1).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_two_hot_clamps_outside_the_support():
    probs = two_hot(T([7.0, -9.0, 5.0, -5.0]), 5)
    assert probs.argmax(-1).tolist() == [10, 0, 10, 0]
    assert probs.max(-1).values.tolist() == [1.0, 1.0, 1.0, 1.0]


def test_scalar_to_categorical_goes_through_the_transform():
    # h(8) = 2.008: 0.992 on atom 2 (index 7), 0.008 on atom 3 (index 8)
    probs = scalar_to_categorical(T([[8.0, 0.0]]), 5)
    assert probs.shape == (1, 2, 11)
    assert probs[0, 0, 7].item() == pytest.approx(0.992, abs=1e-6)
    assert probs[0, 0, 8].item() == pytest.approx(0.008, abs=1e-6)
    assert probs[0, 1, 5].item() == 1.0


def test_categorical_to_scalar_inverts_the_expected_atom():
    # logits = log(two-hot): softmax gives back the two-hot, its expected atom h(x), then x
    x = T([8.0, -3.0, 0.0, 40.0])
    logits = torch.log(scalar_to_categorical(x, 10))
    assert categorical_to_scalar(logits, 10).tolist() == pytest.approx(x.tolist(), abs=1e-3)
    # a value past the support comes back as the largest representable one, h⁻¹(5)
    far = categorical_to_scalar(torch.log(scalar_to_categorical(T([1e4]), 5)), 5)
    assert value_transform(far).item() == pytest.approx(5.0, abs=1e-5)
    # uniform logits over a symmetric support: expected atom 0, value 0
    assert categorical_to_scalar(torch.zeros(2, 11), 5).tolist() == pytest.approx([0.0, 0.0],
                                                                                  abs=1e-6)


def test_value_prefix_resets_at_the_horizon_and_stops_at_a_terminal():
    r = T([[1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    terminal = T([[False] * 5, [False, False, True, False, False]])
    valid = torch.ones(2, 5, dtype=torch.bool)
    target, mask = value_prefix_targets(r, terminal, valid, horizon=2)
    # row 0, reset after steps 2 and 4: r0, r0+r1, r2, r2+r3, r4
    assert target[0].tolist() == [1.0, 3.0, 3.0, 7.0, 5.0]
    # row 1 ends at transition 2: 1, 3, 3 (reset), then nothing more; 0 after the next reset
    assert target[1].tolist() == [1.0, 3.0, 3.0, 3.0, 0.0]
    assert mask.tolist() == [[True] * 5, [True, True, True, False, False]]


def test_value_prefix_past_the_end_of_the_data():
    # the last transition is padding (garbage reward 9): the prefix keeps its last value, masked
    target, mask = value_prefix_targets(T([[1.0, 1.0, 1.0, 1.0, 9.0]]), torch.zeros(1, 5).bool(),
                                        T([[True, True, True, True, False]]), horizon=5)
    assert target.tolist() == [[1.0, 2.0, 3.0, 4.0, 4.0]]
    assert mask.tolist() == [[True, True, True, True, False]]
    # horizon 1: the targets are the single rewards
    ones, _ = value_prefix_targets(T([[2.0, -1.0, 0.5]]), torch.zeros(1, 3).bool(),
                                   torch.ones(1, 3).bool(), horizon=1)
    assert ones.tolist() == [[2.0, -1.0, 0.5]]
    with pytest.raises(ValueError, match="at least 1"):
        value_prefix_targets(T([[1.0]]), T([[False]]), T([[True]]), horizon=0)


def test_n_step_targets_with_a_terminal_and_with_the_end_of_the_data():
    # γ = 0.5, n = 3, K = 6, six transitions with rewards 1..6
    r = T([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]] * 2)
    # row 0: transition 4 is terminal (s5 terminal), transition 5 is padding after it;
    # row 1: no terminal, the stored data ends after transition 3
    terminal = T([[False, False, False, False, True, False], [False] * 6])
    valid = T([[True] * 5 + [False], [True] * 4 + [False] * 2])
    # bootstrap[:, k] = v(s_{k+3}); the entries a target cannot use are NaN or, for k = 2 in
    # row 0, the value of the terminal s5, which must be ignored too
    boot = T([[10.0, 20.0, 30.0, NAN, NAN, NAN, NAN], [10.0, 20.0, NAN, NAN, NAN, NAN, NAN]])
    target, mask = n_step_value_targets(r, terminal, valid, boot, horizon=3, gamma=0.5)
    # row 0: k0 = 1 + .5·2 + .25·3 + .125·v(s3)=10 → 4.0;  k1 = 2 + .5·3 + .25·4 + .125·20 → 7.0
    #        k2 = 3 + .5·4 + .25·5 (s5 terminal: no bootstrap) → 6.25;  k3 = 4 + .5·5 → 6.5
    #        k4 = 5;  k5 is the terminal state: 0 (trained);  k6 is past it: 0, masked
    assert target[0].tolist() == pytest.approx([4.0, 7.0, 6.25, 6.5, 5.0, 0.0, 0.0])
    assert mask[0].tolist() == [True] * 6 + [False]
    # row 1: k0, k1 as in row 0 (s3, s4 are stored); from k2 on the window runs past the data
    assert target[1].tolist() == pytest.approx([4.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert mask[1].tolist() == [True, True] + [False] * 5


def test_per_sample_horizon_changes_the_target():
    r = T([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]] * 2)
    terminal, valid = torch.zeros(2, 6).bool(), torch.ones(2, 6).bool()
    horizon = T([3, 1])
    assert bootstrap_offsets(horizon, 1, batch=2).tolist() == [[3, 4], [1, 2]]
    boot = T([[8.0, 16.0], [4.0, 6.0]])  # row 0: v(s3), v(s4); row 1: v(s1), v(s2)
    target, mask = n_step_value_targets(r, terminal, valid, boot, horizon, gamma=0.5)
    # n = 3: 1 + .5·2 + .25·3 + .125·8 = 3.75;  2 + .5·3 + .25·4 + .125·16 = 6.5
    # n = 1: 1 + .5·4 = 3;  2 + .5·6 = 5
    assert target.flatten().tolist() == pytest.approx([3.75, 6.5, 3.0, 5.0])
    assert mask.all()
    # the same rows with a plain int horizon agree
    for row, n in ((0, 3), (1, 1)):
        alone, _ = n_step_value_targets(r[row:row + 1], terminal[:1], valid[:1],
                                        boot[row:row + 1], n, gamma=0.5)
        assert alone[0].tolist() == pytest.approx(target[row].tolist())


def test_a_window_too_short_for_the_horizon_masks_only_what_it_cannot_cover():
    r = T([[1.0, 1.0, 1.0, 1.0]])
    # n = 4 over 4 transitions: k0 needs v(s4) (in reach), k1 would need v(s5)
    target, mask = n_step_value_targets(r, torch.zeros(1, 4).bool(), torch.ones(1, 4).bool(),
                                        T([[16.0, NAN]]), 4, gamma=0.5)
    assert target[0].tolist() == pytest.approx([1 + 0.5 + 0.25 + 0.125 + 1.0, 0.0])
    assert mask.tolist() == [[True, False]]
    with pytest.raises(ValueError, match="cannot reach"):
        n_step_value_targets(r[:, :1], torch.zeros(1, 1).bool(), torch.ones(1, 1).bool(),
                             torch.zeros(1, 3), 1, gamma=0.5)


def test_off_policy_horizon_shrinks_with_age():
    # n = 5, budget 100k, ratio 0.3: one step shorter every 30k env steps, never below 1
    age = T([0, 29_999, 30_000, 59_999, 65_000, 95_000, 500_000])
    assert off_policy_horizon(age, 5, 100_000).tolist() == [5, 5, 4, 4, 3, 2, 1]
    # n = 3, budget 10k, ratio 0.5: period 5k
    assert off_policy_horizon(T([0, 4_999, 5_000, 12_000]), 3, 10_000, ratio=0.5).tolist() == [
        3, 3, 2, 1]


def test_cross_entropies_by_hand():
    logits = torch.log(T([0.25, 0.25, 0.5]))
    assert cross_entropy(logits, T([0.5, 0.5, 0.0])).item() == pytest.approx(math.log(4))
    assert cross_entropy(logits, torch.zeros(3)).item() == 0.0  # a masked (all-zero) target
    assert cross_entropy(torch.zeros(2, 4, 3), torch.full((2, 4, 3), 1 / 3)).shape == (2, 4)
    # uniform logits over 11 atoms: −log(1/11) whatever the target
    assert scalar_cross_entropy(torch.zeros(1, 11), T([8.0]), 5).item() == pytest.approx(
        math.log(11))
    # logits equal to the target's log-two-hot (floored: the empty atoms' −inf would make 0·inf):
    # the two-hot's entropy
    logits = torch.log(scalar_to_categorical(T([8.0]), 5).clamp(min=1e-30))
    own = scalar_cross_entropy(logits, T([8.0]), 5)
    assert own.item() == pytest.approx(-(0.992 * math.log(0.992) + 0.008 * math.log(0.008)),
                                       rel=1e-4)


def test_visit_policy_normalises_and_keeps_empty_rows_empty():
    policy = visit_policy(T([[3, 1, 0, 0], [0, 0, 0, 0]]))
    assert policy.tolist() == [[0.75, 0.25, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_consistency_loss_by_hand():
    p = T([[1.0, 2.0, 2.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    z = T([[2.0, 4.0, 4.0], [0.0, 3.0, 0.0], [-5.0, 0.0, 0.0]])
    # same direction −1, orthogonal 0, opposite +1
    assert consistency_loss(p, z).tolist() == pytest.approx([-1.0, 0.0, 1.0])


def test_consistency_loss_sends_no_gradient_into_the_target():
    p = T([[1.0, 0.0]], requires_grad=True)
    z = T([[0.0, 1.0]], requires_grad=True)
    consistency_loss(p, z).sum().backward()
    assert z.grad is None
    # d(−p̂·ẑ)/dp = −(ẑ − (p̂·ẑ) p̂)/|p| = −(0, 1) at p = (1, 0), z = (0, 1)
    assert p.grad[0].tolist() == pytest.approx([0.0, -1.0])


def test_scale_gradient_is_identity_forward_and_halves_backward():
    x = T([1.5, -2.0, 0.1], requires_grad=True)
    y = scale_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * T([3.0, 4.0, 1.0])).sum().backward()
    assert x.grad.tolist() == pytest.approx([1.5, 2.0, 0.5])
    x.grad = None
    scale_gradient(scale_gradient(x, 0.5), 0.5).sum().backward()  # two unroll steps: a quarter
    assert x.grad.tolist() == pytest.approx([0.25, 0.25, 0.25])


def test_paper_size_constants():
    assert EFFICIENTZERO_LOSS_WEIGHTS == {"value": 0.25, "value_prefix": 1.0, "policy": 1.0,
                                          "consistency": 2.0}
    assert scalar_to_categorical(T([0.0]), SUPPORT_SIZE).shape == (1, 601)


def test_targets_trace_without_graph_breaks():
    # fullgraph fails on any host synchronisation or data-dependent Python branch
    n_step = torch.compile(n_step_value_targets, backend="eager", fullgraph=True)
    prefix = torch.compile(value_prefix_targets, backend="eager", fullgraph=True)
    r = torch.arange(12.0).reshape(2, 6)
    terminal = T([[False, False, True, False, False, False], [False] * 6])
    valid = torch.ones(2, 6).bool()
    boot = torch.ones(2, 3)
    horizon = off_policy_horizon(T([0, 40_000]), 3, 100_000)
    expected = n_step_value_targets(r, terminal, valid, boot, horizon, 0.9)
    got = n_step(r, terminal, valid, boot, horizon, 0.9)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert torch.equal(prefix(r, terminal, valid, 2)[0],
                       value_prefix_targets(r, terminal, valid, 2)[0])


def test_learning_rate_warms_up_then_decays_in_steps():
    # warm-up over 4 updates (the first at rate 0), then x0.1 per 10 updates after it
    factors = [learning_rate_factor(u, 4, 0.1, 10) for u in (0, 1, 2, 3, 4, 13, 14, 23, 24)]
    assert factors == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.1, 0.1, 0.01])
    assert [learning_rate_factor(u, 0, 1.0, 100) for u in (0, 10**6)] == [1.0, 1.0]


def test_visit_temperature_halves_at_each_listed_update():
    # EfficientZero's 1 / 0.5 / 0.25 over a run of 8 updates: halvings at 4 and 6
    assert [visit_temperature(u, 1.0, [4, 6]) for u in (0, 3, 4, 5, 6, 100)] == [
        1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert visit_temperature(7, 2.0, []) == 2.0
