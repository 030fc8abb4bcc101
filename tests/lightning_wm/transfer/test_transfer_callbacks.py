"""Transfer callbacks on a tiny agent, with real Lightning checkpoints, fits and resumes."""
import copy

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_wm.agents.base import Agent
from lightning_wm.callbacks import CALLBACK_REGISTRY, describe_callbacks, make_callback
from lightning_wm.checkpoints import seal
from lightning_wm.components import UnknownComponentError
from lightning_wm.diagnostics import DIAGNOSTICS, EmbeddingAgreement, make_diagnostic
from lightning_wm.transfer import (
    MODULAR_DEFAULT,
    MODULAR_FULL,
    TRANSFER_CALLBACKS,
    FractionalTransfer,
    FreezeComponents,
    LoadComponents,
    LossSchedule,
    ModularTransfer,
    ResetComponents,
    reinit,
)

OBS, LATENT, ACT = 4, 8, 2

# expected noise from running without a logger and resuming mid-epoch on a plain list loader
pytestmark = [
    pytest.mark.filterwarnings("ignore:You called `self.log"),
    pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before"),
    pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:Found `dataloader_iter` argument"),
    pytest.mark.filterwarnings("ignore:You are using the `dataloader_iter` step flavor"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated"),
]


class Transition(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.GRUCell(LATENT, LATENT)
        self.action_input = nn.Linear(ACT, LATENT)

    def forward(self, z, a):
        return self.hidden(self.action_input(a), z)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(LATENT, LATENT), nn.LayerNorm(LATENT), nn.ELU())
        self.out = nn.Linear(LATENT, 1)

    def forward(self, z):
        return self.out(self.hidden(z))


class FakeAgent(Agent):
    def __init__(self, seed: int, world_model: bool = True):
        torch.manual_seed(seed)
        parts = {"encoder": nn.Linear(OBS, LATENT), "transition": Transition(),
                 "reward": Head(), "value": Head(), "actor": nn.Linear(LATENT, ACT)}
        if world_model:
            parts.update(representation=nn.Linear(LATENT, LATENT), decoder=nn.Linear(LATENT, OBS))
        super().__init__(parts)
        self.seen = []  # (global_step, weight of structure/d1, encoder requires_grad)

    def loss_terms(self, batch):
        c = self.components
        z = torch.tanh(c["encoder"](batch["obs"]))
        if "representation" in c:
            z = c["representation"](z)
        nxt = c["transition"](z, torch.tanh(c["actor"](z)))
        terms = {"reward/mse": (c["reward"](nxt).squeeze(-1) - batch["rew"]).pow(2).mean(),
                 "value/mse": c["value"](z).pow(2).mean(),
                 "structure/d1": nxt.pow(2).mean()}
        if "decoder" in c:
            terms["decoder/mse"] = (c["decoder"](z) - batch["obs"]).pow(2).mean()
        return terms

    def update(self, batch):
        self.seen.append((self.trainer.global_step, self.weight_of("structure/d1"),
                          self.components["encoder"].weight.requires_grad))
        return super().update(batch)

    def act(self, obs, state, explore):
        raise NotImplementedError

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _loader():
    g = torch.Generator().manual_seed(0)
    data = [{"main": {"obs": torch.randn(5, OBS, generator=g), "rew": torch.randn(5, generator=g)}}
            for _ in range(64)]
    return DataLoader(data, batch_size=None)


def _fit(agent, max_steps, callbacks=(), ckpt_path=None):
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=list(callbacks))
    trainer.fit(agent, train_dataloaders=_loader(), ckpt_path=ckpt_path)
    return trainer


def _sd(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    a, b = _sd(a) if isinstance(a, nn.Module) else a, _sd(b) if isinstance(b, nn.Module) else b
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained source agent saved as a real Lightning checkpoint."""
    agent = FakeAgent(seed=1)
    trainer = _fit(agent, max_steps=1)
    path = str(tmp_path_factory.mktemp("src") / "source.ckpt")
    trainer.save_checkpoint(path)
    seal(path)  # a source is read only with a sidecar matching its digest
    return path, agent.components


def test_load_components_full_copy(source):
    path, src = source
    agent = FakeAgent(seed=2)
    fresh = copy.deepcopy(agent.components)
    LoadComponents(path, ["encoder", "transition"]).apply(agent)
    c = agent.components
    assert _same(c["encoder"], src["encoder"]) and _same(c["transition"], src["transition"])
    assert _same(c["reward"], fresh["reward"]) and not _same(c["reward"], src["reward"])


def test_fractional_is_reinit_plus_fraction_of_source(source):
    path, src = source
    agent = FakeAgent(seed=2)
    reference = copy.deepcopy(agent.components["reward"])
    torch.manual_seed(9)
    FractionalTransfer(path, ["reward"], fraction=0.3).apply(agent)
    torch.manual_seed(9)
    reinit(reference)
    got, ref, s = _sd(agent.components["reward"]), _sd(reference), _sd(src["reward"])
    for key in got:
        assert torch.equal(got[key], torch.add(ref[key], s[key], alpha=0.3)), key


def test_modular_default_layer_by_layer(source):
    path, src = source
    agent = FakeAgent(seed=2)
    ref = copy.deepcopy(agent.components)
    torch.manual_seed(4)
    ModularTransfer(path, MODULAR_DEFAULT, fraction=0.2).apply(agent)
    # the same fresh draws, in the documented order: coarse addresses first
    torch.manual_seed(4)
    for module in (ref["actor"], ref["transition"].action_input, ref["reward"].out,
                   ref["value"].out):
        reinit(module)
    c = agent.components
    for name in ("encoder", "representation", "decoder"):
        assert _same(c[name], src[name]), name
    assert _same(c["transition"].hidden, src["transition"].hidden)
    assert _same(c["transition"].action_input, ref["transition"].action_input)
    assert not _same(c["transition"].action_input, src["transition"].action_input)
    assert _same(c["actor"], ref["actor"]) and not _same(c["actor"], src["actor"])
    for head in ("reward", "value"):
        assert _same(c[head].hidden, src[head].hidden), head
        got, fresh, s = _sd(c[head].out), _sd(ref[head].out), _sd(src[head].out)
        for key in got:
            assert torch.equal(got[key], torch.add(fresh[key], s[key], alpha=0.2)), (head, key)


def test_modular_full_copies_reward_and_value(source):
    path, src = source
    agent = FakeAgent(seed=2)
    ModularTransfer(path, MODULAR_FULL).apply(agent)
    assert _same(agent.components["reward"], src["reward"])
    assert _same(agent.components["value"], src["value"])
    assert not _same(agent.components["actor"], src["actor"])


def test_preset_needs_every_component(source):
    path, _ = source
    agent = FakeAgent(seed=2, world_model=False)  # no representation / decoder
    before = _sd(agent)
    with pytest.raises(UnknownComponentError, match="representation"):
        ModularTransfer(path, MODULAR_DEFAULT).apply(agent)
    assert _same(_sd(agent), before)  # resolved before any surgery


@pytest.mark.parametrize("pattern", ["q", "rew*.nothing", "transition.action"])
def test_unmatched_pattern_raises(source, pattern):
    with pytest.raises(UnknownComponentError):
        LoadComponents(source[0], [pattern]).apply(FakeAgent(seed=2))


def test_shape_mismatch_names_parameter(source):
    agent = FakeAgent(seed=2)
    agent.components["reward"].out = nn.Linear(LATENT, 3)
    with pytest.raises(ValueError, match=r"'reward\.out\.weight'"):
        FractionalTransfer(source[0], ["reward"]).apply(agent)


def test_frozen_flags_exact(source):
    path, src = source
    agent = FakeAgent(seed=2)
    cb = ModularTransfer(path, {"encoder": "frozen", "reward": "full", "reward.out": "frozen"})
    _fit(agent, max_steps=2, callbacks=[cb])
    frozen = {n for n, p in agent.named_parameters() if not p.requires_grad}
    assert frozen == {"components.encoder.weight", "components.encoder.bias",
                      "components.reward.out.weight", "components.reward.out.bias"}
    assert _same(agent.components["encoder"], src["encoder"])  # trained for 2 steps, unchanged
    assert _same(agent.components["reward"].out, src["reward"].out)
    assert not _same(agent.components["reward"].hidden, src["reward"].hidden)


def test_reset_components():
    agent = FakeAgent(seed=2)
    before = _sd(agent.components["actor"])
    ResetComponents(["actor"]).apply(agent)
    assert not torch.equal(agent.components["actor"].weight, before["weight"])
    assert torch.count_nonzero(agent.components["actor"].bias) == 0


def test_loss_schedule_switches_at_step():
    agent = FakeAgent(seed=2)
    agent.set_loss_weight("structure/*", 0.5)
    _fit(agent, max_steps=6, callbacks=[LossSchedule(["structure/*"], 0.0, until_step=3)])
    assert [(s, w) for s, w, _ in agent.seen] == [(0, 0.0), (1, 0.0), (2, 0.0),
                                                 (3, 0.5), (4, 0.5), (5, 0.5)]


def test_freeze_until_step_unfreezes():
    agent = FakeAgent(seed=2)
    before = _sd(agent.components["encoder"])
    trainer = _fit(agent, max_steps=2, callbacks=[FreezeComponents(["encoder"], until_step=2)])
    assert [g for _, _, g in agent.seen] == [False, False]
    assert _same(agent.components["encoder"], before)
    agent = FakeAgent(seed=2)
    _fit(agent, max_steps=4, callbacks=[FreezeComponents(["encoder"], until_step=2)])
    assert [g for _, _, g in agent.seen] == [False, False, True, True]
    assert not _same(agent.components["encoder"], before)
    assert _of(trainer, FreezeComponents).state_dict() == {"applied": True, "unfrozen": False}


# -- resume ----------------------------------------------------------------------------------------
class Probe(L.Callback):
    """Snapshots the agent when the (resumed) training loop starts, after all restoring."""

    def on_train_start(self, trainer, pl_module):
        self.weights = _sd(pl_module)
        self.trainable = {n for n, p in pl_module.named_parameters() if p.requires_grad}


class Recorder(ResetComponents):
    """Logs the order of Lightning's restore and start hooks."""

    def __init__(self):
        super().__init__(["actor"])
        self.events = []

    def load_state_dict(self, state_dict):
        self.events.append("load_state_dict")
        super().load_state_dict(state_dict)

    def on_fit_start(self, trainer, pl_module):
        self.events.append(("on_fit_start", trainer.global_step, self.applied))
        super().on_fit_start(trainer, pl_module)

    def on_train_start(self, trainer, pl_module):
        self.events.append(("on_train_start", trainer.global_step))


def _transfer_callbacks(path, until=4):
    return [ModularTransfer(path, {"encoder": "frozen", "reward": "full", "actor": "random"}),
            LossSchedule(["structure/*"], 0.0, until_step=until),
            FreezeComponents(["value"], until_step=3)]


def _of(trainer, cls):
    (cb,) = [c for c in trainer.callbacks if type(c) is cls]
    return cb


def test_lightning_restores_callback_state_before_fit_start(tmp_path):
    first = Recorder()
    trainer = _fit(FakeAgent(seed=2), max_steps=2, callbacks=[first])
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    assert first.events == [("on_fit_start", 0, False), ("on_train_start", 0)]
    again = Recorder()
    _fit(FakeAgent(seed=3), max_steps=3, callbacks=[again], ckpt_path=tmp_path / "mid.ckpt")
    # state first, then on_fit_start; global_step is only restored after on_fit_start
    assert again.events == ["load_state_dict", ("on_fit_start", 0, True), ("on_train_start", 2)]


def test_resume_does_not_reapply_and_restores_state(source, tmp_path):
    path, src = source
    agent = FakeAgent(seed=2)
    trainer = _fit(agent, max_steps=2, callbacks=_transfer_callbacks(path))
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    mid = _sd(agent)
    assert not _same(agent.components["reward"], src["reward"])  # trained past the source

    resumed, probe = FakeAgent(seed=3), Probe()
    trainer = _fit(resumed, max_steps=6, callbacks=_transfer_callbacks(path) + [probe],
                   ckpt_path=tmp_path / "mid.ckpt")
    assert _same(probe.weights, mid)  # the checkpoint's weights, no second transfer
    assert all(cb.applied for cb in trainer.callbacks if hasattr(cb, "applied"))
    assert not any(n.startswith(("components.encoder.", "components.value."))
                   for n in probe.trainable)  # freezing re-established on resume
    assert [(s, w, g) for s, w, g in resumed.seen] == [
        (2, 0.0, False), (3, 0.0, False), (4, 1.0, False), (5, 1.0, False)]
    assert _same(resumed.components["encoder"], src["encoder"])
    assert _of(trainer, FreezeComponents).unfrozen
    assert resumed.components["value"].out.weight.requires_grad
    trainer.save_checkpoint(tmp_path / "late.ckpt")

    late, probe = FakeAgent(seed=4), Probe()
    trainer = _fit(late, max_steps=8, callbacks=_transfer_callbacks(path) + [probe],
                   ckpt_path=tmp_path / "late.ckpt")
    assert [(s, w) for s, w, _ in late.seen] == [(6, 1.0), (7, 1.0)]  # after the switch
    assert _of(trainer, LossSchedule).state_dict() == {
        "applied": True, "previous": {"structure/*": 1.0}, "switched": True}
    assert "components.value.out.weight" in probe.trainable  # stays unfrozen


def test_resume_with_other_arguments_refuses(source, tmp_path):
    path, _ = source
    trainer = _fit(FakeAgent(seed=2), max_steps=1, callbacks=_transfer_callbacks(path))
    trainer.save_checkpoint(tmp_path / "mid.ckpt")
    with pytest.raises(RuntimeError, match="LossSchedule"):
        _fit(FakeAgent(seed=3), max_steps=3, callbacks=_transfer_callbacks(path, until=5),
             ckpt_path=tmp_path / "mid.ckpt")


# -- registry --------------------------------------------------------------------------------------
def test_state_keys_distinguish_arguments():
    a, b = FreezeComponents(["encoder"]), FreezeComponents(["encoder"], until_step=5)
    assert a.state_key != b.state_key
    assert a.state_key == FreezeComponents(["encoder"]).state_key


def test_make_callback_resolves_source_slots(source):
    path, _ = source
    cb = make_callback("fractional", {"source": "base", "components": ["reward"]}, {"base": path})
    assert isinstance(cb, FractionalTransfer) and cb.source == path and cb.fraction == 0.2
    cb = make_callback("modular", {"source": "base", "spec": "full"}, {"base": path})
    assert cb.spec == MODULAR_FULL
    cb = make_callback("loss_schedule", {"terms": ["structure/*"], "until_step": 10}, {})
    assert isinstance(cb, LossSchedule)
    with pytest.raises(KeyError, match="load_components"):
        make_callback("nope", {}, {})
    with pytest.raises(KeyError, match="'base'"):
        make_callback("load_components", {"source": "other", "components": ["q"]}, {"base": path})


def test_describe_callbacks():
    described = describe_callbacks()
    assert sorted(described) == sorted(CALLBACK_REGISTRY) == sorted(
        ["load_components", "fractional", "modular", "freeze", "reset", "loss_schedule",
         "embedding_agreement", "meta_model", "reconstruction", "kickstart",
         "instance_transfer"])
    assert all(line and "\n" not in line for line in described.values())


def test_diagnostics_have_their_own_registry(source):
    path, _ = source
    assert set(DIAGNOSTICS) == {"embedding_agreement", "reconstruction"}
    assert not set(DIAGNOSTICS) & set(TRANSFER_CALLBACKS)
    for build in (make_diagnostic, make_callback):
        cb = build("embedding_agreement", {"source": "base", "states": 8}, {"base": path})
        assert isinstance(cb, EmbeddingAgreement) and cb.source == path and cb.states == 8
    with pytest.raises(KeyError, match="embedding_agreement"):
        make_diagnostic("fractional", {}, {})
    with pytest.raises(KeyError, match="'base'"):
        make_diagnostic("embedding_agreement", {"source": "other"}, {"base": path})
