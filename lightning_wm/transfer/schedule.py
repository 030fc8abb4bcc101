"""Transfer callbacks that change over training, scheduled by optimizer steps (global_step)."""
from __future__ import annotations

from typing import Any, Sequence

from lightning_wm.components import select
from lightning_wm.transfer.base import TransferCallback, freeze, unfreeze


def _as_list(items: str | Sequence[str]) -> list[str]:
    return [items] if isinstance(items, str) else list(items)


class FreezeComponents(TransferCallback):
    """Freeze the named components, optionally until ``global_step >= until_step``.

    Freezing is decided at ``setup``, before a strategy wraps the model: DDP then never registers
    the frozen parameters, so a backward that does not reach them is no error. The optimisers
    still hold them, so with ``until_step`` they train again once unfrozen; while frozen they get
    no gradient and the optimiser skips them.
    """

    def __init__(self, components: str | Sequence[str], until_step: int | None = None) -> None:
        super().__init__()
        self.components = _as_list(components)
        self.until_step = None if until_step is None else int(until_step)
        self.unfrozen = False

    def key_args(self):
        return {"components": self.components, "until_step": self.until_step}

    def configure(self, agent, pipeline) -> None:
        if self.until_step is not None and pipeline is not None and pipeline.world > 1:
            # DDP registers the parameters that need gradients when it wraps the model; one
            # frozen then would never be averaged across ranks after unfreezing
            raise ValueError("freeze with until_step cannot run under DDP (unfrozen parameters "
                             "would not be synchronised); freeze for the whole run instead")
        freeze(select(agent.components, self.components))

    def on_resume(self, agent) -> None:
        # requires_grad is not in the checkpoint: configure froze again, undo if already due
        if self.unfrozen:
            unfreeze(select(agent.components, self.components))

    def on_step(self, agent, step: int) -> None:
        if self.unfrozen or self.until_step is None or step < self.until_step:
            return
        unfreeze(select(agent.components, self.components))
        self.unfrozen = True

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "unfrozen": self.unfrozen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.unfrozen = bool(state_dict.get("unfrozen", False))


class LossSchedule(TransferCallback):
    """Give loss terms (glob patterns) ``weight`` until ``until_step``, then their previous weight.

    E.g. ``LossSchedule(["structure/*"], 0.0, until_step=15_000)`` omits the structure losses
    early in training (variant 4 of van Driessel and François-Lavet, "Component Transfer Learning
    for Deep RL Based on Abstract Representations", 2021, §5.2.3). "Previous" is the agent's
    weight for the same pattern when training started, 1.0 if it had none.
    """

    #: while terms are off, the parameters only they reach get no gradient
    leaves_parameters_unused = True

    def __init__(self, terms: str | Sequence[str], weight: float = 0.0, *,
                 until_step: int) -> None:
        super().__init__()
        self.terms = _as_list(terms)
        if not self.terms:
            raise ValueError("LossSchedule needs at least one term pattern")
        self.weight = float(weight)
        self.until_step = int(until_step)
        self.previous: dict[str, float] = {}
        self.switched = False

    def key_args(self):
        return {"terms": self.terms, "weight": self.weight, "until_step": self.until_step}

    def apply(self, agent) -> None:
        self.previous = {t: float(agent.loss_weights.get(t, 1.0)) for t in self.terms}
        self._set(agent)

    def _set(self, agent) -> None:
        for term in self.terms:
            agent.set_loss_weight(term, self.previous[term] if self.switched else self.weight)

    def on_resume(self, agent) -> None:
        # the agent checkpoints its weights too; this keeps both in agreement regardless
        self._set(agent)

    def on_step(self, agent, step: int) -> None:
        if not self.switched and step >= self.until_step:
            self.switched = True
            self._set(agent)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "previous": dict(self.previous), "switched": self.switched}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.previous = {k: float(v) for k, v in state_dict.get("previous", {}).items()}
        self.switched = bool(state_dict.get("switched", False))
