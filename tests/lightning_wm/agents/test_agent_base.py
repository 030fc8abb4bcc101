"""Agent base: named loss terms, glob loss weights, streams; the tiny double-DQN agent."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents.base import Agent, NonFiniteLossError, assert_finite, linear_schedule
from lightning_wm.agents.tiny_q import TinyQAgent
from lightning_wm.losses import double_q_target, n_step_return
from lightning_wm.pipeline import AgentPolicy

BASE = {"q/td": 1.0, "structure/d1": 2.0, "structure/d2": 4.0}


class FixedAgent(Agent):
    """Loss terms are fixed values times the batch's ``scale``; counts its loss_terms calls."""

    def __init__(self, values=None):
        super().__init__({"q": nn.Linear(1, 1)})
        self.values = dict(BASE if values is None else values)
        self.calls = 0

    def loss_terms(self, batch):
        self.calls += 1
        scale = batch["scale"]
        return {name: torch.tensor(v) * scale for name, v in self.values.items()}


def one(scale=1.0):
    return {"scale": torch.tensor(scale)}


def loss(agent, batch):
    """The total of one update on ``batch`` (a single stream's batch goes in as ``main``)."""
    return float(agent.update(batch if "main" in batch else {"main": batch}))


def test_unweighted_total_is_the_sum():
    assert loss(FixedAgent(), one()) == pytest.approx(7.0)


def test_total_is_the_weighted_sum():
    agent = FixedAgent()
    agent.set_loss_weight("q/td", 0.5)
    agent.set_loss_weight("structure/d2", 0.25)
    assert loss(agent, one()) == pytest.approx(0.5 * 1 + 2 + 0.25 * 4)


def test_weights_scale_gradients():
    agent = FixedAgent()
    agent.set_loss_weight("structure/d1", 3.0)
    x = torch.tensor(2.0, requires_grad=True)
    terms = {"q/td": x * 1.0, "structure/d1": x * 1.0, "other/t": x * 1.0}
    agent.weighted(terms).backward()
    assert float(x.grad) == pytest.approx(1 + 3 + 1)


def test_glob_weight_zero_removes_both_structure_terms():
    agent = FixedAgent()
    agent.set_loss_weight("structure/*", 0)
    assert loss(agent, one()) == pytest.approx(1.0)
    assert agent.weight_of("structure/d1") == 0.0 and agent.weight_of("structure/d2") == 0.0
    assert agent.weight_of("q/td") == 1.0


def test_set_loss_weight_replaces_same_pattern():
    agent = FixedAgent()
    agent.set_loss_weight("structure/*", 0)
    agent.set_loss_weight("structure/*", 2)
    assert loss(agent, one()) == pytest.approx(1 + 2 * 6)


def test_several_matching_patterns_multiply():
    agent = FixedAgent()
    agent.set_loss_weight("structure/*", 0.5)
    agent.set_loss_weight("structure/d1", 3.0)
    agent.set_loss_weight("*", 2.0)
    assert agent.weight_of("structure/d1") == pytest.approx(3.0)
    assert agent.weight_of("structure/d2") == pytest.approx(1.0)
    assert agent.weight_of("q/td") == pytest.approx(2.0)
    assert loss(agent, one()) == pytest.approx(2 * 1 + 3 * 2 + 1 * 4)


def test_unmatched_term_has_weight_one():
    agent = FixedAgent()
    agent.set_loss_weight("reward/*", 0.0)
    assert agent.weight_of("q/td") == 1.0
    assert loss(agent, one()) == pytest.approx(7.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_term_raises_naming_it(bad):
    agent = FixedAgent({"q/td": 1.0, "structure/d1": bad, "structure/d2": 4.0})
    with pytest.raises(NonFiniteLossError, match="structure/d1"):
        loss(agent, one())


def test_non_finite_error_is_a_floating_point_error():
    assert issubclass(NonFiniteLossError, FloatingPointError)


def test_all_weights_zero_raises():
    agent = FixedAgent()
    agent.set_loss_weight("*", 0.0)
    with pytest.raises(NonFiniteLossError, match="0"):
        loss(agent, one())


def test_main_stream_terms_are_not_prefixed():
    agent = FixedAgent()
    assert set(agent.stream_terms({"main": one()})) == set(BASE)


def test_streams_prefix_and_scale():
    agent = FixedAgent()
    batch = {"main": one(1.0), "aux": one(10.0)}
    terms = agent.stream_terms(batch)
    assert set(terms) == set(BASE) | {f"aux:{k}" for k in BASE}
    assert float(terms["aux:structure/d2"]) == pytest.approx(40.0)
    assert float(terms["q/td"]) == pytest.approx(1.0)
    # default stream weight is 1
    assert float(agent.weighted(terms)) == pytest.approx(7 + 70)
    agent.stream_weights["aux"] = 0.5
    assert loss(agent, batch) == pytest.approx(7 + 0.5 * 70)


def test_loss_weights_apply_to_every_stream_by_term_name():
    agent = FixedAgent()
    agent.stream_weights["aux"] = 0.5
    agent.set_loss_weight("structure/*", 0)
    assert loss(agent, {"main": one(1.0), "aux": one(10.0)}) == pytest.approx(1 + 0.5 * 10)
    agent.set_loss_weight("structure/*", 1)
    agent.set_loss_weight("q/td", 3)
    assert loss(agent, {"main": one(1.0), "aux": one(10.0)}) == pytest.approx(9 + 0.5 * 90)


def test_main_stream_weight_scales_main_terms():
    agent = FixedAgent()
    agent.stream_weights["main"] = 2.0
    agent.stream_weights["aux"] = 1.0
    assert loss(agent, {"main": one(1.0), "aux": one(10.0)}) == pytest.approx(14 + 70)


def test_stream_weight_zero_skips_that_stream():
    agent = FixedAgent()
    agent.stream_weights["aux"] = 0.0
    batch = {"main": one(1.0), "aux": one(10.0)}
    terms = agent.stream_terms(batch)
    assert set(terms) == set(BASE)
    assert agent.calls == 1  # the aux stream's losses are not even computed
    assert float(agent.weighted(terms)) == pytest.approx(7.0)


def test_stream_weight_zero_on_given_terms_is_ignored():
    agent = FixedAgent()
    agent.stream_weights["aux"] = 0.0
    terms = {"q/td": torch.tensor(1.0), "aux:q/td": torch.tensor(5.0)}
    assert float(agent.weighted(terms)) == pytest.approx(1.0)


def test_checkpoint_hooks_round_trip_weights():
    agent = FixedAgent()
    agent.set_loss_weight("structure/*", 0.25)
    agent.stream_weights["aux"] = 0.5
    agent.env_steps = 123
    ckpt = {}
    agent.on_save_checkpoint(ckpt)
    other = FixedAgent()
    other.on_load_checkpoint(ckpt)
    assert other.loss_weights == {"structure/*": 0.25}
    assert other.stream_weights == {"main": 1.0, "aux": 0.5}
    assert other.env_steps == 123
    # independent copies
    agent.set_loss_weight("q/td", 9)
    assert "q/td" not in other.loss_weights


def test_linear_schedule_and_assert_finite():
    assert linear_schedule(1.0, 0.0, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.0, 100, 50) == pytest.approx(0.5)
    assert linear_schedule(1.0, 0.0, 100, 500) == 0.0
    assert linear_schedule(1.0, 0.2, 0, 0) == 0.2
    assert assert_finite(1.5, "x") == 1.5
    with pytest.raises(NonFiniteLossError, match="metric"):
        assert_finite(float("nan"), "metric")


# -- TinyQAgent -----------------------------------------------------------------------------------
@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return TinyQAgent(obs_dim=5, action_dim=3)


def test_tiny_q_components(tiny):
    assert set(tiny.components) == {"encoder", "q", "reward"}
    assert "target" not in tiny.components


def test_act_returns_one_hot_actions(tiny):
    obs = torch.randn(7, 5)
    for explore in (True, False):
        action, state = tiny.act(obs, None, explore)
        assert action.shape == (7, 3)
        assert action.dtype == torch.float32
        assert torch.all(action.sum(-1) == 1.0)
        assert set(action.unique().tolist()) <= {0.0, 1.0}
        assert state is None


def test_act_greedy_without_explore(tiny):
    obs = torch.randn(50, 5)
    action, _ = tiny.act(obs, None, explore=False)
    with torch.no_grad():
        greedy = tiny._q(obs, tiny.components).argmax(-1)
    torch.testing.assert_close(action.argmax(-1), greedy)
    again, _ = tiny.act(obs, None, explore=False)
    torch.testing.assert_close(action, again)


def test_act_random_with_epsilon_one(tiny):
    assert tiny.epsilon() == 1.0  # eps_start at env step 0
    obs = torch.zeros(3000, 5)  # one observation: greedy would always pick the same action
    torch.manual_seed(1)
    action, _ = tiny.act(obs, None, explore=True)
    freq = action.mean(0)
    assert torch.all((freq - 1 / 3).abs() < 0.05), freq


def test_act_epsilon_follows_schedule():
    torch.manual_seed(0)
    agent = TinyQAgent(obs_dim=5, action_dim=3, eps_start=1.0, eps_end=0.0, eps_steps=100)
    agent.env_steps = 50
    assert agent.epsilon() == pytest.approx(0.5)
    agent.env_steps = 1000
    assert agent.epsilon() == 0.0
    obs = torch.randn(200, 5)
    explore, _ = agent.act(obs, None, explore=True)
    greedy, _ = agent.act(obs, None, explore=False)
    torch.testing.assert_close(explore, greedy)


def test_double_q_target_hand_computed():
    reward = torch.tensor([1.0, 2.0, -0.5])
    terminal = torch.tensor([0.0, 1.0, 0.0])
    q_online = torch.tensor([[1.0, 3.0], [5.0, 0.0], [0.0, -1.0]])
    q_target = torch.tensor([[20.0, 10.0], [30.0, 40.0], [4.0, 8.0]])
    y = double_q_target(reward, terminal, 0.9, q_online, q_target)
    # row 0: online picks a=1, target scores it 10 (not the target's max 20)
    # row 1: terminal -> reward only
    # row 2: online picks a=0, target scores it 4
    torch.testing.assert_close(y, torch.tensor([1 + 0.9 * 10, 2.0, -0.5 + 0.9 * 4]))


def test_n_step_return_stops_at_the_first_terminal_and_is_one_step_at_n_1():
    reward = torch.tensor([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    terminal = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    ret, ended = n_step_return(reward, terminal, 0.5)
    torch.testing.assert_close(ret, torch.tensor([1 + 0.5 * 2 + 0.25 * 4, 1 + 0.5 * 2, 1.0]))
    torch.testing.assert_close(ended, torch.tensor([0.0, 1.0, 1.0]))
    q_online = torch.tensor([[1.0, 3.0], [5.0, 0.0], [0.0, -1.0]])
    q_target = torch.tensor([[20.0, 10.0], [30.0, 40.0], [4.0, 8.0]])
    y = double_q_target(ret, ended, 0.5 ** 3, q_online, q_target)
    torch.testing.assert_close(y[0], torch.tensor(3.0 + 0.125 * 10))  # only row 0 bootstraps
    # n = 1: the same numbers as the one-step target, bit for bit
    r1, t1 = reward[:, :1], terminal[:, :1]
    one, ended1 = n_step_return(r1, t1, 0.9)
    assert torch.equal(double_q_target(one, ended1, 0.9, q_online, q_target),
                       double_q_target(r1[:, 0], t1[:, 0], 0.9, q_online, q_target))


def _batch(n=6, obs_dim=5, action_dim=3, terminal=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    action = F.one_hot(torch.randint(0, action_dim, (n, 2), generator=g), action_dim).float()
    action[:, 0] = 0
    return {"obs": torch.randn(n, 2, obs_dim, generator=g), "action": action,
            "reward": torch.randn(n, 2, generator=g),
            "is_first": torch.tensor([[True, False]] * n),
            "is_terminal": torch.full((n, 2), float(terminal)) > 0.5}


def test_tiny_q_loss_term_names(tiny):
    terms = tiny.loss_terms(_batch())
    assert set(terms) == {"q/td", "reward/mse"}
    for value in terms.values():
        assert value.dim() == 0 and torch.isfinite(value)
    total = tiny.weighted(terms)
    total.backward()
    assert all(p.grad is not None for p in tiny.components.parameters())
    assert all(p.grad is None for p in tiny.target.parameters())


def test_tiny_q_loss_terms_use_the_transition(tiny):
    # all-terminal transitions: the TD target is the reward of step 1
    batch = _batch(terminal=1.0)
    terms = tiny.loss_terms(batch)
    with torch.no_grad():
        obs0, a1, r1 = batch["obs"][:, 0], batch["action"][:, 1], batch["reward"][:, 1]
        q_taken = (tiny._q(obs0, tiny.components) * a1).sum(-1)
        latent = F.elu(tiny.components["encoder"](obs0))
        r_hat = tiny.components["reward"](torch.cat([latent, a1], -1)).squeeze(-1)
    torch.testing.assert_close(terms["q/td"].detach(), F.smooth_l1_loss(q_taken, r1))
    torch.testing.assert_close(terms["reward/mse"].detach(), F.mse_loss(r_hat, r1))


def test_tiny_q_non_terminal_target_uses_target_net(tiny):
    batch = _batch(terminal=0.0)
    before = tiny.loss_terms(batch)["q/td"].item()
    with torch.no_grad():
        for p in tiny.target.parameters():
            p.add_(1.0)
    assert tiny.loss_terms(batch)["q/td"].item() != pytest.approx(before)
    tiny.sync_target()
    assert tiny.loss_terms(batch)["q/td"].item() == pytest.approx(before)


def test_agent_policy_returns_numpy_actions(tiny):
    policy = AgentPolicy(tiny, explore=False)
    obs = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = policy(obs, np.ones(4, bool))
    assert isinstance(out, np.ndarray) and out.shape == (4, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.sum(-1), np.ones(4))
