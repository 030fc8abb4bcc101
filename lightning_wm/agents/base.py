"""The bookkeeping every agent shares: named components, optimiser groups, the loss-scale table,
extra terms and term hooks that callbacks register, and Lightning's training step.

An agent subclasses :class:`Agent` and implements :class:`~lightning_wm.agents.protocol.AgentProtocol`:
``act``/``initial_state``/``reset_state`` for the collector, and either ``loss_terms(batch)`` (one
optimiser over every component: the base :meth:`Agent.update` does the rest) or its own
``update(batches)`` that steps several optimiser groups through :meth:`Agent.group_loss`.

Loss weights are matched to term names by glob (``"structure/*"``), so a transfer callback can
switch a term off (weight 0) or schedule it without knowing the agent. Terms of a stream other
than ``main`` are named ``"s:component/term"`` and scaled by ``stream_weights[s]`` as well.
"""
from __future__ import annotations

import fnmatch
import math
from typing import Any, Callable, Mapping

import lightning as L
import torch
from torch import nn

from lightning_wm.agents.protocol import MAIN, Batches, DataNeeds, ExtraTerm, TermHook, Terms
from lightning_wm.components import UnknownComponentError, check_vocabulary
from lightning_wm.nets.init import init_weights

#: the optimiser group of agents with one optimiser over every component
ALL = "all"


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the run is marked failed with the term's name."""


class Agent(L.LightningModule):
    #: length of the replay sequences this agent trains on (2 = single transitions)
    sequence_length: int = 2

    def __init__(self, components: Mapping[str, nn.Module],
                 groups: Mapping[str, list[str] | tuple[str, ...]] | None = None) -> None:
        super().__init__()
        check_vocabulary(components)
        # one init rule for every agent and every transfer re-init (see nets.init); agents
        # copy target networks from their components after this, so copies match
        self.components = init_weights(nn.ModuleDict(dict(components)))
        groups = {ALL: list(components)} if groups is None else groups
        self._groups: dict[str, list[str]] = {g: list(names) for g, names in groups.items()}
        self.loss_weights: dict[str, float] = {}
        self.stream_weights: dict[str, float] = {MAIN: 1.0}
        # registered by callbacks at setup on every (re)start, so never checkpointed
        self._extra_terms: list[ExtraTerm] = []
        self._term_hooks: list[TermHook] = []
        self.env_steps = 0  # kept current by the driver; drives exploration schedules

    # -- the protocol: to implement -------------------------------------------------------------
    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> Terms:
        """Named terms of one stream's batch (agents with one optimiser group)."""
        raise NotImplementedError

    def act(self, obs: torch.Tensor, state: Any, explore: bool) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def initial_state(self, batch_size: int) -> Any:
        """Recurrent policy state for a batch of fresh episodes (``None`` when stateless)."""
        return None

    def reset_state(self, state: Any, done: torch.Tensor) -> Any:
        """Reset the entries of ``state`` whose episode just ended (``done`` is bool[N])."""
        return state

    def data_needs(self) -> DataNeeds:
        return DataNeeds(sequence_length=self.sequence_length)

    def optimiser_groups(self) -> dict[str, list[str]]:
        return {g: list(names) for g, names in self._groups.items()}

    # -- seams for callbacks --------------------------------------------------------------------
    def set_loss_weight(self, pattern: str, weight: float) -> None:
        self.loss_weights[pattern] = float(weight)

    def set_stream_weight(self, stream: str, weight: float) -> None:
        self.stream_weights[stream] = float(weight)

    def add_loss_term(self, term: ExtraTerm) -> None:
        if term.group not in self._groups:
            raise KeyError(f"loss term '{term.name}': no optimiser group '{term.group}' "
                           f"(this agent has {sorted(self._groups)})")
        if any(t.name == term.name for t in self._extra_terms):
            raise ValueError(f"loss term '{term.name}' is registered twice")
        self._extra_terms.append(term)

    def add_term_hook(self, hook: TermHook) -> None:
        self._term_hooks.append(hook)

    def add_component(self, name: str, module: nn.Module, group: str) -> None:
        """A new component trained by ``group``'s optimiser; call at ``setup`` (before the
        optimisers are built and before a checkpoint's weights are restored into it)."""
        check_vocabulary([name])
        if name in self.components:
            raise ValueError(f"component '{name}' exists already; wrap_component replaces one")
        if group not in self._groups:
            raise KeyError(f"no optimiser group '{group}' (this agent has {sorted(self._groups)})")
        self.components[name] = module
        self._groups[group].append(name)

    def wrap_component(self, name: str, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Replace component ``name`` by ``wrap(component)`` (which usually holds the original);
        the component keeps its name and optimiser group."""
        if name not in self.components:
            raise UnknownComponentError(
                f"no component '{name}' to wrap; this agent has {sorted(self.components)}")
        self.components[name] = wrap(self.components[name])

    # -- loss weighting -------------------------------------------------------------------------
    def weight_of(self, term: str) -> float:
        """Product of all weights whose pattern matches ``term`` (1 when none does)."""
        w = 1.0
        for pattern, value in self.loss_weights.items():
            if fnmatch.fnmatchcase(term, pattern):
                w *= value
        return w

    def stream_terms(self, batches: Batches,
                     loss_terms: Callable[[Mapping[str, torch.Tensor]], Terms] | None = None) -> Terms:
        """Named terms of every stream (``loss_terms`` of each), prefixed by stream except for
        the main one; streams of weight 0 are not computed."""
        loss_terms = loss_terms or self.loss_terms
        terms: Terms = {}
        for stream, sub in batches.items():
            if self.stream_weights.get(stream, 1.0) == 0.0:
                continue
            for name, value in loss_terms(sub).items():
                terms[name if stream == MAIN else f"{stream}:{name}"] = value
        return terms

    def group_loss(self, group: str, terms: Terms, batches: Batches) -> tuple[torch.Tensor | None, Terms]:
        """Add the callbacks' terms for ``group``, show all to the term hooks, then weight:
        returns (Σ weight · term, or ``None`` when every weight is 0; the named terms)."""
        extra = {t.name: t.fn(self, batches) for t in self._extra_terms if t.group == group}
        terms = {**terms, **extra}
        for hook in self._term_hooks:
            hook(group, terms)
        return self.weighted(terms), terms

    def weighted(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        total = None
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(f"loss term '{name}' is {value.item()}")
            stream, _, term = name.rpartition(":")
            w = self.weight_of(term) * self.stream_weights.get(stream or MAIN, 1.0)
            if w == 0.0:
                continue
            total = value * w if total is None else total + value * w
        return total

    # -- Lightning ------------------------------------------------------------------------------
    def training_step(self, dataloader_iter):
        # Pulling the batch here (instead of taking ``batch``) stops Lightning from prefetching:
        # the driver collects inside the iterator, so a prefetch would collect ahead of the
        # update and a checkpoint would then hold a replay from the future.
        batches, _, _ = next(dataloader_iter)
        return self.update(self.trainer.strategy.batch_to_device(batches))

    def update(self, batches: Batches) -> torch.Tensor | None:
        """One gradient step on ``{stream: batch}`` (automatic optimisation, one group)."""
        total, terms = self.group_loss(ALL, self.stream_terms(batches), batches)
        if total is None:
            raise NonFiniteLossError("every loss term is switched off (all weights are 0)")
        self.log_terms(terms)
        return total

    def log_terms(self, terms: Mapping[str, torch.Tensor]) -> None:
        """Log loss terms every ``log_every_n_steps`` only: ``self.log`` costs about a
        millisecond per value, as much as a small agent's whole update."""
        trainer = self._trainer
        if trainer is None or self.global_step % max(trainer.log_every_n_steps, 1):
            return
        self.log_dict({f"loss/{k}": v.detach() for k, v in terms.items()}, on_step=True,
                      prog_bar=False, logger=True, batch_size=1)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["agent_state"] = {
            "loss_weights": dict(self.loss_weights),
            "stream_weights": dict(self.stream_weights),
            "env_steps": int(self.env_steps),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("agent_state", {})
        self.loss_weights = dict(state.get("loss_weights", {}))
        self.stream_weights = dict(state.get("stream_weights", {MAIN: 1.0}))
        self.env_steps = int(state.get("env_steps", 0))


def linear_schedule(start: float, end: float, duration: int, step: int) -> float:
    """Linear interpolation from ``start`` to ``end`` over ``duration`` steps, then constant."""
    if duration <= 0:
        return end
    frac = min(max(step / duration, 0.0), 1.0)
    return start + frac * (end - start)


def assert_finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise NonFiniteLossError(f"{what} is {value}")
    return value
