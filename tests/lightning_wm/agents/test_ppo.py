"""The PPO agent: its policy, its named terms, and that it learns a cheap task."""
from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.agents.protocol import MAIN, ExplicitPolicy
from lightning_wm.envs import make_env
from lightning_wm.pipeline import SegmentSource, TrainingConfig
from lightning_wm.data.collector import Collector
from lightning_wm.pipeline.evaluator import AgentPolicy
from lightning_wm.testing import logged_update
from lightning_wm.training import train


def test_policy_is_explicit_and_acts_greedily_or_by_sampling():
    agent = make_agent("ppo", (4,), 2, False)
    assert isinstance(agent, ExplicitPolicy) and agent.data_needs().on_policy
    obs = torch.randn(3, 4)
    greedy, _ = agent.act(obs, None, explore=False)
    assert torch.equal(greedy, agent.policy({"obs": obs}).mean)
    sampled, _ = agent.act(obs, None, explore=True)
    assert sampled.shape == (3, 2) and not torch.equal(sampled, greedy)
    discrete = make_agent("ppo", (4,), 3, True)
    action, _ = discrete.act(obs, None, explore=True)
    assert action.shape == (3, 3) and torch.equal(action.sum(-1), torch.ones(3))


def test_pixel_observations_get_an_encoder_in_the_policy():
    agent = make_agent("ppo", (3, 64, 64), 2, False, {"depth": 4})
    assert agent.policy_components() == ("encoder", "actor")
    obs = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    assert agent.policy({"obs": obs}).mean.shape == (2, 2)


def _phase(agent, steps=64):
    collector = Collector(lambda t: make_env("point", {"dim": 2, "max_steps": 20}), [0], 2, 2, 0)
    source = SegmentSource()
    source.refill(AgentPolicy(agent, explore=True), collector, steps)
    return source.sample()


def test_an_update_is_epochs_of_minibatches_on_named_terms():
    torch.manual_seed(0)
    agent = make_agent("ppo", (4,), 2, False, {"epochs": 3, "minibatches": 4, "value_coef": 0.5})
    batch = _phase(agent)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    terms = logged_update(agent, {MAIN: batch})
    assert set(terms) == {"actor/clip", "actor/entropy", "value/mse"}
    assert agent.weight_of("value/mse") == 0.5 and agent.weight_of("actor/entropy") == 0.0
    assert agent._standalone.state_dict()["state"][0]["step"] == 3 * 4  # one Adam step each
    assert any(not torch.equal(before[k], v) for k, v in agent.state_dict().items())


def test_the_first_minibatch_sees_ratio_one():
    """Log-probs of the behaviour are the current policy's: before any step the clipped
    objective is minus the mean normalised advantage, i.e. 0."""
    agent = make_agent("ppo", (4,), 2, False)
    prepared = agent.prepare(_phase(agent))
    terms = agent.loss_terms(prepared)
    assert terms["actor/clip"].item() == pytest.approx(0.0, abs=1e-6)


def test_on_policy_runs_refuse_a_random_prefill(tmp_path):
    agent = make_agent("ppo", (4,), 2, False)
    cfg = TrainingConfig(collect_every=64, updates_per_collect=1, prefill=64)
    with pytest.raises(ValueError, match="prefill must be 0"):
        train(agent, lambda t: make_env("point", {}), [0], 2, budget=128, seed=0, config=cfg,
              run_dir=tmp_path)


@pytest.mark.slow
def test_learns_the_point_mass(tmp_path):
    # a random policy scores about -45 over 50 steps, heading straight for the goal about -3.4
    L.seed_everything(0, verbose=False)
    agent = make_agent("ppo", (4,), 2, False, {"minibatches": 8, "init_log_std": -0.5})
    cfg = TrainingConfig(collect_every=512, updates_per_collect=1, prefill=0, eval_every=2048,
                         eval_episodes=10, checkpoint_every=10_000)
    result = train(agent, lambda t: make_env("point", {"dim": 2, "max_steps": 50}), [0], 2,
                   budget=8192, seed=0, config=cfg, run_dir=tmp_path)
    assert result.returns[0] < -30 and result.returns[-1] > -15, result.returns


def test_initial_policy_is_centred_with_the_configured_spread():
    """The library's init rule runs after construction: the policy output still starts small
    and the log-std at its configured value, and a transfer re-init draws them the same way."""
    from lightning_wm.transfer import reinit
    agent = make_agent("ppo", (4,), 2, False, {"init_log_std": -0.7})
    actor = agent.components["actor"]
    assert torch.equal(actor.log_std.value, torch.full((2,), -0.7))
    assert actor.out.weight.abs().max() < 0.01 * 1.0  # Glorot bound sqrt(6 / 66) ~ 0.3, × 0.01
    reinit(actor)
    assert torch.equal(actor.log_std.value, torch.full((2,), -0.7))
    assert 0 < actor.out.weight.abs().max() < 0.01
