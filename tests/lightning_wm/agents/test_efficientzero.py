"""The EfficientZero agent: the replay-to-target mapping by hand, its named terms, acting, the
target network's schedule, and that it learns the corridor."""
from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lightning_wm.agents import check_agent_config, make_agent
from lightning_wm.agents.efficientzero import TERMS, EfficientZeroAgent
from lightning_wm.agents.parts.efficientzero_loss import (LatentStep, state_masks, taken_actions,
                                                          transitions)
from lightning_wm.agents.parts.muzero_targets import (EFFICIENTZERO_LOSS_WEIGHTS,
                                                      categorical_to_scalar,
                                                      inverse_value_transform)
from lightning_wm.agents.protocol import MAIN, ExtraTerm
from lightning_wm.envs import make_env
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.testing import logged_update, same, snapshot
from lightning_wm.training import train
from lightning_wm.transfer.base import freeze


def _agent(**config) -> EfficientZeroAgent:
    return make_agent("efficientzero", (8,), 2, True, {"size": "tiny", **config})


def _batch(batch: int = 16, length: int = 7, obs_dim: int = 8, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs": F.one_hot(torch.randint(0, obs_dim, (batch, length), generator=g),
                             obs_dim).float(),
            "action": F.one_hot(torch.randint(0, 2, (batch, length), generator=g), 2).float(),
            "reward": torch.randn(batch, length, generator=g),
            "is_first": torch.zeros(batch, length, dtype=torch.bool),
            "is_terminal": torch.zeros(batch, length, dtype=torch.bool)}


def _hand_built() -> dict:
    """Three windows of T = 5 (K = 2, n = 2). Row 0: o_3 is terminal (and o_4 starts the next
    episode); row 1: o_2 starts a new episode mid-window; row 2: an episode cut by its time limit
    after o_2, then absorbing steps (as the absorbing replay pads: reward 0, terminal, flagged).
    reward[j] arrives with o_j."""
    b = _batch(3, 5)
    b["reward"] = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0], [9.0, 1.0, 5.0, 6.0, 7.0],
                                [0.0, 0.5, 0.25, 0.0, 0.0]])
    b["is_terminal"][0, 3] = True
    b["is_first"][0, 4] = True
    b["is_first"][1, 2] = True
    b["is_absorbing"] = torch.zeros(3, 5, dtype=torch.bool)
    b["is_absorbing"][2, 3:] = True
    b["is_terminal"][2, 3:] = True
    b["action"] = F.one_hot(torch.tensor([[0, 1, 0, 1, 1], [0, 0, 1, 1, 0], [1, 1, 1, 0, 0]]),
                            2).float()
    return b


def test_replay_window_maps_onto_the_transition_window():
    b = _hand_built()
    reward, terminal, valid = transitions(b)
    assert torch.equal(reward, torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 5.0, 6.0, 7.0],
                                             [0.5, 0.25, 0.0, 0.0]]))
    assert terminal.tolist() == [[False, False, True, False], [False, False, False, False],
                                 [False, False, True, True]]
    assert valid.tolist() == [[True, True, True, False], [True, False, True, True],
                              [True, True, False, False]]
    # a_{t+k} is the one-hot at replay index k + 1
    assert taken_actions(b, 2).tolist() == [[1, 0], [0, 1], [1, 1]]
    acting, reached = state_masks(terminal, valid)
    assert acting.tolist() == [[True, True, True, False, False], [True, True, False, False, False],
                               [True, True, True, False, False]]
    assert reached.tolist() == [[True, True, True, True, False], [True, True, False, False, False],
                                [True, True, True, False, False]]


def test_reanalysed_targets_by_hand():
    agent = _agent(unroll=2, n_step=2, gamma=0.5, value_support=10, lstm_horizon=5)
    assert agent.sequence_length == 5
    # the target network's value is h⁻¹(1) everywhere: all mass on the atom +1
    out = agent.target["prediction"].value_head.out
    with torch.no_grad():
        out.bias.fill_(-50.0)
        out.bias[10 + 1] = 50.0
    v = float(inverse_value_transform(torch.tensor(1.0)))
    t = agent.reanalyse(_hand_built())
    # row 0: z_0 = r_0 + γ r_1 + γ² v(o_2); z_1 = r_1 + γ r_2 (o_3 terminal); z_2 = r_2
    assert t["value"][0].tolist() == pytest.approx([1 + 0.5 * 2 + 0.25 * v, 2 + 0.5 * 3, 3.0],
                                                   abs=1e-4)
    assert t["value_mask"][0].tolist() == [True, True, True]
    # row 1: the transition into o_2 is not stored (a new episode), so no return is known
    assert t["value_mask"][1].tolist() == [False, False, False]
    # value prefixes at steps 1..K: r_0, r_0 + r_1 (row 1: the second transition is missing)
    assert t["prefix"][0].tolist() == [1.0, 3.0] and t["prefix_mask"][0].tolist() == [True, True]
    assert t["prefix"][1].tolist() == [1.0, 1.0] and t["prefix_mask"][1].tolist() == [True, False]
    # row 2: z_0 bootstraps from o_2, the last real step; later returns are cut, hence unknown
    assert t["value"][2, 0].item() == pytest.approx(0.5 + 0.5 * 0.25 + 0.25 * v, abs=1e-4)
    assert t["value_mask"][2].tolist() == [True, False, False]
    assert t["prefix"][2].tolist() == [0.5, 0.75] and t["prefix_mask"][2].tolist() == [True, True]
    assert t["policy_mask"].tolist() == [[True, True, True], [True, True, False],
                                         [True, True, True]]
    assert t["consistency_mask"].tolist() == [[True, True], [True, False], [True, True]]
    assert t["policy"].shape == (3, 3, 2)
    assert torch.allclose(t["policy"].sum(-1), torch.ones(3, 3))
    # horizon 1: the prefixes are the single rewards
    short = _agent(unroll=2, n_step=2, lstm_horizon=1).reanalyse(_hand_built())
    assert short["prefix"][0].tolist() == [1.0, 2.0]


def test_old_data_bootstraps_sooner_by_hand():
    # EfficientZero's off-policy correction with budget 10 (the horizon shrinks by one per 3
    # steps of age): row 0 is fresh (age 1, n = 2), row 2 is old (age 4, n = 1)
    agent = _agent(unroll=2, n_step=2, gamma=0.5, value_support=10, lstm_horizon=5,
                   off_policy_budget=10)
    assert agent.data_needs().data_age and not _agent().data_needs().data_age
    out = agent.target["prediction"].value_head.out
    with torch.no_grad():
        out.bias.fill_(-50.0)
        out.bias[10 + 1] = 50.0
    v = float(inverse_value_transform(torch.tensor(1.0)))
    batch = {**_hand_built(), "age": torch.tensor([1, 1, 4])}
    t = agent.reanalyse(batch)
    # row 0 as with a fixed n = 2: z_0 = r_0 + γ r_1 + γ² v(o_2)
    assert t["value"][0, 0].item() == pytest.approx(1 + 0.5 * 2 + 0.25 * v, abs=1e-4)
    # row 2 with n = 1: z_0 = r_0 + γ v(o_1), z_1 = r_1 + γ v(o_2); o_3 is absorbing: unknown
    assert t["value"][2, :2].tolist() == pytest.approx([0.5 + 0.5 * v, 0.25 + 0.5 * v], abs=1e-4)
    assert t["value_mask"][2].tolist() == [True, True, False]
    with pytest.raises(KeyError, match="age"):
        agent.reanalyse(_hand_built())


def test_reanalysed_puct_targets_carry_root_noise_not_the_tie_break():
    # an untrained agent's heads start at zero: a uniform prior and equal Q everywhere. Without
    # noise, pUCT's tie-break visits the actions in index order, so 4 simulations over 6 actions
    # never visit actions 4 and 5 and every target teaches the policy to drop them
    batch = {**_batch(2, 7), "action": F.one_hot(torch.zeros(2, 7, dtype=torch.long), 6).float()}
    make = lambda **c: make_agent("efficientzero", (8,), 6, True,  # noqa: E731
                                  {"size": "tiny", "search": "puct", "simulations": 4, **c})
    torch.manual_seed(0)
    biased = make(reanalyse_noise=False).reanalyse(batch)["policy"]
    assert torch.equal(biased, torch.tensor([0.25] * 4 + [0.0] * 2).expand_as(biased))
    # with EfficientZero's root noise each root's Dirichlet draw decides which 4 are searched
    torch.manual_seed(0)
    noisy = make().reanalyse(batch)["policy"].flatten(0, 1)
    assert (noisy[:, 4:].sum(-1) > 0).any()
    assert torch.allclose(noisy.sum(-1), torch.ones(len(noisy)))
    assert len({tuple(row.tolist()) for row in noisy}) > 1


def test_search_step_turns_value_prefixes_into_rewards():
    agent = _agent(lstm_horizon=2)
    torch.manual_seed(0)
    for p in agent.components.parameters():  # non-zero heads, so prefixes differ from 0
        torch.nn.init.normal_(p, std=0.3)
    agent.eval()
    step = LatentStep(agent.components, 2, 10, 10)
    latent = agent.components["representation"](torch.eye(8)[:2])
    state = step.root_state(latent)
    action = torch.tensor([0, 1])
    s1, r1, _, _ = step(state, action)
    assert torch.allclose(r1, s1[3]) and s1[4].tolist() == [1, 1]  # from the root: the prefix
    s2, r2, _, _ = step(s1, action)
    assert torch.allclose(r2, s2[3] - s1[3])  # the difference of successive prefixes
    assert s2[4].tolist() == [2, 2] and not s2[1].any() and not s2[2].any()  # LSTM reset at H
    s3, r3, _, _ = step(s2, action)
    assert torch.allclose(r3, s3[3])  # after the reset, the prefix itself
    _, logits, _ = agent.components["dynamics"](s2[0], action, (s2[1], s2[2]))
    assert torch.allclose(s3[3], categorical_to_scalar(logits, 10))


def test_one_update_trains_every_component_on_named_weighted_terms():
    torch.manual_seed(0)
    agent = _agent()
    before = {k: snapshot(m) for k, m in agent.components.items()}
    terms = logged_update(agent, {MAIN: _batch()})
    assert set(terms) == set(TERMS)
    for term, key in TERMS.items():
        assert agent.weight_of(term) == EFFICIENTZERO_LOSS_WEIGHTS[key]
    for name, module in agent.components.items():
        assert not same(before[name], snapshot(module)), name
    assert int(agent.updates) == 1


def test_a_frozen_component_stays_put_and_extra_terms_apply():
    torch.manual_seed(0)
    agent = _agent()
    freeze(agent.components["representation"])
    agent.add_loss_term(ExtraTerm("prediction/extra", "all", lambda a, b: torch.tensor(0.5)))
    before = snapshot(agent.components["representation"])  # running statistics included
    other = snapshot(agent.components["dynamics"])
    terms = logged_update(agent, {MAIN: _batch(), "source": _batch(seed=1)})
    assert "prediction/extra" in terms and "source:prediction/policy" in terms
    assert same(before, snapshot(agent.components["representation"]))
    assert not same(other, snapshot(agent.components["dynamics"]))


def test_acts_with_one_hot_actions_deterministic_under_a_seed():
    for search in ("gumbel", "puct"):
        agent = _agent(search=search, simulations=4)
        obs = torch.eye(8)[:3]
        agent.train()
        runs = []
        for _ in range(2):
            torch.manual_seed(3)
            runs.append([agent.act(obs, agent.initial_state(3), explore=e)[0]
                         for e in (True, False)])
        for action in runs[0]:
            assert action.shape == (3, 2) and torch.equal(action.sum(-1), torch.ones(3))
            assert set(action.unique().tolist()) <= {0.0, 1.0}
        assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
        assert agent.training and agent.components["prediction"].training  # modes restored


def test_pixel_observations():
    torch.manual_seed(0)
    agent = make_agent("efficientzero", (2, 16, 16), 3, True, {"simulations": 2})
    obs = torch.randint(0, 255, (4, 7, 2, 16, 16), dtype=torch.uint8)
    action, _ = agent.act(obs[:, 0], None, explore=True)
    assert action.shape == (4, 3)
    batch = {**_batch(4, 7), "obs": obs,
             "action": F.one_hot(torch.randint(0, 3, (4, 7)), 3).float()}
    assert set(logged_update(agent, {MAIN: batch})) == set(TERMS)


def test_target_network_is_not_trained_and_syncs_on_schedule():
    torch.manual_seed(0)
    agent = _agent(target_every=2)
    assert "updates" in agent.state_dict() and any(k.startswith("target.")
                                                   for k in agent.state_dict())
    assert not any(p.requires_grad for p in agent.target.parameters())
    initial = snapshot(agent.components)
    agent.update({MAIN: _batch(seed=0)})  # update 0 syncs first (a transfer would be copied)
    agent.update({MAIN: _batch(seed=1)})
    assert same(snapshot(agent.target), initial)
    trained = snapshot(agent.components)
    assert not same(trained, initial)
    agent.update({MAIN: _batch(seed=2)})  # the 2nd update's start: synced, then trained on
    assert same(snapshot(agent.target), trained)
    assert not same(snapshot(agent.components), trained)


def test_updates_are_deterministic_under_a_seed():
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        agent = _agent()
        agent.update({MAIN: _batch()})
        states.append(snapshot(agent))
    assert same(*states)


def test_config_checks_and_registry():
    check_agent_config("efficientzero", {"size": "paper", "search": "gumbel", "lr": 0.2})
    with pytest.raises(TypeError, match="bogus"):
        check_agent_config("efficientzero", {"bogus": 1})
    with pytest.raises(ValueError, match="search must be one of"):
        check_agent_config("efficientzero", {"search": "beam"})
    with pytest.raises(ValueError, match="discrete"):
        make_agent("efficientzero", (4,), 2, False)
    agent = make_agent("efficientzero", (4,), 2, True, {"size": "paper"})
    assert agent.data_needs().sequence_length == 5 + 5 + 1
    assert agent.data_needs().absorbing is not None
    assert make_agent("efficientzero", (4,), 2, True, {"absorbing": False}).data_needs().absorbing is None
    assert agent.cfg["search"] == "puct" and agent.cfg["simulations"] == 50
    with pytest.raises(ValueError, match="windows of 7 steps"):
        _agent().update({MAIN: _batch(length=5)})


@pytest.mark.slow
def test_learns_the_corridor(tmp_path):
    """Corridor of 5 cells (optimal return 0.97; a uniformly random policy scores 0.50 ± 0.01,
    measured over 2000 episodes; the untrained greedy agent never arrives: -0.2). γ 0.95 makes
    a step's cost visible in the values; ``c_scale`` 0.02 keeps the Gumbel search from turning
    Q differences of noise into near-certain choices (its per-node min-max rescale stretches
    any difference between two actions to 0 and 1). About 50 s of CPU."""
    L.seed_everything(0, verbose=False)
    agent = make_agent("efficientzero", (5,), 2, True,
                       {"lr": 3e-3, "gamma": 0.95, "c_scale": 0.02, "simulations": 4})
    cfg = TrainingConfig(collect_every=50, updates_per_collect=15, prefill=200, batch_size=32,
                         eval_every=400, eval_episodes=3, checkpoint_every=100_000)
    result = train(agent, lambda t: make_env("corridor", {"length": 5}), [0], 2, budget=1200,
                   seed=0, config=cfg, run_dir=tmp_path)
    assert result.returns[0] < 0.0 and result.returns[-1] >= 0.9, result.returns


@pytest.mark.parametrize("optimiser", ["sgd", "adam"])
def test_learning_rate_schedule_sets_every_groups_rate_per_update(optimiser):
    agent = _agent(optimiser=optimiser, lr=0.2, lr_warmup=2, lr_decay_rate=0.5, lr_decay_steps=1)
    before = {n: p.detach().clone() for n, p in agent.components.named_parameters()}
    agent.update({MAIN: _batch(length=agent.sequence_length)})
    opt = agent._standalone
    assert [g["lr"] for g in opt.param_groups] == [0.0]
    # the first update at rate 0 moves no weight (BatchNorm statistics may move)
    assert all(torch.equal(p, before[n]) for n, p in agent.components.named_parameters())
    rates = []
    for _ in range(3):
        agent.update({MAIN: _batch(length=agent.sequence_length)})
        rates.append(opt.param_groups[0]["lr"])
    assert rates == pytest.approx([0.1, 0.2, 0.1])  # warm-up 1/2, full, then halved


def test_constant_schedule_leaves_a_groups_own_rate_alone():
    agent = _agent(lr=0.01)
    agent.update({MAIN: _batch(length=agent.sequence_length)})
    group = agent._standalone.param_groups[0]
    group["lr"] = 0.003  # e.g. a callback's choice
    agent.update({MAIN: _batch(length=agent.sequence_length)})
    assert group["lr"] == 0.003 and "initial_lr" not in group


def test_learning_rate_schedule_is_checked():
    with pytest.raises(ValueError, match="lr_decay_rate"):
        _agent(lr_decay_rate=0.0)
    with pytest.raises(ValueError, match="lr_warmup"):
        _agent(lr_warmup=-1)


@pytest.mark.parametrize("key", ["min_delta", "gumbel_min_delta"])
def test_the_q_floors_must_be_positive(key):
    with pytest.raises(ValueError, match=key):
        _agent(**{key: 0.0})


def test_acting_temperature_follows_the_schedule(monkeypatch):
    import lightning_wm.agents.efficientzero as module
    seen = []
    real = module.search

    def spy(*args, **kw):
        seen.append(kw["temperature"])
        return real(*args, **kw)

    monkeypatch.setattr(module, "search", spy)
    agent = _agent(search="puct", simulations=2, temperature=1.0, temperature_halvings=[1, 3])
    for update in (0, 1, 2, 3, 9):
        agent.updates.fill_(update)
        agent.act(torch.eye(8)[:2], agent.initial_state(2), explore=True)
    assert seen == [1.0, 0.5, 0.5, 0.25, 0.25]
    for bad in ([3, 1], [-1], "10"):
        with pytest.raises(ValueError, match="temperature_halvings"):
            _agent(temperature_halvings=bad)
