"""REPAINT's callbacks on Dreamer (V1's tanh-Gaussian actor, V2's categorical one): the teacher
filters with its own world model, kickstarting is the cross-entropy by hand, instance transfer
keeps exactly the steps at or above ζ, the teacher stays frozen and a run resumes bit for bit."""
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
from lightning_wm.transfer.repaint import TeacherPolicy, teacher_from

# episodes of 20 steps end exactly at phase and checkpoint boundaries: an acting recurrent state
# is not checkpointed, so a resume is exact where no episode is in flight
CFG = TrainingConfig(collect_every=20, updates_per_collect=2, prefill=40, batch_size=4,
                     eval_every=80, eval_episodes=1, checkpoint_every=40)
ENV = {"max_steps": 20}
ACT = 2


def _agent(name="dreamer", seed=0, **config):
    torch.manual_seed(seed)
    return make_agent(name, (4,), ACT if name == "dreamer" else 3, name == "dreamer_v2",
                      {"size": "tiny", **config})


def _train(tmp, callbacks=(), budget=120, seed=0):
    L.seed_everything(seed, verbose=False)
    agent = _agent()
    result = train(agent, lambda t: make_env("point", ENV), [0], ACT, budget=budget, seed=seed,
                   config=CFG, run_dir=tmp, callbacks=list(callbacks))
    return agent, result


def _batch(agent, n=3, seed=0, first_at=None):
    g = torch.Generator().manual_seed(seed)
    T = agent.sequence_length
    action = torch.rand(n, T, agent.action_dim, generator=g) * 2 - 1
    if agent.hparams.get("discrete", False):
        action = torch.nn.functional.one_hot(action.argmax(-1), agent.action_dim).float()
    is_first = torch.zeros(n, T, dtype=torch.bool)
    is_first[:, 0] = True
    if first_at is not None:
        is_first[0, first_at] = True  # window 0 holds the start of another episode
    return {"obs": torch.randn(n, T, 4, generator=g), "action": action,
            "reward": torch.randn(n, T, generator=g), "is_first": is_first,
            "is_terminal": torch.zeros(n, T, dtype=torch.bool)}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A tiny Dreamer trained briefly on the point mass, and its final checkpoint."""
    agent, result = _train(tmp_path_factory.mktemp("dreamer_teacher"), budget=80, seed=7)
    return agent, str(result.model_path)


def test_the_teacher_is_the_source_world_model_and_actor(teacher):
    source, path = teacher
    student = _agent()
    nets = teacher_from(student, path)
    assert set(nets) == {"encoder", "representation", "transition", "actor"}
    for name in nets:
        assert same(snapshot(nets[name]), snapshot(source.components[name]))
    assert not any(p.requires_grad for p in nets.parameters())


def test_kickstart_on_dreamer_is_the_pre_tanh_cross_entropy_by_hand(teacher):
    source, path = teacher
    student = _agent(seed=1)
    ks = Kickstart(path, beta=1.0)
    ks.configure(student, None)
    b = _batch(student)
    torch.manual_seed(3)
    term = ks.term(student, {MAIN: b})
    # by hand: the same draws (teacher's filter first, then the student's), Gaussian CE per dim
    torch.manual_seed(3)
    with torch.no_grad():
        feats = [a._filtered(b, a.components)[:, :-1] for a in (source, student)]
        (mu_t, sd_t), (mu_s, sd_s) = (a.components["actor"].normal(f)
                                      for a, f in zip((source, student), feats))
    by_hand = (torch.log(sd_s) + 0.5 * math.log(2 * math.pi)
               + (sd_t ** 2 + (mu_t - mu_s) ** 2) / (2 * sd_s ** 2)).sum(-1).mean()
    assert term.item() == pytest.approx(by_hand.item(), rel=1e-5)
    term.backward()  # only the student's actor learns from it: its features carry no gradient
    assert all(p.grad is not None for p in student.components["actor"].parameters())
    for name in ("encoder", "representation", "transition", "value"):
        assert all(p.grad is None for p in student.components[name].parameters()), name
    assert all(p.grad is None for p in ks._teacher.parameters())


def test_instances_line_up_with_the_policy_and_mask_episode_starts():
    agent = _agent()
    b = _batch(agent, first_at=3)
    action, advantage, policy = agent.instances(b)
    T = agent.sequence_length
    assert action.shape == (3, T - 1, ACT) and torch.equal(action, b["action"][:, 1:])
    assert agent.policy(b).batch_shape == policy.batch_shape == advantage.shape == (3, T - 1)
    # step 2 -> 3 crosses into another episode: never kept; every other step is finite
    assert advantage[0, 2] == float("-inf")
    assert torch.isfinite(advantage).sum() == advantage.numel() - 1


@pytest.mark.parametrize("name", ["dreamer", "dreamer_v2"])
def test_instance_transfer_on_dreamer_keeps_exactly_the_steps_at_or_above_zeta(name, tmp_path):
    student = _agent(name)
    b = _batch(student)
    _, advantage, _ = student.instances(b)
    zeta = float(advantage.flatten().median())  # keeps about half
    it = InstanceTransfer("unused", zeta=zeta)
    it._teacher = teacher_from_self(student, seed=5)
    torch.manual_seed(4)
    term = it.term(student, {"teacher": b})
    torch.manual_seed(4)  # the same draws, in the callback's order
    action, advantage, _ = student.instances(b)
    with torch.no_grad():
        behaviour = student.policy(b, it._teacher).log_prob(action)
    torch.manual_seed(4)  # the student's π on the very states its advantages were scored on
    student_log_prob = student.instances(b).policy.log_prob(action)
    keep = advantage >= zeta
    assert 0 < keep.sum() < keep.numel()
    by_hand = clipped_surrogate(student_log_prob[keep], behaviour[keep], advantage[keep], 0.2)
    assert torch.isfinite(term) and term.item() == pytest.approx(by_hand.item(), rel=1e-5)


def teacher_from_self(agent, seed):
    """Teacher nets of the student's architecture with other weights (no checkpoint needed)."""
    other = _agent("dreamer_v2" if agent.hparams.get("discrete", False) else "dreamer", seed=seed)
    nets = torch.nn.ModuleDict({n: other.components[n] for n in agent.policy_components()})
    return nets.requires_grad_(False)


def test_the_teacher_acts_from_its_own_generator_and_history(teacher):
    source, path = teacher
    student = _agent(seed=1)
    nets = teacher_from(student, path)
    obs = torch.randn(2, 4)

    def actions(seed):
        policy = TeacherPolicy(student, nets, torch.Generator().manual_seed(seed))
        torch.manual_seed(0)
        first = policy(obs.numpy(), torch.ones(2, dtype=torch.bool).numpy())
        second = policy(obs.numpy(), torch.tensor([False, True]).numpy())
        return first, second, torch.rand(1)

    a1, b1, global1 = actions(11)
    a2, b2, global2 = actions(11)
    assert (a1 == a2).all() and (b1 == b2).all()
    assert torch.equal(global1, global2)  # the student's global stream never moved
    assert abs(a1).max() <= 1.0 and a1.shape == (2, ACT)
    a3, _, _ = actions(12)
    assert not (a1 == a3).all()


def test_repaint_on_dreamer_trains_with_a_frozen_teacher_and_resumes_bit_for_bit(teacher,
                                                                                  tmp_path):
    _, path = teacher
    source = {n: dict(load_source(path)[n]) for n in ("actor", "transition")}

    def callbacks():
        return [Kickstart(path, beta=1.0, steps=4), InstanceTransfer(path, zeta=0.0, steps=20)]

    full_cbs = callbacks()
    full, full_result = _train(tmp_path / "full", full_cbs)
    for cb in full_cbs:  # both teachers bit-identical to the source after training
        for name, state in source.items():
            assert same(snapshot(cb._teacher[name]), state), name
    assert full_result.updates > 0
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(cut, [*callbacks(), CrashAfter(80, cut / "checkpoints" / LAST)])
    resumed, result = _train(cut, callbacks())
    assert result.resumed_from_step > 0
    assert result.returns == full_result.returns
    assert same(snapshot(resumed), snapshot(full))


def test_the_teacher_stream_trains_the_world_model_and_the_actor(teacher, tmp_path):
    _, path = teacher
    terms: dict[str, set[str]] = {}
    L.seed_everything(0, verbose=False)
    agent = _agent()
    agent.add_term_hook(lambda group, t: terms.setdefault(group, set()).update(t))
    train(agent, lambda t: make_env("point", ENV), [0], ACT, budget=80, seed=0, config=CFG,
          run_dir=tmp_path, callbacks=[InstanceTransfer(path, steps=20)])
    assert "actor/instance" in terms["actor"]
    assert {"teacher:decoder/nll", "teacher:reward/nll"} <= terms["model"]


def test_instances_score_and_read_the_policy_on_one_filtering():
    # the posterior's latent samples differ between filterings: the advantages that choose the
    # kept steps and the student's π in their ratio must come from the same one
    agent = _agent()
    b = _batch(agent)
    assert not torch.equal(agent._filtered(b, agent.components),
                           agent._filtered(b, agent.components))  # two filterings disagree
    torch.manual_seed(7)
    feature = agent._filtered(b, agent.components)
    torch.manual_seed(7)
    action, _, policy = agent.instances(b)
    expected = agent.components["actor"].dist(feature[:, :-1]).log_prob(action)
    assert torch.equal(policy.log_prob(action), expected)
