"""REPAINT's two transfer mechanisms as callbacks (Tao et al., "REPAINT: Knowledge Transfer in
Deep Reinforcement Learning", ICML 2021, Algorithm 1), for agents with an explicit policy.

- :class:`Kickstart` (representation transfer, "KS"): the actor's loss gains
  β_k · H(π_teacher, π_student) on the student's own states, β_k decaying over iterations
  (kickstarting: Schmitt et al., "Kickstarting Deep Reinforcement Learning", 2018).
- :class:`InstanceTransfer` ("IT"): a stream of the frozen teacher's rollouts on the *target*
  task (so rewards are the target's), scored with advantages from the student's current critic;
  the transitions with advantage ≥ ζ add their clipped policy-gradient term, with the teacher as
  the behaviour policy (ratio π_student / π_teacher). The critic never trains on them.
- REPAINT is both callbacks on one run.

The teacher is a frozen copy of the student's policy components (:meth:`ExplicitPolicy.
policy_components`) holding a source checkpoint's weights, every shape checked before anything
changes; it is not a component of the student, so it is neither trained nor checkpointed, and
transfer never addresses it.

Both agent families run the same two callbacks through :class:`ExplicitPolicy`:

- PPO (on-policy): the teacher's stream is its latest phase, prepared by the agent like its own
  (GAE under the student's critic); kickstarting reads the student's minibatch.
- Dreamer (V1 and V2, replay-based): the teacher is the source agent's encoder, RSSM and actor,
  filtering the replay windows with its own world model; kickstarting compares the two actors at
  every step of the student's replay windows. The teacher's episodes fill a replay of their own,
  which the world model trains on like any other stream (so the model learns the target task
  from the teacher's data too), and the actor's instance term keeps the steps whose one-step
  advantage r + γV(s') − V(s) under the student's critic is ≥ ζ. No published system offers
  REPAINT on a world-model agent: this is the suite's own extension, and what it measures is
  stated in ``suites/pybullet_repaint_dreamer.yaml``.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from lightning_wm.agents.parts.policy_gradient import clipped_surrogate, policy_cross_entropy
from lightning_wm.agents.protocol import MAIN, Batches, ExplicitPolicy, ExtraTerm, require
from lightning_wm.transfer.base import TransferCallback, copy_, load_source, source_state_for
from lightning_wm.transfer.extend import LossTermCallback, Schedule


def teacher_from(agent, path: str) -> nn.ModuleDict:
    """A frozen copy of ``agent``'s policy components with the weights of checkpoint ``path``
    (all shapes checked before any copy)."""
    require(agent, ExplicitPolicy, "a teacher policy")
    source = load_source(path)
    names = agent.policy_components()
    states = {n: source_state_for(source, n) for n in names}  # a missing one raises here
    teacher = nn.ModuleDict({n: copy.deepcopy(agent.components[n]) for n in names})
    for n in names:
        copy_(teacher[n], states[n], where=n)
    teacher.requires_grad_(False)
    return teacher.eval()


def actor_group(agent) -> str:
    """The optimiser group that trains the ``actor`` component."""
    for group, names in agent.optimiser_groups().items():
        if "actor" in names:
            return group
    raise KeyError(f"no optimiser group trains 'actor' (groups: {agent.optimiser_groups()})")


class TeacherPolicy:
    """The teacher acting on the target task: batched numpy observations -> actions drawn with
    its own generator, its recurrent state (if the agent has one) carried between calls."""

    def __init__(self, agent, teacher: nn.ModuleDict, generator: torch.Generator) -> None:
        self.agent, self.teacher, self.generator = agent, teacher, generator
        self.state: Any = None

    @torch.no_grad()
    def __call__(self, obs, is_first) -> Any:
        # the teacher acts on the CPU, in the collector's process
        action, self.state = self.agent.act_with(self.teacher, torch.as_tensor(obs),
                                                 torch.as_tensor(is_first), self.state,
                                                 self.generator)
        return action.numpy()


class Kickstart(LossTermCallback):
    """Kickstarting: β_k · H(π_teacher, π_student) on the actor, β_k from ``beta`` to ``end``
    (``kind`` linear over ``steps`` iterations, or exponential with ``rate``)."""

    def __init__(self, source: str, beta: float = 1.0, steps: int = 50, kind: str = "linear",
                 rate: float = 1.0, end: float = 0.0) -> None:
        super().__init__("actor/kickstart", "actor",
                         Schedule(start=beta, end=end, steps=steps, kind=kind, rate=rate))
        self.source = str(source)
        self._teacher: nn.ModuleDict | None = None

    def key_args(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source}

    def configure(self, agent, pipeline) -> None:
        self._teacher = teacher_from(agent, self.source)
        self.group = actor_group(agent)
        super().configure(agent, pipeline)

    def term(self, agent, batches: Batches) -> torch.Tensor:
        batch = batches[MAIN]
        with torch.no_grad():
            teacher = agent.policy(batch, self._teacher.to(agent.device))
        return policy_cross_entropy(teacher, agent.policy(batch)).mean()


class InstanceTransfer(TransferCallback):
    """Instance transfer: the teacher's rollouts on the target task (``steps`` env steps per
    phase, not counted in the run's budget), their transitions with advantage ≥ ``zeta`` adding
    ``weight`` × the clipped policy-gradient term ``actor/instance``."""

    def __init__(self, source: str, zeta: float = 0.0, steps: int = 512, weight: float = 1.0,
                 clip: float = 0.2, stream: str = "teacher") -> None:
        super().__init__()
        if steps < 1 or not weight >= 0 or not 0 < clip < 1:
            raise ValueError(f"instance transfer needs steps >= 1, weight >= 0 and 0 < clip < 1; "
                             f"got {steps}, {weight}, {clip}")
        self.source, self.zeta, self.steps = str(source), float(zeta), int(steps)
        self.weight, self.clip, self.stream = float(weight), float(clip), stream
        self._teacher: nn.ModuleDict | None = None
        self.generator = torch.Generator().manual_seed(0)

    def key_args(self) -> dict[str, Any]:
        return {"source": self.source, "stream": self.stream}

    def configure(self, agent, pipeline) -> None:
        require(agent, ExplicitPolicy, "instance transfer")
        if pipeline is None:
            raise ValueError("instance transfer adds a stream: it needs the experience pipeline")
        self._teacher = teacher_from(agent, self.source)
        self.generator.manual_seed(pipeline.stream_seed(self.stream, 2))
        # the acting copy stays on the CPU with the collector; the term's copy follows the agent
        policy = TeacherPolicy(agent, copy.deepcopy(self._teacher).cpu(), self.generator)
        needs = agent.data_needs()
        if needs.on_policy:  # PPO: the teacher's latest phase, prepared like the student's own
            source = pipeline.segment_source(self.stream, policy, self.steps)
        else:  # Dreamer: a replay of the teacher's episodes, windows as long as the agent's
            source = pipeline.rollout_source(self.stream, policy, self.steps,
                                             length=needs.sequence_length)
        pipeline.add_source(self.stream, source)
        agent.add_loss_term(ExtraTerm("actor/instance", actor_group(agent), self.term))

    def apply(self, agent) -> None:
        agent.set_loss_weight("actor/instance", self.weight)

    def term(self, agent, batches: Batches) -> torch.Tensor:
        batch = batches.get(self.stream)
        if batch is None or not len(batch["action"]):  # nothing collected yet
            return torch.zeros((), device=agent.device)
        action, advantage, policy = agent.instances(batch)
        with torch.no_grad():
            behaviour = agent.policy(batch, self._teacher.to(agent.device)).log_prob(action)
        return clipped_surrogate(policy.log_prob(action), behaviour, advantage, self.clip,
                                 advantage >= self.zeta)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if "generator" in state_dict:
            self.generator.set_state(state_dict["generator"])
