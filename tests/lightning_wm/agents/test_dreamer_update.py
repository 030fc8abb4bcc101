"""Dreamer's update seams, on V1 and V2: several streams, callbacks' extra terms per optimiser
group, term hooks, and one optimisation path (standalone and under a Trainer alike, with
``global_step`` counting one step per update)."""
from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_wm.agents import make_agent
from lightning_wm.agents.protocol import ExtraTerm
from lightning_wm.testing import same, snapshot

VERSIONS = {"v1": ("dreamer", False), "v2": ("dreamer_v2", True)}
OBS, ACT = (5,), 3


def agent(version: str, seed: int = 0, **config):
    name, discrete = VERSIONS[version]
    torch.manual_seed(seed)
    return make_agent(name, OBS, ACT, discrete, {"size": "tiny", "free_nats": 0.0, **config})


def batch(a, seed: int = 0, n: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    T = a.sequence_length
    if a.hparams.get("discrete"):
        action = F.one_hot(torch.randint(0, ACT, (n, T), generator=g), ACT).float()
    else:
        action = torch.rand(n, T, ACT, generator=g) * 2 - 1
    is_first = torch.zeros(n, T, dtype=torch.bool)
    is_first[:, 0] = True
    is_terminal = torch.zeros(n, T, dtype=torch.bool)
    is_terminal[0, -1] = True
    return {"obs": torch.randn(n, T, *OBS, generator=g), "action": action,
            "reward": torch.randn(n, T, generator=g), "is_first": is_first,
            "is_terminal": is_terminal}


def run(a, batches, seed: int = 1) -> dict[str, torch.Tensor]:
    """One standalone update under a fixed seed; the terms it logged."""
    seen: dict[str, torch.Tensor] = {}
    a.log_terms = seen.update
    torch.manual_seed(seed)
    a.update(batches)
    return seen


def moved(before, after, prefix: str) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def group_prefixes(a, group: str) -> tuple[str, ...]:
    return tuple(f"components.{name}." for name in a.optimiser_groups()[group])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_second_stream_weighted_0_5_changes_the_world_model_and_0_changes_nothing(version):
    single = agent(version)
    run(single, {"main": batch(single)})
    off = agent(version)
    off.set_stream_weight("other", 0.0)
    run(off, {"main": batch(off), "other": batch(off, seed=5)})
    assert same(snapshot(off), snapshot(single))  # weight 0: not even computed

    half = agent(version)
    half.set_stream_weight("other", 0.5)
    terms = run(half, {"main": batch(half), "other": batch(half, seed=5)})
    model_terms = {"decoder/nll", "reward/nll", "transition/kl"}
    if version == "v2":
        model_terms.add("discount/nll")
    # the world model learns from both streams, the behaviour imagines from the main one only
    assert {k for k in terms if k.startswith("other:")} == {f"other:{t}" for t in model_terms}
    after, ref = snapshot(half), snapshot(single)
    for prefix in group_prefixes(half, "model"):
        assert moved(ref, after, prefix), prefix


@pytest.mark.parametrize("version", VERSIONS)
def test_an_extra_actor_term_changes_only_the_actor(version):
    plain, extra = agent(version), agent(version)
    extra.add_loss_term(ExtraTerm(
        # pulls towards 1, not 0: biases start at zero, where an L2 term has no gradient
        "actor/l2", "actor", lambda a, b: sum((p - 1).pow(2).sum()
                                              for p in a.components["actor"].parameters())))
    run(plain, {"main": batch(plain)})
    terms = run(extra, {"main": batch(extra)})
    assert "actor/l2" in terms
    before, after = snapshot(plain), snapshot(extra)
    for k in before:
        assert torch.equal(before[k], after[k]) != k.startswith("components.actor."), k


@pytest.mark.parametrize("version", VERSIONS)
def test_term_hooks_see_every_groups_terms(version):
    a = agent(version)
    seen: dict[str, set[str]] = {}
    a.add_term_hook(lambda group, terms: seen.setdefault(group, set(terms)))
    grads: list[torch.Tensor] = []

    def per_term_gradient(group, terms):  # what a gradient-conflict diagnostic does
        if group == "model":
            weight = a.components["reward"].out.weight
            grads.append(torch.autograd.grad(terms["reward/nll"], weight, retain_graph=True)[0])

    a.add_term_hook(per_term_gradient)
    run(a, {"main": batch(a)})
    model = {"decoder/nll", "reward/nll", "transition/kl"}
    assert seen["model"] == (model | {"discount/nll"} if version == "v2" else model)
    assert seen["value"] == {"value/mse"}
    assert seen["actor"] == ({"actor/reinforce", "actor/entropy"} if version == "v2"
                             else {"actor/return"})
    assert len(grads) == 1 and grads[0].abs().sum() > 0
    # a hook reads the terms, it does not change the update
    b = agent(version)
    run(b, {"main": batch(b)})
    assert same(snapshot(a), snapshot(b))


class Reseed(L.Callback):
    """The same seed before each update under the Trainer as in the standalone loop."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        torch.manual_seed(100 + trainer.global_step)


@pytest.mark.parametrize("version", VERSIONS)
def test_one_optimisation_path_and_one_global_step_per_update(version):
    a = agent(version)
    batches = [{"main": batch(a, seed=i)} for i in range(3)]
    trainer = L.Trainer(max_steps=3, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Reseed()])
    updates = []
    a.log_terms = updates.append
    trainer.fit(a, DataLoader(batches, batch_size=None))
    assert len(updates) == 3 and trainer.global_step == 3

    standalone = agent(version)
    standalone.log_terms = lambda terms: None
    for i, b in enumerate(batches):
        torch.manual_seed(100 + i)
        standalone.update(b)
    # Lightning's optimisers and manual_backward, or plain ones: the same steps, bit for bit
    assert same(snapshot(a), snapshot(standalone))


# minutes of compilation on a small CPU: deselected like the speed benchmarks (pytest --bench)
@pytest.mark.bench
@pytest.mark.parametrize("version", VERSIONS)
def test_compiled_update_matches_eager(version):
    """``compile=True`` compiles the world model's loss and the behaviour's imagination; a speed
    option only: same seed, same terms and weights up to the rounding of fused kernels."""
    runs = []
    for compile in (False, True):
        a = agent(version, seq_len=3, horizon=2, compile=compile)
        terms = [run(a, {"main": batch(a)}, seed=s) for s in (1, 2)]
        runs.append((terms, snapshot(a)))
    (eager, eager_w), (compiled, compiled_w) = runs
    for e, c in zip(eager, compiled):
        assert e.keys() == c.keys()
        for k in e:
            assert float(c[k]) == pytest.approx(float(e[k]), rel=1e-4, abs=1e-5), k
    for k in eager_w:
        assert torch.allclose(eager_w[k].float(), compiled_w[k].float(), rtol=1e-4, atol=1e-5), k
