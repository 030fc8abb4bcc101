"""What an agent offers: the contract the driver, the trainer wiring and the callbacks rely on.

Read this file first. Every agent is a ``lightning.LightningModule`` that implements
:class:`AgentProtocol`; optional powers are declared by inheriting one of the small capability
classes at the bottom (:class:`Embeds`, :class:`Reconstructs`, :class:`MetaRewards`,
:class:`ExplicitPolicy`), and callers check them with ``isinstance``. Nothing in the library probes an agent with ``getattr``.

Data flow of one update::

    driver ──{stream: batch}──▶ agent.update(batches)
                                  ├─ each optimiser group's named terms, plus terms that callbacks
                                  │  registered against the group (ExtraTerm), plus term hooks
                                  │  (a callback may read the named terms, e.g. per-stream gradients)
                                  └─ weighted by the loss-scale table, one optimiser step per group

A *stream* is a named source of batches (``"main"``: the online replay of the task being trained;
others: offline task data, teacher rollouts). Terms of a stream other than ``main`` are named
``"stream:component/term"`` and scaled by the stream's weight.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

#: the stream of the task being trained (the online replay)
MAIN = "main"

#: one stream's batch: ``obs``, ``action``, ``reward``, ``is_first``, ``is_terminal`` as ``[B, T, ...]``
Batch = Mapping[str, torch.Tensor]
#: what every update receives: ``{stream: batch}`` (always holds :data:`MAIN`)
Batches = Mapping[str, Batch]
#: named, unweighted loss terms ``{"component/term": scalar}``
Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class DataNeeds:
    """What the agent needs from replay sampling (declared, read by the driver)."""
    #: length of the replay windows it trains on (2 = single transitions)
    sequence_length: int = 2
    #: sequences may run past an episode's end into absorbing states (DreamerV2 on short
    #: episodes); ``discrete`` says how absorbing actions are encoded. ``None``: plain windows.
    absorbing: "AbsorbingOptions | None" = None
    #: on-policy learning (PPO): every update gets the latest collection phase's transitions,
    #: not replay samples (:class:`~lightning_wm.pipeline.sources.SegmentSource` says the
    #: layout), and collection never acts at random (a prefill would be off-policy data)
    on_policy: bool = False
    #: replay batches also carry ``age`` [B]: steps stored since each window's first step
    #: (EfficientZero's off-policy correction shortens the bootstrap horizon of older data)
    data_age: bool = False


@dataclass(frozen=True)
class AbsorbingOptions:
    discrete: bool = True


class ExtraTerm(NamedTuple):
    """A loss term a callback adds to an optimiser group.

    ``fn(agent, batches)`` returns an unweighted scalar; it is named ``name`` (a
    ``"component/term"`` name, so the loss-scale table and schedules address it like any other).
    """
    name: str
    group: str
    fn: Callable[[Any, Batches], torch.Tensor]


#: ``hook(group, terms)`` sees a group's named terms (extra terms included) before they are
#: weighted and summed; it may take gradients of them (``retain_graph``), never modify them
TermHook = Callable[[str, Mapping[str, torch.Tensor]], None]


@runtime_checkable
class AgentProtocol(Protocol):
    """Everything the pipeline and callbacks use. :class:`lightning_wm.agents.base.Agent`
    implements the bookkeeping (loss-scale table, extra terms, hooks, components)."""

    #: parts addressed by name (names from :mod:`lightning_wm.components`)
    components: nn.ModuleDict
    #: Lightning's flag: ``False`` for agents stepping several optimisers in one update
    automatic_optimization: bool

    def data_needs(self) -> DataNeeds: ...

    def optimiser_groups(self) -> dict[str, list[str]]:
        """``{group: [component, ...]}``: which components each optimiser trains."""

    # acting (batched; used by the collector through a policy wrapper)
    def initial_state(self, batch_size: int) -> Any: ...
    def reset_state(self, state: Any, done: torch.Tensor) -> Any: ...
    def act(self, obs: torch.Tensor, state: Any, explore: bool) -> tuple[torch.Tensor, Any]: ...

    # learning
    def update(self, batches: Batches) -> torch.Tensor | None:
        """One update on ``{stream: batch}``; returns the (detached or live) total loss."""

    # seams for callbacks (decided at ``setup``, before a strategy wraps the model)
    def set_loss_weight(self, pattern: str, weight: float) -> None: ...
    def set_stream_weight(self, stream: str, weight: float) -> None: ...
    def add_loss_term(self, term: ExtraTerm) -> None: ...
    def add_term_hook(self, hook: TermHook) -> None: ...
    def add_component(self, name: str, module: nn.Module, group: str) -> None: ...
    def wrap_component(self, name: str, wrap: Callable[[nn.Module], nn.Module]) -> None: ...

    # bookkeeping the driver keeps current (exploration schedules read it)
    env_steps: int


# -- optional capabilities: inherit to declare, check with isinstance -----------------------------
class Embeds(abc.ABC):
    """The agent maps observations to an abstract state (embedding-agreement diagnostic)."""

    @abc.abstractmethod
    def embed(self, obs: torch.Tensor) -> torch.Tensor: ...


class Reconstructs(abc.ABC):
    """The agent decodes an observed sequence through its world model (reconstruction figures)."""

    @abc.abstractmethod
    def reconstruct(self, obs, action) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs`` ``[T, ...]`` and the actions that led to each step ``[T, A]`` ->
        (reconstruction, target), both in the decoder's space."""


class MetaRewards(abc.ABC):
    """The agent's reward head reads N frozen source reward models (meta-model transfer)."""

    @abc.abstractmethod
    def set_meta_rewards(self, sources: list[Mapping[str, torch.Tensor]]) -> None: ...

    @abc.abstractmethod
    def meta_rewards_installed(self) -> bool: ...


class Instances(NamedTuple):
    """What :meth:`ExplicitPolicy.instances` returns, decision for decision."""
    action: torch.Tensor
    advantage: torch.Tensor
    policy: "torch.distributions.Distribution"


class ExplicitPolicy(abc.ABC):
    """The agent acts from an explicit distribution π(a | history) over its action vectors: what
    kickstarting and instance transfer read and compare with a teacher's.

    A *decision* is one step of a stream's batch where the agent chose an action. For PPO that is
    every row of a prepared minibatch; for Dreamer every step of a replay window but the last,
    in the posterior state filtered from the window's start. :meth:`policy` and :meth:`instances`
    line up decision for decision."""

    @abc.abstractmethod
    def policy_components(self) -> tuple[str, ...]:
        """The components :meth:`policy` and :meth:`act_with` read (a teacher is built from the
        same ones)."""

    @abc.abstractmethod
    def policy(self, batch: Batch,
               nets: Mapping[str, nn.Module] | None = None) -> "torch.distributions.Distribution":
        """π at every decision of one stream's ``batch``, computed with ``nets``
        (``{component: module}``, e.g. a frozen teacher's copies of :meth:`policy_components`;
        the agent's own components when ``None``). Gradients reach the policy head only."""

    @abc.abstractmethod
    def instances(self, batch: Batch) -> "Instances":
        """The decisions of ``batch`` as instance transfer scores them: the action taken at each,
        its advantage under the agent's current critic (no gradient; a decision with no valid
        successor in the batch has advantage −inf, so no threshold keeps it), and the agent's
        own π there, read from the same states as the advantage (gradients reach the policy
        head only)."""

    @abc.abstractmethod
    def act_with(self, nets: Mapping[str, nn.Module], obs: torch.Tensor, is_first: torch.Tensor,
                 state: Any, generator: torch.Generator) -> tuple[torch.Tensor, Any]:
        """A draw from π(· | history) with ``nets`` (a teacher acting in its own collector), its
        randomness from ``generator`` only. ``state`` is ``None`` at the first call; slots where
        ``is_first`` start afresh. Returns (action, next state)."""


def require(agent: Any, capability: type, what: str) -> None:
    """Raise a clear TypeError when ``agent`` does not declare ``capability``."""
    if not isinstance(agent, capability):
        raise TypeError(f"{what} needs an agent that declares {capability.__name__}; "
                        f"{type(agent).__name__} does not")
