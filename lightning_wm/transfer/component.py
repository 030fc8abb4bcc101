"""Transfer callbacks that rewrite component weights once, at the start of training (SPEC §2)."""
from __future__ import annotations

from typing import Mapping, Sequence

from torch import nn

from lightning_wm.components import select
from lightning_wm.transfer.base import (
    TransferCallback,
    copy_,
    freeze,
    load_source,
    mix_,
    reinit,
    source_state_for,
)

MODES = ("full", "fractional", "random", "frozen")

#: SPEC §2 modular transfer (000 Algorithm 3), for Dreamer-style agents: world model copied,
#: reward/value hidden layers copied and output layers fractional, actor and the transition's
#: action-input weights fresh. Every address must exist on the agent, or ``apply`` raises.
MODULAR_DEFAULT: dict[str, str] = {
    "encoder": "full",
    "representation": "full",
    "decoder": "full",
    "transition": "full",
    "transition.action_input": "random",
    "reward": "full",
    "reward.out": "fractional",
    "value": "full",
    "value.out": "fractional",
    "actor": "random",
}

#: The Appendix-D failure mode: reward and value transferred in full (also Dreamer-style only).
MODULAR_FULL: dict[str, str] = {
    k: v for k, v in MODULAR_DEFAULT.items() if k not in ("reward.out", "value.out")
}

#: preset names a run config may give as ``spec``
PRESETS: dict[str, dict[str, str]] = {"default": MODULAR_DEFAULT, "full": MODULAR_FULL}


def _as_list(components: str | Sequence[str]) -> list[str]:
    return [components] if isinstance(components, str) else list(components)


def _check_fraction(fraction: float) -> float:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    return float(fraction)


class LoadComponents(TransferCallback):
    """Copy the named components (or sub-addresses) from a source checkpoint in full."""

    def __init__(self, source: str, components: str | Sequence[str]) -> None:
        super().__init__()
        self.source = str(source)
        self.components = _as_list(components)

    def key_args(self):
        return {"source": self.source, "components": self.components}

    def apply(self, agent) -> None:
        targets = select(agent.components, self.components)  # resolve all before any surgery
        source = load_source(self.source)
        states = {a: source_state_for(source, a) for a in targets}
        for address, module in targets.items():
            copy_(module, states[address], address)


class FractionalTransfer(TransferCallback):
    """Fractional transfer θ_T ← θ_ε + λ θ_S on the named components (SPEC §2, λ = 0.2)."""

    def __init__(self, source: str, components: str | Sequence[str], fraction: float = 0.2) -> None:
        super().__init__()
        self.source = str(source)
        self.components = _as_list(components)
        self.fraction = _check_fraction(fraction)

    def key_args(self):
        return {"source": self.source, "components": self.components, "fraction": self.fraction}

    def apply(self, agent) -> None:
        targets = select(agent.components, self.components)
        source = load_source(self.source)
        states = {a: source_state_for(source, a) for a in targets}
        for address, module in targets.items():
            mix_(module, states[address], self.fraction, address)


class ModularTransfer(TransferCallback):
    """Per-address transfer mode (full / fractional / random / frozen), coarse to fine.

    ``spec`` maps addresses to modes, or names a preset of :data:`PRESETS` (``"default"``,
    ``"full"``). "frozen" is a full copy whose parameters then get ``requires_grad=False``.
    """

    def __init__(self, source: str, spec: Mapping[str, str] | str = "default",
                 fraction: float = 0.2) -> None:
        super().__init__()
        self.source = str(source)
        if isinstance(spec, str):
            if spec not in PRESETS:
                raise KeyError(f"unknown modular preset '{spec}'; known: {sorted(PRESETS)}")
            spec = PRESETS[spec]
        spec = dict(spec)
        bad = {a: m for a, m in spec.items() if m not in MODES}
        if bad:
            raise ValueError(f"unknown transfer mode(s) {bad}; known: {list(MODES)}")
        # shorter address first, so "reward.out" refines what "reward" did; stable otherwise
        self.spec = dict(sorted(spec.items(), key=lambda kv: kv[0].count(".")))
        self.fraction = _check_fraction(fraction)

    def key_args(self):
        return {"source": self.source, "spec": self.spec, "fraction": self.fraction}

    def _resolve(self, agent) -> list[tuple[str, str, nn.Module]]:
        return [
            (address, mode, module)
            for pattern, mode in self.spec.items()
            for address, module in select(agent.components, pattern).items()
        ]

    def apply(self, agent) -> None:
        plan = self._resolve(agent)  # raises on an absent address before anything changes
        needs_source = any(mode != "random" for _, mode, _ in plan)
        source = load_source(self.source) if needs_source else {}
        states = {a: source_state_for(source, a) for a, mode, _ in plan if mode != "random"}
        for address, mode, module in plan:
            if mode == "random":
                reinit(module)
            elif mode == "fractional":
                mix_(module, states[address], self.fraction, address)
            else:
                copy_(module, states[address], address)
        self.on_resume(agent)  # the freezing, shared with resume

    def on_resume(self, agent) -> None:
        freeze([module for _, mode, module in self._resolve(agent) if mode == "frozen"])


class ResetComponents(TransferCallback):
    """Re-initialise the named components (Xavier weights, zero biases)."""

    def __init__(self, components: str | Sequence[str]) -> None:
        super().__init__()
        self.components = _as_list(components)

    def key_args(self):
        return {"components": self.components}

    def apply(self, agent) -> None:
        for module in select(agent.components, self.components).values():
            reinit(module)
