"""DreamerV2: V1's agent composed from other parts, straight-through categoricals, KL balancing
by hand, the discount head, the reinforce actor and its entropy term, the slow target critic,
continuous and pixel inputs, and train() on the corridor with absorbing sampling and an exact
resume."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lightning_wm.agents import make_agent
from lightning_wm.agents.dreamer import DreamerAgent
from lightning_wm.agents.dreamer_v2 import DreamerV2Agent, resolve_config
from lightning_wm.agents.parts import SlowCriticActorCritic, WorldModel, frozen
from lightning_wm.agents.protocol import AbsorbingOptions, MetaRewards, Reconstructs
from lightning_wm.data.absorbing import AbsorbingReplay
from lightning_wm.envs import make_env
from lightning_wm.losses import balanced_kl, categorical_kl, kl_balance
from lightning_wm.nets.categorical import CategoricalLatent, OneHotActor
from lightning_wm.nets.dense import ActorHead
from lightning_wm.nets.rssm import RSSM
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.testing import CrashAfter, logged_update, same, snapshot
from lightning_wm.training import LAST, train

V1_NAMES = {"encoder", "representation", "transition", "decoder", "reward", "value", "actor"}
OBS, ACT = (6,), 3


def agent(obs_shape=OBS, discrete=True, seed=0, **config) -> DreamerAgent:
    torch.manual_seed(seed)
    return make_agent("dreamer_v2", obs_shape, ACT, discrete, {"size": "tiny", **config})


def batch(a: DreamerAgent, n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random sequences; every sequence ends on a terminal step followed by one absorbing step."""
    g = torch.Generator().manual_seed(seed)
    T, shape = a.sequence_length, a.obs_shape
    if len(shape) == 3:
        obs = torch.randint(0, 256, (n, T, *shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.randn(n, T, *shape, generator=g)
    if a.hparams.discrete:
        action = F.one_hot(torch.randint(0, ACT, (n, T), generator=g), ACT).float()
    else:
        action = torch.rand(n, T, ACT, generator=g) * 2 - 1
    action[:, 0] = 0.0
    is_first = torch.zeros(n, T, dtype=torch.bool)
    is_first[:, 0] = True
    is_terminal = torch.zeros(n, T, dtype=torch.bool)
    is_terminal[:, -2:] = True
    return {"obs": obs, "action": action, "reward": torch.randn(n, T, generator=g),
            "is_first": is_first, "is_terminal": is_terminal}


def update(a: DreamerAgent, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One standalone update on the single stream ``b``; the named terms it logged."""
    return logged_update(a, {"main": b})


# -- V2 is V1's agent with other parts ----------------------------------------------------------
def test_composed_from_v1s_agent_with_other_parts():
    a, v1 = agent(), make_agent("dreamer", OBS, ACT, False, {"size": "tiny"})
    assert type(a) is type(v1) is DreamerAgent  # one agent class; DreamerV2Agent builds it
    assert isinstance(DreamerV2Agent(OBS, ACT, "tiny"), DreamerAgent)
    assert isinstance(a, Reconstructs) and isinstance(a, MetaRewards)
    assert type(a.rssm) is type(v1.rssm) is RSSM
    assert type(a.world_model) is type(v1.world_model) is WorldModel
    assert isinstance(a.behaviour, SlowCriticActorCritic) and a.behaviour.reinforce
    assert a.target_value is a.behaviour.target
    for name in ("encoder", "representation", "transition", "decoder", "reward", "value"):
        assert type(a.components[name]) is type(v1.components[name]), name
    assert set(a.components) == V1_NAMES | {"discount"}
    # checkpoints keep their keys: the slow critic and its update count sit beside the components
    assert {k.split(".")[0] for k in a.state_dict()} == {"components", "meta_ready",
                                                        "target_value", "critic_updates"}
    assert isinstance(a.latent, CategoricalLatent) and a.latent.sample_size == 4 * 4
    assert isinstance(a.components["actor"], OneHotActor)
    assert all(m is not a.target_value for m in a.components.values())
    # three optimisers covering the components exactly; discount trains with the world model
    groups = [{id(p) for g in o.param_groups for p in g["params"]}
              for o in a.configure_optimizers()]
    assert sum(map(len, groups)) == len(set().union(*groups))
    assert set().union(*groups) == {id(p) for p in a.components.parameters()}
    assert {id(p) for p in a.components["discount"].parameters()} <= groups[0]
    assert a.optimiser_groups()["model"][-1] == "discount"


def test_sizes_hyperparameters_and_builder_errors():
    paper = resolve_config("paper", {})
    assert (paper["deter"], paper["stoch"], paper["classes"], paper["seq_len"]) == (600, 32, 32, 50)
    assert (paper["model_lr"], paper["actor_lr"], paper["value_lr"]) == (2e-4, 4e-5, 1e-4)
    assert (paper["horizon"], paper["gamma"], paper["lam"], paper["actor_ent"]) == (15, 0.999, 0.95,
                                                                                   1e-3)
    assert (paper["kl_balance"], paper["kl_scale"], paper["target_every"]) == (0.8, 0.1, 100)
    a = agent(kl_balance=0.7)
    assert a.hparams.kl_balance == 0.7 and a.hparams.deter == 16 and a.hparams.discrete
    assert a.latent.balance == 0.7
    assert a.data_needs().absorbing == AbsorbingOptions(discrete=True)
    assert agent(discrete=False).data_needs().absorbing == AbsorbingOptions(discrete=False)
    assert agent(absorbing=False).data_needs().absorbing is None
    assert a.data_needs().sequence_length == 6
    with pytest.raises(ValueError, match="images or flat vectors"):
        make_agent("dreamer_v2", (8, 8), ACT, True)
    with pytest.raises(ValueError, match="expl_noise"):
        agent(expl_noise=0.3)
    with pytest.raises(TypeError, match="bogus"):
        agent(bogus=1)
    with pytest.raises(TypeError, match="known: .*kl_balance"):
        resolve_config("tiny", {"bogus": 1})
    with pytest.raises(ValueError, match="actor_grad"):
        resolve_config("tiny", {"actor_grad": "both"})


# -- categorical latents and KL balancing -------------------------------------------------------
def test_straight_through_gradient_flows_through_categorical_samples():
    torch.manual_seed(0)
    latent = CategoricalLatent(groups=3, classes=5)
    params = torch.randn(2, 15, requires_grad=True)
    sample = latent.sample(params)
    groups = sample.detach().view(2, 3, 5)
    assert torch.equal(groups.sum(-1), torch.ones(2, 3)) and set(groups.unique().tolist()) == {0, 1}
    w = torch.randn(2, 15)
    (sample * w).sum().backward()
    expected, = torch.autograd.grad((params.view(2, 3, 5).softmax(-1).flatten(1) * w).sum(), params)
    assert params.grad.abs().sum() > 0 and torch.allclose(params.grad, expected)
    mode = latent.mode(params).detach().view(2, 3, 5)
    assert torch.equal(mode.argmax(-1), params.detach().view(2, 3, 5).argmax(-1))


def test_kl_balancing_by_hand():
    q = torch.tensor([[0.75, 0.25]]).log().requires_grad_()   # one group, two classes
    p = torch.tensor([[0.5, 0.5]]).log().requires_grad_()
    by_hand = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert math.isclose(float(categorical_kl(q, p)), by_hand, rel_tol=1e-6)
    value = balanced_kl(q, p, 0.8)
    assert math.isclose(float(value.detach()), by_hand, rel_tol=1e-6)   # the value is the plain KL
    g_post, g_prior = torch.autograd.grad(value, (q, p))
    full_post, full_prior = torch.autograd.grad(categorical_kl(q, p), (q, p))
    assert torch.allclose(g_prior, 0.8 * full_prior) and torch.allclose(g_post, 0.2 * full_post)
    # d KL / d prior logits = p − q: pulls the prior towards the posterior, with weight 0.8
    assert torch.allclose(g_prior, 0.8 * torch.tensor([[-0.25, 0.25]]))
    # the latent's kl is the balanced one; free nats clamp the mean with no gradient
    latent = CategoricalLatent(1, 2, balance=0.8)
    assert torch.allclose(latent.kl(q.flatten(-2), p.flatten(-2)), value)
    free = kl_balance(q, p, 0.8, free=1.0)
    assert float(free.detach()) == 1.0
    assert not any(g.abs().sum() for g in torch.autograd.grad(free, (q, p)))


# -- the discount head --------------------------------------------------------------------------
def test_discount_head_is_trained_on_terminals():
    a = agent(model_lr=1e-2)  # a fast world model: the test is about what it learns
    b = batch(a)
    terms, states = a.world_model.loss(b)
    logit = a.components["discount"](states.feature()).squeeze(-1)
    target = 1.0 - b["is_terminal"].float()
    expected = a.hparams.discount_scale * F.binary_cross_entropy_with_logits(logit, target)
    assert torch.allclose(terms["discount/nll"], expected)
    first = float(terms["discount/nll"])
    for _ in range(30):
        last = update(a, b)
    assert float(last["discount/nll"]) < 0.1 * first
    with torch.no_grad():
        _, states = a.world_model.loss(b)
        cont = a.world_model.predict_discount(states.feature())
    terminal = b["is_terminal"]
    assert cont[terminal].max() < 0.5 < cont[~terminal].min()


# -- the actor ----------------------------------------------------------------------------------
def test_reinforce_actor_reaches_only_the_actor_and_has_an_entropy_term():
    a = agent()
    b = batch(a)
    terms, states = a.world_model.loss(b)
    start = states.map(lambda x: x.detach().flatten(0, 1))
    outside = [p for name in a.components if name != "actor"
               for p in a.components[name].parameters()]
    with frozen(outside):  # what the update does around the actor's loss
        traj = a.behaviour.imagine(start, b["is_terminal"].flatten(0, 1).float())
        actor_terms, (returns, weight) = a.behaviour.actor_terms(traj)
    assert not traj.feat.requires_grad                       # reinforce: no dynamics backprop
    assert set(actor_terms) == {"actor/reinforce", "actor/entropy"}
    H, N = a.hparams.horizon, start.deter.shape[0]
    assert traj.feat.shape[:2] == (H + 1, N) and traj.action.shape == (H, N, ACT)
    assert returns.shape == (H, N) and weight.shape == (H + 1, N)
    assert torch.equal(weight[1], a.hparams.gamma * (1.0 - b["is_terminal"].flatten().float()))
    sum(actor_terms.values()).backward()
    for name, module in a.components.items():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert bool(grads) == (name == "actor"), name
    assert all(p.requires_grad for p in a.components.parameters())  # flags restored


def test_actor_changes_and_entropy_alone_raises_entropy():
    a = agent(actor_ent=1.0)
    feat = torch.randn(64, a.feature_size)
    before = snapshot(a.components["actor"])
    h0 = a.components["actor"].entropy(feat).mean()
    a.set_loss_weight("actor/reinforce", 0.0)                # the entropy term alone
    for seed in range(3):
        terms = update(a, batch(a, seed=seed))
    assert terms["actor/entropy"] < 0
    assert not same(before, snapshot(a.components["actor"]))
    assert a.components["actor"].entropy(feat).mean() > h0


def test_continuous_actions_backprop_through_the_dynamics():
    a = agent(discrete=False)
    assert isinstance(a.components["actor"], ActorHead) and not a.behaviour.reinforce
    before = snapshot(a.components)
    terms = update(a, batch(a))
    assert {"actor/return", "actor/entropy", "discount/nll", "value/mse"} <= set(terms)
    after = snapshot(a.components)
    for name in V1_NAMES | {"discount"}:
        assert any(not torch.equal(before[k], after[k]) for k in before
                   if k.startswith(name + ".")), name
    action, _ = a.act(torch.randn(5, *OBS), a.initial_state(5), explore=True)
    assert action.shape == (5, ACT) and action.abs().max() <= 1


# -- the slow target critic ---------------------------------------------------------------------
def test_target_critic_lags_and_syncs_every_n_updates():
    a = agent(target_every=3)
    assert not any(p.requires_grad for p in a.target_value.parameters())
    values = [snapshot(a.components["value"])]
    targets = []
    for seed in range(7):
        update(a, batch(a, seed=seed))
        values.append(snapshot(a.components["value"]))
        targets.append(snapshot(a.target_value))
    # before update k the value weights are values[k]; syncs happen before updates 0, 3 and 6
    for k, target in enumerate(targets):
        assert same(target, values[3 * (k // 3)]), k
        assert not same(target, values[k + 1]), k          # it lags the critic it copies
    assert int(a.critic_updates) == 7


# -- inputs ----------------------------------------------------------------------------------------
def test_grayscale_pixels_and_discrete_acting():
    a = agent((1, 64, 64))
    terms = update(a, batch(a, n=2))
    assert all(torch.isfinite(v) for v in terms.values())
    obs = torch.randint(0, 256, (3, 1, 64, 64), dtype=torch.uint8)
    action, state = a.act(obs, a.initial_state(3), explore=True)
    assert torch.equal(action.sum(-1), torch.ones(3)) and set(action.unique().tolist()) <= {0, 1}
    greedy, _ = a.act(obs, state, explore=False)
    assert torch.equal(greedy.sum(-1), torch.ones(3))
    assert a.components["decoder"](state[0].feature()).shape == (3, 1, 64, 64)


# -- train() end to end, with absorbing sampling ----------------------------------------------
class AbsorbingHook(L.Callback):
    """Keeps a handle on the replay the pipeline built from the agent's declared data needs."""

    def on_train_end(self, trainer, pl_module):
        self.replay = trainer.datamodule.driver.main.replay


CFG = TrainingConfig(collect_every=20, updates_per_collect=3, prefill=20, batch_size=4,
                     eval_every=60, eval_episodes=1, checkpoint_every=40)


def _train(tmp, callbacks=()):
    L.seed_everything(0, verbose=False)
    a = make_agent("dreamer_v2", (4,), 2, True, {"size": "tiny", "seq_len": 8})
    hook = AbsorbingHook()
    result = train(a, lambda t: make_env("corridor", {"length": 4, "max_steps": 6}), [0], 2,
                   budget=120, seed=0, config=CFG, run_dir=tmp, callbacks=[hook, *callbacks])
    return a, result, hook


def test_train_on_corridor_with_absorbing_steps_and_resume(tmp_path):
    full_agent, full, hook = _train(tmp_path / "full")
    assert isinstance(hook.replay, AbsorbingReplay)
    lengths = [len(ep["reward"]) for ep in hook.replay.episodes]
    # every corridor episode here has at most 7 steps: plain sampling of 8 could never start
    assert max(lengths) < 8
    assert full.env_steps == 120 and full.updates == 6 * CFG.updates_per_collect
    assert int(full_agent.critic_updates) == full.updates

    crash = CrashAfter(60, tmp_path / "cut/checkpoints" / LAST)

    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(tmp_path / "cut", callbacks=[crash])
    resumed_agent, resumed, _ = _train(tmp_path / "cut")
    assert resumed.resumed_from_step > 0
    assert resumed.returns == full.returns and resumed.updates == full.updates
    assert same(snapshot(resumed_agent), snapshot(full_agent))
