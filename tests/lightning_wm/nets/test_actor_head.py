"""The tanh-Gaussian actor's squashed log-density and the entropy bonus built on it."""
from __future__ import annotations

import math

import torch

from lightning_wm.nets.dense import ActorHead, tanh_log_det


def test_tanh_log_det_by_hand():
    u = torch.tensor([0.0, 1.0, -1.0, 20.0])
    got = tanh_log_det(u)
    # log(1 - tanh(1)^2) = log(0.4199743) = -0.8675617; at u = 20, 1 - tanh^2 rounds to 0 in
    # float32, and the exact value is 2 (log 2 - 20 - log(1 + e^-40)) = -38.6137056
    want = torch.tensor([0.0, -0.8675617, -0.8675617, -38.6137056])
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.isinf(torch.log(1 - torch.tanh(u[3:]) ** 2)).all()  # why the stable form


def test_sample_log_prob_matches_the_transformed_distribution_where_it_is_finite():
    torch.manual_seed(0)
    actor = ActorHead(feature_size=6, action_dim=3, hidden=8, layers=2, init_std=0.5)
    feat = torch.randn(64, 6)
    torch.manual_seed(1)
    action, log_prob = actor.sample_log_prob(feat)
    assert action.shape == (64, 3) and log_prob.shape == (64,)
    inside = (action.abs() < 0.999).all(-1)  # torch's inverse tanh is exact only off the edges
    want = actor.dist(feat).log_prob(action)
    assert inside.sum() > 40
    assert torch.allclose(log_prob[inside], want[inside], atol=1e-3)


def test_saturated_actions_keep_a_finite_log_prob_that_grows_with_saturation():
    actor = ActorHead(feature_size=2, action_dim=1, hidden=4, layers=1, init_std=1e-3)
    torch.nn.init.zeros_(actor.out.weight)
    logps = []
    for mean in (0.0, 2.0, 4.0):  # the pre-tanh mean: centred, saturating, saturated
        torch.nn.init.constant_(actor.out.bias[:1], mean)
        torch.nn.init.zeros_(actor.out.bias[1:])
        torch.manual_seed(0)  # the same noise each time: the Gaussian part cancels below
        _, logp = actor.sample_log_prob(torch.zeros(16, 2))
        assert torch.isfinite(logp).all()
        logps.append(logp.mean().item())
    assert logps[0] < logps[1] < logps[2]
    # std ~1e-3, so the difference is the Jacobian term at the soft-clipped mean
    # 5 tanh(4 / 5) = 3.32018: -log(1 - tanh^2(3.32018)) = 5.25668
    assert math.isclose(logps[2] - logps[0], 5.25668, abs_tol=0.01)


def test_the_bonus_pulls_a_saturated_mean_back():
    actor = ActorHead(feature_size=2, action_dim=1, hidden=4, layers=1, init_std=0.01)
    torch.nn.init.zeros_(actor.out.weight)
    torch.nn.init.constant_(actor.out.bias[:1], 20.0)  # soft-clipped to ~4.8: tanh is flat
    opt = torch.optim.Adam(actor.parameters(), lr=0.05)
    feat = torch.zeros(32, 2)
    start = actor.normal(feat)[0].mean().item()
    for _ in range(50):
        _, logp = actor.sample_log_prob(feat)
        opt.zero_grad()
        logp.mean().backward()  # minimising E[log pi] maximises the entropy
        opt.step()
    end = actor.normal(feat)[0].mean().item()
    assert start > 4.5 and end < 0.5 * start
