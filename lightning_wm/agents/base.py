"""Base LightningModule for every agent: named components, named loss terms, weights on them.

An agent subclasses :class:`Agent` and provides
- ``components``: an ``nn.ModuleDict`` keyed by names from :mod:`lightning_wm.components`;
- ``loss_terms(batch) -> {"component/term": scalar}``: each component's loss, unweighted;
- ``act(obs, state, explore) -> (action, state)``: batched acting for the collector.

Loss weights are matched to term names by glob (``"structure/*"``), so a transfer callback can
switch a term off (weight 0) or schedule it without knowing the agent. Several replay streams can
feed one update (XTRA's cross-task data, REPAINT's teacher rollouts): a batch is
``{stream: tensors}``; terms of stream ``s`` other than ``"main"`` are named ``"s:component/term"``
and scaled by ``stream_weights[s]``.
"""
from __future__ import annotations

import fnmatch
import math
from typing import Any, Mapping

import lightning as L
import torch
from torch import nn

from lightning_wm.components import check_vocabulary

MAIN = "main"


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the run is marked failed with the term's name."""


class Agent(L.LightningModule):
    #: length of the replay sequences this agent trains on (2 = single transitions)
    sequence_length: int = 2

    def __init__(self, components: Mapping[str, nn.Module]) -> None:
        super().__init__()
        check_vocabulary(components)
        self.components = nn.ModuleDict(dict(components))
        self.loss_weights: dict[str, float] = {}
        self.stream_weights: dict[str, float] = {MAIN: 1.0}
        self.env_steps = 0  # kept current by the data module; drives exploration schedules

    # -- to implement -------------------------------------------------------------------------
    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def act(self, obs: torch.Tensor, state: Any, explore: bool) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def initial_state(self, batch_size: int) -> Any:
        """Recurrent policy state for a batch of fresh episodes (``None`` when stateless)."""
        return None

    def reset_state(self, state: Any, done: torch.Tensor) -> Any:
        """Reset the entries of ``state`` whose episode just ended (``done`` is bool[N])."""
        return state

    # -- loss weighting -------------------------------------------------------------------------
    def set_loss_weight(self, pattern: str, weight: float) -> None:
        self.loss_weights[pattern] = float(weight)

    def weight_of(self, term: str) -> float:
        """Product of all weights whose pattern matches ``term`` (1 when none does)."""
        w = 1.0
        for pattern, value in self.loss_weights.items():
            if fnmatch.fnmatchcase(term, pattern):
                w *= value
        return w

    def stream_terms(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Named terms of every stream in ``batch``, prefixed by stream except for the main one."""
        if MAIN not in batch:  # a plain single-stream batch
            return self.loss_terms(batch)
        terms: dict[str, torch.Tensor] = {}
        for stream, sub in batch.items():
            if self.stream_weights.get(stream, 1.0) == 0.0:
                continue
            for name, value in self.loss_terms(sub).items():
                terms[name if stream == MAIN else f"{stream}:{name}"] = value
        return terms

    def total_loss(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = None
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(f"loss term '{name}' is {value.item()}")
            stream = name.split(":", 1)[0] if ":" in name else MAIN
            w = self.weight_of(name.split(":", 1)[-1]) * self.stream_weights.get(stream, 1.0)
            if w == 0.0:
                continue
            total = value * w if total is None else total + value * w
        if total is None:
            raise NonFiniteLossError("every loss term is switched off (all weights are 0)")
        return total

    # -- Lightning ------------------------------------------------------------------------------
    def training_step(self, dataloader_iter):
        # Pulling the batch here (instead of taking ``batch``) stops Lightning from prefetching:
        # the collector runs inside the iterator, so a prefetch would collect ahead of the update
        # and a checkpoint would then hold a replay from the future.
        batch, _, _ = next(dataloader_iter)
        batch = self.trainer.strategy.batch_to_device(batch)
        loss = self.update(batch)
        return loss

    def update(self, batch: Mapping[str, Any]) -> torch.Tensor | None:
        """One gradient step on ``batch`` (automatic optimisation); override for manual."""
        terms = self.stream_terms(batch)
        loss = self.total_loss(terms)
        self.log_terms(terms)
        return loss

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
