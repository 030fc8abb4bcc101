"""The three callback powers on the tiny agent: a loss term with a schedule, a data stream with
its own sampler and weight, a component added or wrapped; and per-stream gradients of terms."""
from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents import make_agent
from lightning_wm.agents.protocol import ExtraTerm
from lightning_wm.envs import make_env
from lightning_wm.nets.heads import MLPHead
from lightning_wm.pipeline import OfflineSource, TrainingConfig
from lightning_wm.testing import CrashAfter
from lightning_wm.training import LAST, train
from lightning_wm.transfer.base import TransferCallback
from lightning_wm.transfer.extend import (LossTermCallback, Schedule, StreamCallback, cosine,
                                          stream_totals, term_gradients)

CFG = TrainingConfig(collect_every=50, updates_per_collect=10, prefill=100, batch_size=16,
                     eval_every=200, eval_episodes=2, checkpoint_every=100)


def _run(tmp, callbacks=(), budget=400, seed=0):
    L.seed_everything(seed, verbose=False)
    agent = make_agent("tiny_q", (8,), 2, True, {"eps_steps": 300})
    result = train(agent, lambda t: make_env("corridor", {"length": 8, "slip": 0.1}), [0], 2,
                   budget=budget, seed=seed, config=CFG, run_dir=tmp, callbacks=callbacks)
    return agent, result


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# -- schedules -------------------------------------------------------------------------------------
def test_schedules_by_hand():
    assert Schedule(2.0).__call__(99) == 2.0
    lin = Schedule(1.0, 0.0, 10, "linear")
    assert [lin(s) for s in (0, 5, 10, 20)] == [1.0, 0.5, 0.0, 0.0]
    exp = Schedule(1.0, 0.1, kind="exponential", rate=0.5)
    assert [exp(s) for s in (0, 1, 2, 10)] == [1.0, 0.5, 0.25, 0.1]
    with pytest.raises(ValueError, match="kind"):
        Schedule(kind="cosine")


# -- (a) a loss term against an optimiser group ----------------------------------------------------
class QToZero(LossTermCallback):
    """A toy teacher: pull Q-values towards 0 on the main stream (stands in for a kickstarting
    cross-entropy); records the weight it had at every step."""

    def __init__(self, schedule):
        super().__init__("q/teacher", "all", schedule)
        self.weights: list[tuple[int, float]] = []  # (optimiser step, weight in force)

    def term(self, agent, batches):
        obs = batches["main"]["obs"][:, 0].float()
        return agent.components["q"](F.elu(agent.components["encoder"](obs))).pow(2).mean()

    def on_step(self, agent, step):
        super().on_step(agent, step)
        self.weights.append((step, agent.weight_of("q/teacher")))


def test_loss_term_trains_its_group_and_follows_its_schedule(tmp_path):
    plain, _ = _run(tmp_path / "plain")
    cb = QToZero(Schedule(1.0, 0.0, 30, "linear"))
    agent, result = _run(tmp_path / "term", [cb])
    assert [w for _, w in cb.weights[:3]] == [1.0, pytest.approx(29 / 30), pytest.approx(28 / 30)]
    assert all(w == pytest.approx(max(1 - s / 30, 0.0)) for s, w in cb.weights)
    assert cb.weights[-1][0] >= result.updates - 1 > 30
    assert not _same(plain, agent)  # the term reached the group's optimiser


def test_loss_term_schedule_survives_resume(tmp_path):
    sched = Schedule(1.0, 0.0, 30, "linear")
    full, _ = _run(tmp_path / "full", [QToZero(sched)])
    crash = CrashAfter(250, tmp_path / "cut/checkpoints" / LAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "cut", [QToZero(sched), crash])
    resumed, result = _run(tmp_path / "cut", [QToZero(sched)])
    assert result.resumed_from_step > 0 and _same(full, resumed)


def test_extra_term_needs_a_known_group():
    agent = make_agent("tiny_q", (8,), 2, True)
    with pytest.raises(KeyError, match="no optimiser group 'actor'"):
        agent.add_loss_term(ExtraTerm("q/x", "actor", lambda a, b: torch.zeros(())))


# -- per-stream gradients of named terms -----------------------------------------------------------
def _batch(seed, n=8):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.rand(n, 2, 8, generator=g),
            "action": F.one_hot(torch.randint(0, 2, (n, 2), generator=g), 2).float(),
            "reward": torch.rand(n, 2, generator=g), "is_first": torch.zeros(n, 2, dtype=torch.bool),
            "is_terminal": torch.zeros(n, 2, dtype=torch.bool)}


def test_term_hook_takes_per_stream_gradients_without_changing_the_update():
    torch.manual_seed(0)
    agent = make_agent("tiny_q", (8,), 2, True)
    twin = copy.deepcopy(agent)
    seen = {}

    def hook(group, terms):
        params = list(agent.components["q"].parameters())
        seen.update(term_gradients(stream_totals(terms), params))

    agent.add_term_hook(hook)
    batches = {"main": _batch(1), "other": _batch(1), "far": _batch(2)}
    loss = agent.update(batches)
    assert set(seen) == {"main", "other", "far"}
    assert cosine(seen["main"], seen["other"]) == pytest.approx(1.0)  # same data, same gradient
    assert cosine(seen["main"], seen["far"]) < 0.999
    # against a hand computation: the gradient of main's terms alone
    terms = twin.loss_terms(batches["main"])
    sum(terms.values()).backward()
    by_hand = torch.cat([p.grad.flatten() for p in twin.components["q"].parameters()])
    assert torch.allclose(seen["main"], by_hand, atol=1e-6)
    # the hook only looked: the total is the same as without it
    assert torch.equal(loss.detach(), twin.update(batches).detach())


# -- (b) a data stream with its own sampler and weight ----------------------------------------------
def _episodes(n=6, seed=0):
    env = make_env("corridor", {"length": 8, "slip": 0.1})
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        obs, _ = env.reset(seed=i)
        steps = {"obs": [obs], "action": [np.zeros(2, np.float32)], "reward": [0.0],
                 "is_first": [True], "is_terminal": [False]}
        done = False
        while not done:
            a = int(rng.integers(2))
            obs, r, term, trunc, _ = env.step(a)
            for k, v in (("obs", obs), ("action", np.eye(2, dtype=np.float32)[a]), ("reward", r),
                         ("is_first", False), ("is_terminal", term)):
                steps[k].append(v)
            done = term or trunc
        out.append({k: np.asarray(v) for k, v in steps.items()})
    return out


class Offline(StreamCallback):
    def __init__(self, weight):
        super().__init__("offline", weight)
        self.names: set[str] = set()

    def make_source(self, agent, pipeline):
        rng = np.random.default_rng(pipeline.stream_seed(self.stream))
        agent.add_term_hook(lambda group, terms: self.names.update(terms))
        return OfflineSource(_episodes(), rng, pipeline.config.batch_size, 2)


def test_stream_joins_every_update_with_its_weight(tmp_path):
    plain, _ = _run(tmp_path / "plain")
    cb = Offline(0.5)
    agent, _ = _run(tmp_path / "half", [cb])
    assert {"offline:q/td", "offline:reward/mse", "q/td"} <= cb.names
    assert agent.stream_weights["offline"] == 0.5
    assert not _same(plain, agent)


def test_stream_of_weight_zero_leaves_the_run_bit_identical(tmp_path):
    """A stream samples with its own generator: adding one moves no other draw."""
    plain, rp = _run(tmp_path / "plain")
    off, ro = _run(tmp_path / "zero", [Offline(0.0)])
    assert _same(plain, off) and rp.returns == ro.returns


def test_stream_sampler_state_survives_resume(tmp_path):
    full, _ = _run(tmp_path / "full", [Offline(0.5)])
    crash = CrashAfter(250, tmp_path / "cut/checkpoints" / LAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "cut", [Offline(0.5), crash])
    resumed, _ = _run(tmp_path / "cut", [Offline(0.5)])
    assert _same(full, resumed)


# -- (c) a component added or wrapped --------------------------------------------------------------
class AddDiscount(TransferCallback):
    """Adds a ``discount`` head (absent from the tiny agent) and a term that trains it."""

    def configure(self, agent, pipeline):
        torch.manual_seed(7)  # the new head's init must not depend on where setup runs
        agent.add_component("discount", MLPHead(16, 1, 8), "all")

        def term(agent, batches):
            b = batches["main"]
            latent = F.elu(agent.components["encoder"](b["obs"][:, 1].float()))
            logit = agent.components["discount"](latent).squeeze(-1)
            return F.binary_cross_entropy_with_logits(logit, 1.0 - b["is_terminal"][:, 1].float())

        agent.add_loss_term(ExtraTerm("discount/nll", "all", term))


class Residual(nn.Module):
    """A frozen pre-trained head with a fresh residual beside it (stacking, as APV stacks an
    action-conditional model on an action-free one)."""

    def __init__(self, base: nn.Module, width: int):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.extra = nn.Linear(width, 1)

    def forward(self, x):
        return self.base(x) + self.extra(x)


class WrapReward(TransferCallback):
    def configure(self, agent, pipeline):
        torch.manual_seed(8)
        agent.wrap_component("reward", lambda base: Residual(base, 18))


def test_added_component_is_trained_checkpointed_and_resumed(tmp_path):
    agent, _ = _run(tmp_path / "full", [AddDiscount()])
    assert "discount" in agent.optimiser_groups()["all"]
    fresh = make_agent("tiny_q", (8,), 2, True)
    head = agent.components["discount"]
    torch.manual_seed(7)
    assert not torch.equal(head.out.weight, MLPHead(16, 1, 8).out.weight)  # it trained
    saved = torch.load(tmp_path / "full/checkpoints/model.ckpt", weights_only=True)["state_dict"]
    assert any(k.startswith("components.discount.") for k in saved)
    assert "discount" not in fresh.components
    crash = CrashAfter(250, tmp_path / "cut/checkpoints" / LAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "cut", [AddDiscount(), crash])
    resumed, _ = _run(tmp_path / "cut", [AddDiscount()])
    assert _same(agent, resumed)


def test_wrapped_component_keeps_its_base_and_trains_the_new_part(tmp_path):
    L.seed_everything(0, verbose=False)
    base = copy.deepcopy(make_agent("tiny_q", (8,), 2, True).components["reward"])
    agent, _ = _run(tmp_path / "wrap", [WrapReward()])
    reward = agent.components["reward"]
    assert isinstance(reward, Residual)
    for a, b in zip(reward.base.parameters(), base.parameters()):
        assert torch.equal(a, b)  # frozen at setup: never stepped
    torch.manual_seed(8)
    assert not torch.equal(reward.extra.weight, nn.Linear(18, 1).weight)


def test_component_names_stay_in_the_vocabulary():
    agent = make_agent("tiny_q", (8,), 2, True)
    with pytest.raises(KeyError, match="vocabulary"):
        agent.add_component("critic2", nn.Linear(1, 1), "all")
    with pytest.raises(ValueError, match="exists already"):
        agent.add_component("q", nn.Linear(1, 1), "all")
    with pytest.raises(KeyError, match="no component 'value'"):
        agent.wrap_component("value", lambda m: m)


# -- (b') a stream another policy fills: teacher rollouts ------------------------------------------
def _always_second(obs, is_first):
    action = np.zeros((len(obs), 2), np.float32)
    action[:, 1] = 1.0
    return action


class Teacher(StreamCallback):
    """A fixed policy's rollouts on the run's own task, 20 env steps after every phase."""

    def __init__(self):
        super().__init__("teacher", 0.5)
        self.sources = []
        self.names: set[str] = set()

    def make_source(self, agent, pipeline):
        agent.add_term_hook(lambda group, terms: self.names.update(terms))
        self.sources.append(pipeline.rollout_source(self.stream, _always_second, 20))
        return self.sources[-1]


def test_rollout_stream_collects_with_its_own_policy_and_resumes(tmp_path):
    teacher = Teacher()
    full, result = _run(tmp_path / "full", [teacher])
    source = teacher.sources[-1]
    assert "teacher:q/td" in teacher.names
    # every phase after the first added 20 teacher steps, not counted in the run's budget
    assert result.env_steps == 400 and source.env_steps == 20 * 8
    stored = source.replay.episodes
    assert stored and all((ep["action"][1:, 1] == 1).all() for ep in stored)
    crash = CrashAfter(250, tmp_path / "cut/checkpoints" / LAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "cut", [Teacher(), crash])
    again = Teacher()
    resumed, _ = _run(tmp_path / "cut", [again])
    assert _same(full, resumed) and again.sources[-1].env_steps == source.env_steps
