"""REPAINT's callbacks on PPO: the kickstarting term, instance transfer's selection, a frozen
teacher, exact resume."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.agents.parts.policy_gradient import clipped_surrogate
from lightning_wm.agents.protocol import MAIN
from lightning_wm.envs import make_env
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.testing import CrashAfter, same, snapshot
from lightning_wm.training import LAST, train
from lightning_wm.transfer import InstanceTransfer, Kickstart, load_source
from lightning_wm.transfer.repaint import teacher_from

CFG = TrainingConfig(collect_every=64, updates_per_collect=1, prefill=0, batch_size=1,
                     eval_every=128, eval_episodes=2, checkpoint_every=128)
PPO = {"minibatches": 4, "epochs": 2}
ENV = {"dim": 2, "max_steps": 20}


def _agent(**config):
    return make_agent("ppo", (4,), 2, False, {**PPO, **config})


def _train(tmp, callbacks=(), budget=256, seed=0, config=None):
    L.seed_everything(seed, verbose=False)
    agent = _agent(**(config or {}))
    result = train(agent, lambda t: make_env("point", ENV), [0], 2, budget=budget, seed=seed,
                   config=CFG, run_dir=tmp, callbacks=list(callbacks))
    return agent, result


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A PPO agent trained briefly on the point mass, and its final checkpoint."""
    agent, result = _train(tmp_path_factory.mktemp("teacher"), seed=7)
    return agent, str(result.model_path)


def test_kickstart_term_is_the_cross_entropy_to_the_teacher(teacher):
    teacher_agent, path = teacher
    student = _agent()
    ks = Kickstart(path, beta=2.0)
    ks.configure(student, None)
    obs = torch.randn(5, 4)
    term = ks.term(student, {MAIN: {"obs": obs}})
    with torch.no_grad():
        mu_t, mu_s = (a.components["actor"](obs) for a in (teacher_agent, student))
        sd_t = teacher_agent.components["actor"].log_std.value.exp()
        sd_s = student.components["actor"].log_std.value.exp()
    by_hand = (torch.log(sd_s) + 0.5 * math.log(2 * math.pi)
               + (sd_t ** 2 + (mu_t - mu_s) ** 2) / (2 * sd_s ** 2)).sum(-1).mean()
    assert term.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert student.weight_of("actor/kickstart") == 2.0
    term.backward()  # the student's actor learns from it, the teacher does not
    assert student.components["actor"].out.weight.grad is not None
    assert all(p.grad is None for p in ks._teacher.parameters())


def test_kickstart_weight_follows_its_schedule_by_iteration(teacher, tmp_path):
    _, path = teacher
    ks = Kickstart(path, beta=1.0, steps=4, kind="linear")
    L.seed_everything(0, verbose=False)
    agent, seen = _agent(), []
    agent.add_term_hook(lambda group, terms: seen.append(agent.weight_of("actor/kickstart")))
    result = train(agent, lambda t: make_env("point", ENV), [0], 2, budget=192, seed=0,
                   config=CFG, run_dir=tmp_path, callbacks=[ks])
    assert result.updates == 3
    per_iteration = PPO["epochs"] * PPO["minibatches"]  # one weight for a whole iteration
    assert seen == [1.0] * per_iteration + [0.75] * per_iteration + [0.5] * per_iteration


def test_instance_transfer_keeps_exactly_the_transitions_at_or_above_zeta(teacher):
    _, path = teacher
    student = _agent()
    it = InstanceTransfer(path, zeta=0.5)
    it._teacher = teacher_from(student, path)
    obs, action = torch.randn(4, 4), torch.randn(4, 2)
    advantage = torch.tensor([-1.0, 0.5, 2.0, 0.49])
    term = it.term(student, {"teacher": {"obs": obs, "action": action, "advantage": advantage}})
    keep = [1, 2]  # advantages 0.5 and 2.0; -1.0 and 0.49 are below zeta
    with torch.no_grad():
        behaviour = student.policy({"obs": obs[keep]}, it._teacher).log_prob(action[keep])
        student_log_prob = student.policy({"obs": obs[keep]}).log_prob(action[keep])
        by_hand = clipped_surrogate(student_log_prob, behaviour, advantage[keep], 0.2)
    assert term.item() == pytest.approx(by_hand.item(), rel=1e-6)
    empty = it.term(student, {MAIN: {}})  # before the teacher's first phase: no term
    assert empty.item() == 0.0


def test_repaint_trains_with_a_frozen_teacher_and_resumes_bit_for_bit(teacher, tmp_path):
    _, path = teacher
    source_actor = {k: v.clone() for k, v in load_source(path)["actor"].items()}

    def callbacks():
        return [Kickstart(path, beta=1.0, steps=4), InstanceTransfer(path, zeta=0.0, steps=32)]

    full_cbs = callbacks()
    full, full_result = _train(tmp_path / "full", full_cbs, budget=384)
    teacher_after = snapshot(full_cbs[0]._teacher["actor"])
    assert same(teacher_after, source_actor)  # bit-identical after training
    assert same(snapshot(full_cbs[1]._teacher["actor"]), source_actor)
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(cut, [*callbacks(), CrashAfter(192, cut / "checkpoints" / LAST)], budget=384)
    resumed, result = _train(cut, callbacks(), budget=384)
    assert result.resumed_from_step > 0
    assert result.returns == full_result.returns
    assert same(snapshot(resumed), snapshot(full))


def test_the_teacher_must_match_the_student_before_anything_changes(teacher):
    _, path = teacher
    wider = _agent(hidden=32)
    before = snapshot(wider)
    with pytest.raises(ValueError, match="shape mismatch"):
        Kickstart(path).configure(wider, None)
    assert same(snapshot(wider), before) and not wider._extra_terms


def test_instance_transfer_needs_an_agent_with_an_explicit_policy(teacher):
    _, path = teacher
    q = make_agent("tiny_q", (4,), 2, True)
    with pytest.raises(TypeError, match="ExplicitPolicy"):
        InstanceTransfer(path).configure(q, None)
