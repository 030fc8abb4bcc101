"""Meta-model transfer on Dreamer: a wider reward head fed by frozen source reward models,
loaded from checkpoints by the ``meta_model`` callback, kept through a crash and resume."""
from __future__ import annotations

import os
import shutil

import lightning as L
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.callbacks import CALLBACK_REGISTRY, make_callback
from lightning_wm.checkpoints import seal
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.envs import make_env
from lightning_wm.testing import CrashAfter, same, snapshot as sd
from lightning_wm.training import LAST, train
from lightning_wm.transfer import MetaModelTransfer

ACT = 2


def dreamer(seed: int, **config):
    torch.manual_seed(seed)
    return make_agent("dreamer", (4,), ACT, False, {"size": "tiny", **config})


def batch(a, n=4):
    g = torch.Generator().manual_seed(0)
    T = a.sequence_length
    first = torch.zeros(n, T, dtype=torch.bool)
    first[:, 0] = True
    return {"obs": torch.randn(n, T, 4, generator=g), "action": torch.rand(n, T, ACT, generator=g),
            "reward": torch.randn(n, T, generator=g), "is_first": first,
            "is_terminal": torch.zeros(n, T, dtype=torch.bool)}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two trained source agents' checkpoints and their reward components."""
    root = tmp_path_factory.mktemp("sources")
    paths, rewards = [], []
    for seed in (1, 2):
        src = dreamer(seed)
        src.update({"main": batch(src)})
        path = root / f"source{seed}.ckpt"
        torch.save({"state_dict": src.state_dict()}, path)
        seal(path)  # a source is read only with a sidecar matching its digest
        paths.append(str(path))
        rewards.append(sd(src.components["reward"]))
    return paths, rewards


def test_reward_head_widens_and_sources_are_frozen_and_fed_in(sources):
    paths, rewards = sources
    a = dreamer(3, meta_sources=2)
    plain = dreamer(3)
    first = a.components["reward"].hidden[0]
    assert first.in_features == plain.components["reward"].hidden[0].in_features + 2
    assert len(a.meta_rewards) == 2
    assert not any(p.requires_grad for p in a.meta_rewards.parameters())
    with pytest.raises(RuntimeError, match="meta_model"):
        a.update({"main": batch(a)})  # refuses to train on random "sources"
    MetaModelTransfer(paths).apply(a)
    for module, expected in zip(a.meta_rewards, rewards):
        assert same(sd(module), expected)
    feat = torch.randn(5, a.feature_size)
    inputs = torch.cat([feat, *(m(feat) for m in a.meta_rewards)], -1)
    assert torch.equal(a.predict_reward(feat), a.components["reward"](inputs).squeeze(-1))
    # the source predictions matter: another source changes the target's prediction
    swapped = dreamer(3, meta_sources=2)
    swapped.set_meta_rewards([rewards[1], rewards[0]])
    assert not torch.equal(swapped.predict_reward(feat), a.predict_reward(feat))


def test_update_trains_the_head_not_the_sources(sources):
    paths, rewards = sources
    a = dreamer(3, meta_sources=2)
    MetaModelTransfer(paths).apply(a)
    head = sd(a.components["reward"])
    optimised = {id(p) for o in a.configure_optimizers()
                 for g in o.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in a.meta_rewards.parameters()}
    for _ in range(2):
        a.update({"main": batch(a)})
    assert not same(sd(a.components["reward"]), head)
    for module, expected in zip(a.meta_rewards, rewards):
        assert same(sd(module), expected)


def test_errors(sources):
    paths, _ = sources
    with pytest.raises(ValueError, match="meta_sources=1"):
        MetaModelTransfer(paths).apply(dreamer(3, meta_sources=1))
    with pytest.raises(ValueError, match="does not fit"):
        MetaModelTransfer(paths).apply(dreamer(3, meta_sources=2, units=8))
    with pytest.raises(TypeError, match="meta-model"):
        MetaModelTransfer(paths).apply(make_agent("tiny_q", (4,), 2, True))
    with pytest.raises(ValueError, match="list"):
        MetaModelTransfer(paths[0])


def test_registry_resolves_a_list_of_source_slots(sources):
    paths, _ = sources
    assert CALLBACK_REGISTRY["meta_model"] is MetaModelTransfer
    cb = make_callback("meta_model", {"sources": ["hop", "pend"]},
                       {"hop": paths[0], "pend": paths[1]})
    assert isinstance(cb, MetaModelTransfer) and cb.sources == paths
    with pytest.raises(KeyError, match="'walker'"):
        make_callback("meta_model", {"sources": ["hop", "walker"]}, {"hop": paths[0]})
    with pytest.raises(TypeError, match="list of slots"):
        make_callback("meta_model", {"sources": "hop"}, {"hop": paths[0]})


# -- survives a crash and resume -------------------------------------------------------------
CFG = TrainingConfig(collect_every=20, updates_per_collect=4, prefill=40, batch_size=4,
                     eval_every=80, eval_episodes=1, checkpoint_every=40)


def _train(tmp, paths, callbacks=()):
    L.seed_everything(0, verbose=False)
    a = make_agent("dreamer", (4,), ACT, False, {"size": "tiny", "meta_sources": 2})
    result = train(a, lambda t: make_env("point", {"max_steps": 20}), [0], ACT, budget=160,
                   seed=0, config=CFG, run_dir=tmp,
                   callbacks=[MetaModelTransfer(paths), *callbacks])
    return a, result


def test_meta_model_run_resumes_identically(sources, tmp_path):
    originals, rewards = sources
    paths = [str(tmp_path / f"src{i}.ckpt") for i in range(2)]
    for src, dst in zip(originals, paths):
        shutil.copy(src, dst)
        seal(dst)
    full_agent, full = _train(tmp_path / "full", paths)
    for module, expected in zip(full_agent.meta_rewards, rewards):
        assert same(sd(module), expected)

    crash = CrashAfter(100, tmp_path / "cut/checkpoints" / LAST)

    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(tmp_path / "cut", paths, [crash])
    for path in paths:  # the resumed run must take the sources from its checkpoint
        os.remove(path)
    agent, resumed = _train(tmp_path / "cut", paths)
    assert resumed.resumed_from_step > 0
    assert resumed.returns == full.returns and resumed.updates == full.updates
    assert same(sd(agent), sd(full_agent))
    assert bool(agent.meta_ready)
