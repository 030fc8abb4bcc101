"""Dreamer (V1): components and addressing, declared capabilities, one update, frozen parts,
acting and its recurrent state, λ-returns by hand, determinism, modular transfer, and train()
with an exact resume. The update's seams (several streams, callbacks' extra terms, term hooks,
one optimisation path under a Trainer) are in test_dreamer_update.py."""
from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
from torch import nn

from lightning_wm.agents import make_agent
from lightning_wm.agents.dreamer import DreamerAgent, resolve_config
from lightning_wm.agents.parts import DynamicsActorCritic, WorldModel
from lightning_wm.agents.protocol import DataNeeds, Embeds, MetaRewards, Reconstructs
from lightning_wm.checkpoints import seal
from lightning_wm.components import select
from lightning_wm.envs import make_env
from lightning_wm.losses import kl_free_nats, lambda_returns
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.testing import CrashAfter, logged_update, same, snapshot
from lightning_wm.training import LAST, MODEL, train
from lightning_wm.transfer import MODULAR_DEFAULT, ModularTransfer, freeze, reinit

NAMES = {"encoder", "representation", "transition", "decoder", "reward", "value", "actor"}
TERMS = {"decoder/nll", "reward/nll", "transition/kl", "actor/return", "value/mse"}
OBS, ACT = (4,), 2


def agent(obs_shape=OBS, seed=0, **config) -> DreamerAgent:
    torch.manual_seed(seed)
    return make_agent("dreamer", obs_shape, ACT, False, {"size": "tiny", **config})


def batch(agent: DreamerAgent, n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    T = agent.sequence_length
    shape = agent.obs_shape
    if len(shape) == 3:
        obs = torch.randint(0, 256, (n, T, *shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.randn(n, T, *shape, generator=g)
    action = torch.rand(n, T, ACT, generator=g) * 2 - 1
    action[:, 0] = 0.0
    is_first = torch.zeros(n, T, dtype=torch.bool)
    is_first[:, 0] = True
    return {"obs": obs, "action": action, "reward": torch.randn(n, T, generator=g),
            "is_first": is_first, "is_terminal": torch.zeros(n, T, dtype=torch.bool),
            "task_id": torch.zeros(n, T, dtype=torch.long)}


def update(a: DreamerAgent, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One standalone update on the single stream ``b``; the named terms it logged."""
    return logged_update(a, {"main": b})


# -- structure ------------------------------------------------------------------------------------
def test_components_and_addresses():
    a = agent()
    assert set(a.components) == NAMES
    found = select(a.components, ["transition.action_input", "reward.out", "value.out", "actor",
                                  "reward.hidden", "actor.out"])
    action_input = found["transition.action_input"]
    assert isinstance(action_input, nn.Linear) and action_input.in_features == ACT
    assert {n for n, _ in action_input.named_parameters()} == {"weight"}  # the action weights alone
    assert found["reward.out"].out_features == 1 and found["value.out"].out_features == 1
    assert found["actor.out"].out_features == 2 * ACT
    for name in MODULAR_DEFAULT:  # the modular preset resolves on Dreamer
        select(a.components, name)
    assert a.sequence_length == resolve_config("tiny", {})["seq_len"]
    # optimisers cover the components exactly, in three disjoint groups
    assert a.optimiser_groups() == {
        "model": ["encoder", "representation", "transition", "decoder", "reward"],
        "value": ["value"], "actor": ["actor"]}
    groups = [{id(p) for g in o.param_groups for p in g["params"]}
              for o in a.configure_optimizers()]
    assert sum(map(len, groups)) == len(set().union(*groups))
    assert set().union(*groups) == {id(p) for p in a.components.parameters()}
    # the parts hold no parameters: checkpoints see components.*, meta_ready and nothing else
    assert {k.split(".")[0] for k in a.state_dict()} == {"components", "meta_ready"}
    assert isinstance(a.world_model, WorldModel) and isinstance(a.behaviour, DynamicsActorCritic)
    assert a.world_model.components is a.components is a.behaviour.components


def test_declared_capabilities():
    a = agent()
    assert isinstance(a, Reconstructs) and isinstance(a, MetaRewards)
    assert not isinstance(a, Embeds)
    assert a.data_needs() == DataNeeds(sequence_length=6, absorbing=None)
    assert a.meta_rewards_installed() and not agent(meta_sources=1).meta_rewards_installed()
    assert not a.automatic_optimization  # what training reads to let DDP find unused parameters
    for probed in ("ddp_find_unused_parameters", "absorbing_replay"):
        assert not hasattr(a, probed), probed
    b = batch(a)
    recon, target = a.reconstruct(b["obs"][0], b["action"][0])
    assert recon.shape == target.shape == (a.sequence_length, *OBS)
    assert torch.equal(target, b["obs"][0])


def test_components_added_or_wrapped_by_callbacks_are_optimised():
    """configure_optimizers reads the groups when called: a component a callback adds at setup
    is trained by its group's optimiser; a wrapped one is the one the world model calls."""
    a = agent()
    a.add_component("discount", nn.Linear(a.feature_size, 1), "model")
    model_opt = a.configure_optimizers()[0]
    optimised = {id(p) for g in model_opt.param_groups for p in g["params"]}
    assert {id(p) for p in a.components["discount"].parameters()} <= optimised
    calls = []

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            calls.append(x.shape)
            return self.inner(x)

    a.wrap_component("encoder", Spy)
    a.world_model.loss(batch(a))
    assert calls and calls[0][:2] == (4, a.sequence_length)


def test_sizes_and_builder_errors():
    paper = resolve_config("paper", {})
    assert (paper["deter"], paper["stoch"], paper["depth"], paper["seq_len"]) == (200, 30, 32, 50)
    assert (paper["model_lr"], paper["value_lr"], paper["actor_lr"]) == (6e-4, 8e-5, 8e-5)
    assert (paper["horizon"], paper["gamma"], paper["lam"]) == (15, 0.99, 0.95)
    assert (paper["free_nats"], paper["clip"], paper["expl_noise"]) == (3.0, 100.0, 0.3)
    assert agent(seq_len=3).sequence_length == 3
    with pytest.raises(ValueError, match="continuous"):
        make_agent("dreamer", OBS, ACT, True)
    with pytest.raises(ValueError, match="images or flat vectors"):
        make_agent("dreamer", (8, 8), ACT, False)
    with pytest.raises(ValueError, match=r"\[C, 64, 64\]"):
        make_agent("dreamer", (3, 32, 32), ACT, False)
    with pytest.raises(TypeError, match="bogus"):
        agent(bogus=1)
    with pytest.raises(ValueError, match="size"):
        agent(size="huge")


# -- losses by hand -------------------------------------------------------------------------------
def test_lambda_returns_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0])
    v = torch.tensor([10.0, 20.0, 30.0])
    boot = torch.tensor(40.0)
    g, lam = 0.5, 0.5
    # backwards from R_3 = 40: R_t = r_t + g[(1 - lam) v_{t+1} + lam R_{t+1}]
    r2 = 3 + 0.5 * (0.5 * 40 + 0.5 * 40)        # 23
    r1 = 2 + 0.5 * (0.5 * 30 + 0.5 * r2)        # 15.25
    r0 = 1 + 0.5 * (0.5 * 20 + 0.5 * r1)        # 9.8125
    got = lambda_returns(r, v, g, boot, lam)
    assert torch.allclose(got, torch.tensor([r0, r1, r2]))
    # λ = 1: discounted return bootstrapped at the end; λ = 0: one-step TD targets
    mc = torch.tensor([1 + 1 + 0.75 + 5.0, 2 + 1.5 + 10, 3 + 20.0])
    assert torch.allclose(lambda_returns(r, v, g, boot, 1.0), mc)
    assert torch.allclose(lambda_returns(r, v, g, boot, 0.0), torch.tensor([11.0, 17.0, 23.0]))
    # batched, with per-step discounts (a zero discount cuts the bootstrap)
    d = torch.tensor([[0.5], [0.0], [0.5]])
    out = lambda_returns(r[:, None], v[:, None], d, boot[None], lam)
    assert out.shape == (3, 1) and float(out[1, 0]) == 2.0


def test_kl_free_nats():
    kl = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = kl_free_nats(kl, 3.0)
    assert float(loss.detach()) == 3.0
    loss.backward()
    assert torch.count_nonzero(kl.grad) == 0  # below the free nats: no pull
    assert float(kl_free_nats(torch.tensor([4.0, 6.0]), 3.0)) == 5.0


# -- one update -----------------------------------------------------------------------------------
@pytest.mark.parametrize("obs_shape", [OBS, (3, 64, 64)], ids=["vector", "pixels"])
def test_update_trains_every_component_and_names_terms(obs_shape):
    a = agent(obs_shape, free_nats=0.0)  # else the prior may sit below the free nats
    before = snapshot(a.components)
    terms = update(a, batch(a))
    assert set(terms) == TERMS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    after = snapshot(a.components)
    for name in NAMES:
        changed = [k for k in before
                   if k.startswith(name + ".") and not torch.equal(before[k], after[k])]
        assert changed, name


def test_frozen_components_and_switched_off_terms_stay_put():
    a = agent(free_nats=0.0)
    freeze(select(a.components, ["encoder", "transition.action_input", "actor", "value"]))
    a.set_loss_weight("decoder/*", 0.0)  # the decoder's only loss: its group part gets no grad
    before = snapshot(a.components)
    for seed in range(2):
        update(a, batch(a, seed=seed))
    after = snapshot(a.components)
    fixed = ("encoder.", "transition.action_input.", "actor.", "value.", "decoder.")
    for k in before:
        assert torch.equal(before[k], after[k]) == k.startswith(fixed), k


def test_all_model_terms_off_skips_the_model_group():
    a = agent()
    for term in ("decoder/*", "reward/*", "transition/*"):
        a.set_loss_weight(term, 0.0)
    before = snapshot(a.components)
    update(a, batch(a))
    after = snapshot(a.components)
    for k in before:
        moved = not torch.equal(before[k], after[k])
        assert moved == k.startswith(("actor.", "value.")), k


def test_same_seed_same_update():
    a, b = agent(seed=3), agent(seed=3)
    torch.manual_seed(7)
    ta = update(a, batch(a))
    torch.manual_seed(7)
    tb = update(b, batch(b))
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    assert same(snapshot(a), snapshot(b))


def test_entropy_bonus_is_a_named_actor_term_that_moves_only_the_actor():
    plain, bonus = agent(seed=3, free_nats=0.0), agent(seed=3, free_nats=0.0, actor_ent=0.1)
    torch.manual_seed(7)
    update(plain, batch(plain))
    torch.manual_seed(7)
    terms = update(bonus, batch(bonus))
    assert set(terms) == TERMS | {"actor/entropy"}
    before, after = snapshot(plain.components), snapshot(bonus.components)
    for k in before:  # the model steps first, the critic's targets come before the bonus' draw
        assert torch.equal(before[k], after[k]) != k.startswith("actor."), k


def test_update_needs_a_main_stream():
    a = agent()
    with pytest.raises(KeyError, match="'main' stream"):
        a.update(batch(a))  # a plain batch, not {stream: batch}


# -- acting ---------------------------------------------------------------------------------------
def test_act_shapes_range_and_reset_on_first():
    a = agent()
    a.eval()
    obs = torch.randn(3, *OBS)
    state = a.initial_state(3)
    action, state = a.act(obs, state, explore=True)
    assert action.shape == (3, ACT) and action.abs().max() <= 1.0
    latent, prev = state
    assert latent.deter.shape == (3, 16) and latent.stoch.shape == (3, 4)
    assert torch.equal(prev, action)
    _, state = a.act(obs, state, explore=False)
    reset = a.reset_state(state, torch.tensor([True, False, False]))
    assert torch.count_nonzero(reset[0].deter[0]) == 0 and torch.count_nonzero(reset[1][0]) == 0
    assert torch.equal(reset[0].deter[1:], state[0].deter[1:])
    # a reset entry acts exactly like a fresh episode, given the same posterior noise
    torch.manual_seed(5)
    greedy_reset, _ = a.act(obs, reset, explore=False)
    torch.manual_seed(5)
    greedy_fresh, _ = a.act(obs, a.initial_state(3), explore=False)
    assert torch.equal(greedy_reset[0], greedy_fresh[0])
    assert not torch.equal(greedy_reset[1], greedy_fresh[1])


def test_exploration_noise_spreads_actions():
    a = agent(expl_noise=0.3)
    obs = torch.zeros(1, *OBS).expand(500, *OBS)
    greedy, _ = a.act(obs, a.initial_state(500), explore=False)
    noisy, _ = a.act(obs, a.initial_state(500), explore=True)
    assert noisy.std(0).min() > 0.2 and noisy.abs().max() <= 1.0
    assert greedy.abs().max() < 1.0


# -- modular transfer -----------------------------------------------------------------------------
def test_modular_default_preset_on_dreamer(tmp_path):
    src = agent(seed=1)
    update(src, batch(src))
    path = tmp_path / "source.ckpt"
    torch.save({"state_dict": src.state_dict()}, path)
    seal(path)  # a source is read only with a sidecar matching its digest
    tgt = agent(seed=2)
    ref = copy.deepcopy(tgt.components)
    torch.manual_seed(4)
    ModularTransfer(str(path), "default", fraction=0.2).apply(tgt)
    torch.manual_seed(4)  # the same fresh draws, coarse addresses first
    for module in (ref["actor"], ref["transition"].action_input, ref["reward"].out,
                   ref["value"].out):
        reinit(module)
    c, s = tgt.components, src.components
    for name in ("encoder", "representation", "decoder"):
        assert same(snapshot(c[name]), snapshot(s[name])), name
    for part in ("state_input", "cell", "prior"):
        assert same(snapshot(getattr(c["transition"], part)),
                    snapshot(getattr(s["transition"], part))), part
    action_w = c["transition"].action_input.weight
    assert torch.equal(action_w, ref["transition"].action_input.weight)
    assert not torch.equal(action_w, s["transition"].action_input.weight)
    assert same(snapshot(c["actor"]), snapshot(ref["actor"]))
    for head in ("reward", "value"):
        assert same(snapshot(c[head].hidden), snapshot(s[head].hidden))
        for k, v in c[head].out.state_dict().items():
            expect = ref[head].out.state_dict()[k] + 0.2 * s[head].out.state_dict()[k]
            assert torch.allclose(v, expect), (head, k)


# -- train() end to end ---------------------------------------------------------------------------
CFG = TrainingConfig(collect_every=20, updates_per_collect=4, prefill=40, batch_size=4,
                     eval_every=80, eval_episodes=1, checkpoint_every=40)


def _train(tmp, budget=160, callbacks=(), obs="vector"):
    L.seed_everything(0, verbose=False)
    image = obs == "pixels"
    shape = (3, 64, 64) if image else (4,)
    a = make_agent("dreamer", shape, ACT, False, {"size": "tiny"})
    env = {"max_steps": 20, "image": image}
    result = train(a, lambda t: make_env("point", env), [0], ACT, budget=budget, seed=0,
                   config=CFG, run_dir=tmp, callbacks=callbacks)
    return a, result


def test_train_and_resume_continues_identically(tmp_path):
    full_agent, full = _train(tmp_path / "full")
    assert full.env_steps == 160 and full.steps == [0, 80, 160]
    assert full.updates == 7 * CFG.updates_per_collect  # global_step counts updates, not steps
    assert all(torch.isfinite(torch.tensor(full.returns)))

    crash = CrashAfter(100, tmp_path / "cut/checkpoints" / LAST)

    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(tmp_path / "cut", callbacks=[crash])
    resumed_agent, resumed = _train(tmp_path / "cut")
    assert resumed.resumed_from_step > 0
    assert resumed.returns == full.returns and resumed.updates == full.updates
    assert same(snapshot(resumed_agent), snapshot(full_agent))
    assert (tmp_path / "cut/checkpoints" / MODEL).exists()


def test_train_on_pixels(tmp_path):
    _, result = _train(tmp_path, budget=80, obs="pixels")
    assert result.env_steps == 80 and result.updates > 0
