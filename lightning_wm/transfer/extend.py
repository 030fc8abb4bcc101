"""Callbacks that change what a run learns from, not only its weights: the three powers.

- **A loss term** (:class:`LossTermCallback`): a named term added to one optimiser group, its
  weight following a :class:`Schedule` of optimiser steps (kickstarting's teacher cross-entropy
  with a decaying β_k, after Schmitt et al., "Kickstarting Deep Reinforcement Learning", 2018).
- **A data stream** (:class:`StreamCallback`): a named source sampled into every update beside
  ``main``, with a weight (offline data of other tasks; teacher rollouts).
- **A component** (``agent.add_component`` / ``agent.wrap_component`` from :meth:`configure`):
  e.g. an action-conditional model stacked on a pre-trained action-free one.

Term hooks (``agent.add_term_hook``) let a callback read a group's named terms before they are
summed: :func:`term_gradients` takes their gradients one by one, which is what a per-stream
weighting from gradient similarity needs (XTRA's cross-task weights η_i: Xu, Hansen et al., "On
the Feasibility of Cross-Task Transfer with Model-Based Reinforcement Learning", 2023).

Everything is registered at ``setup`` on every start and resume; weights and schedules are
saved with the agent's loss-scale table and the callback's state, so a resumed run continues the
same schedule.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch

from lightning_wm.agents.protocol import Batches, ExtraTerm
from lightning_wm.transfer.base import TransferCallback


@dataclass(frozen=True)
class Schedule:
    """A weight as a function of the optimiser step: ``start`` decaying to ``end``.

    ``kind``: ``constant`` (``start`` always), ``linear`` (to ``end`` over ``steps``, then
    ``end``) or ``exponential`` (``start · rate^step``, never below ``end``).
    """
    start: float = 1.0
    end: float = 0.0
    steps: int = 0
    kind: str = "constant"
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "linear", "exponential"):
            raise ValueError(f"schedule kind must be constant|linear|exponential, not {self.kind!r}")
        if not all(math.isfinite(v) for v in (self.start, self.end, self.rate)):
            raise ValueError("schedule values must be finite")

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            frac = 1.0 if self.steps <= 0 else min(max(step / self.steps, 0.0), 1.0)
            return self.start + frac * (self.end - self.start)
        return max(self.start * self.rate ** step, self.end)


class LossTermCallback(TransferCallback):
    """Adds the term :meth:`term` (named ``name``) to optimiser group ``group``, weighted by
    ``schedule(global_step)``. Subclasses implement :meth:`term` and, if they need data or
    models, :meth:`prepare` (called at ``setup`` with the agent and the pipeline)."""

    def __init__(self, name: str, group: str, schedule: Schedule | None = None) -> None:
        super().__init__()
        if "/" not in name or ":" in name:
            raise ValueError(f"term name {name!r} must be 'component/term' with no stream prefix")
        self.name, self.group = name, group
        self.schedule = schedule or Schedule()

    def key_args(self) -> dict[str, Any]:
        return {"name": self.name, "group": self.group}

    def prepare(self, agent, pipeline) -> None:
        """Build what :meth:`term` needs (a frozen teacher, ...)."""

    def term(self, agent, batches: Batches) -> torch.Tensor:
        raise NotImplementedError

    def configure(self, agent, pipeline) -> None:
        self.prepare(agent, pipeline)
        agent.add_loss_term(ExtraTerm(self.name, self.group, self.term))
        agent.set_loss_weight(self.name, self.schedule(0))

    def on_step(self, agent, step: int) -> None:
        agent.set_loss_weight(self.name, self.schedule(step))


class StreamCallback(TransferCallback):
    """Adds stream ``stream`` with weight ``weight``: :meth:`make_source` builds its source at
    ``setup`` (a driver :class:`~lightning_wm.pipeline.sources.Source`)."""

    def __init__(self, stream: str, weight: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"stream weight must be finite and >= 0, not {weight}")
        self.stream, self.weight = stream, float(weight)

    def key_args(self) -> dict[str, Any]:
        return {"stream": self.stream}

    def make_source(self, agent, pipeline):
        raise NotImplementedError

    def configure(self, agent, pipeline) -> None:
        if pipeline is None:
            raise ValueError(f"stream '{self.stream}' needs the experience pipeline "
                             "(lightning_wm.training.train); this fit has plain dataloaders")
        pipeline.add_source(self.stream, self.make_source(agent, pipeline))

    def apply(self, agent) -> None:
        # the weight is part of the agent's loss-scale table, which a checkpoint restores
        # (a callback may have changed it since); so set it on a fresh start only
        agent.set_stream_weight(self.stream, self.weight)


def stream_of(term: str) -> str:
    """The stream a term name belongs to (``"main"`` without a prefix)."""
    stream, _, _ = term.rpartition(":")
    return stream or "main"


def stream_totals(terms: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Unweighted sum of each stream's terms."""
    totals: dict[str, torch.Tensor] = {}
    for name, value in terms.items():
        s = stream_of(name)
        totals[s] = value if s not in totals else totals[s] + value
    return totals


def term_gradients(terms: Mapping[str, torch.Tensor],
                   params: Iterable[torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    """``{name: flat gradient of that term w.r.t. params}``, without touching ``.grad`` and
    keeping the graph for the update's own backward. Terms that do not reach ``params`` get
    zeros."""
    params = [p for p in params if p.requires_grad]
    out: dict[str, torch.Tensor] = {}
    for name, value in terms.items():
        if not value.requires_grad:
            out[name] = torch.cat([torch.zeros_like(p).flatten() for p in params])
            continue
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        out[name] = torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                               for p, g in zip(params, grads)])
    return out


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two flat vectors (0 when either is zero)."""
    na, nb = float(a.norm()), float(b.norm())
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(torch.dot(a, b)) / (na * nb)
