"""Transfer callbacks that rewrite component weights once, at the start of training: fractional
and modular transfer (Sasso, Sabatelli and Wiering, "Multi-Source Transfer Learning for Deep
Model-Based Reinforcement Learning", TMLR, 2023, §4.1) and component transfer (van Driessel and
François-Lavet, "Component Transfer Learning for Deep RL Based on Abstract Representations", 2021,
§4.1).

Every callback here is all-or-nothing: it resolves every address (:func:`select` raises
:class:`UnknownComponentError` on a pattern that matches nothing), reads the source and checks
the presence and shape of every parameter it will take from the source, for *all* addresses,
before it changes a weight, a ``requires_grad`` flag or draws a random number. A failing transfer
raises naming the parameter by its full address with target and source shapes, and leaves the
agent (and the torch RNG) exactly as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn

from lightning_wm.components import select
from lightning_wm.transfer.base import (
    TransferCallback,
    _check_compatible,
    copy_,
    freeze,
    load_source,
    mix_,
    reinit,
    source_state_for,
)

MODES = ("full", "fractional", "random", "frozen")

#: modular transfer (Sasso et al. (2023), Algorithm 3), for Dreamer-style agents: world model
#: copied, reward/value hidden layers copied and output layers fractional, actor and the
#: transition's action-input weights fresh. Every address must exist on the agent, or ``apply``
#: raises.
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

#: The failure mode of Sasso et al. (2023), Appendix D: reward and value transferred in full
#: (also Dreamer-style only).
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


# -- check everything, then change anything -----------------------------------------------
def _under(key: str, prefix: str) -> bool:
    return not prefix or key == prefix or key.startswith(f"{prefix}.")


@dataclass
class _Step:
    """One address of a transfer plan: what it does and the source tensors it reads."""

    address: str
    mode: str  # "full" | "fractional" | "random" | "frozen"
    module: nn.Module
    #: source tensors keyed relative to ``address`` (empty for "random")
    state: Mapping[str, torch.Tensor] = field(default_factory=dict)
    #: key prefixes (relative to ``address``; "" = all) a later "random" step re-initialises:
    #: there the source is not required to fit (e.g. ``transition.action_input``, fresh in
    #: Sasso et al. (2023), Algorithm 3)
    fresh: tuple[str, ...] = ()
    #: keys that will not be taken from the source (set by :func:`_check_plan`)
    skip: frozenset[str] = frozenset()

    def is_fresh(self, key: str) -> bool:
        return any(_under(key, prefix) for prefix in self.fresh)


def _check_plan(steps: Sequence[_Step]) -> None:
    """Check every step against its source, all before any step runs; reads nothing random.

    A key a later "random" step re-initialises is taken from the source when the source has it
    in the target's shape (what the weights were before these checks existed, bit for bit) and
    is otherwise left to that re-initialisation instead of being an error.
    """
    for step in steps:
        if step.mode == "random":
            continue
        own = step.module.state_dict()
        step.skip = frozenset(
            k for k in set(own) | set(step.state) if step.is_fresh(k) and not (
                k in own and k in step.state
                and tuple(own[k].shape) == tuple(step.state[k].shape))
        )
        # the very check copy_ / mix_ make, made for every step before the first runs
        _check_compatible(step.module, step.state, step.address, step.skip)


@torch.no_grad()
def _run(step: _Step, fraction: float) -> None:
    """Carry out one checked step (:func:`copy_` / :func:`mix_` / :func:`reinit`)."""
    # copy_ / mix_ re-check, which cannot fail now; keys in ``skip`` are left to a later step
    if step.mode == "random":
        reinit(step.module)
    elif step.mode == "fractional":
        mix_(step.module, step.state, fraction, step.address, step.skip)
    else:
        copy_(step.module, step.state, step.address, step.skip)


def _sourced(steps: list[_Step], source) -> list[_Step]:
    """Attach each non-random step's source tensors (raises on an absent address)."""
    for step in steps:
        if step.mode == "random":
            continue
        try:
            step.state = source_state_for(source, step.address)
        except KeyError:
            if step.fresh != ("",):  # wholly re-initialised later: the source may lack it
                raise
    return steps


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
        steps = _sourced([_Step(a, "full", m) for a, m in targets.items()], source)
        _check_plan(steps)  # every parameter of every address, before the first copy
        for step in steps:
            _run(step, 1.0)


class FractionalTransfer(TransferCallback):
    """Fractional transfer θ_T ← θ_ε + λ θ_S on the named components (Sasso et al., 2023, §4.1, λ = 0.2)."""

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
        steps = _sourced([_Step(a, "fractional", m) for a, m in targets.items()], source)
        _check_plan(steps)  # before the first re-init draws a random number
        for step in steps:
            _run(step, self.fraction)


class ModularTransfer(TransferCallback):
    """Per-address transfer mode (full / fractional / random / frozen), coarse to fine.

    ``spec`` maps addresses to modes, or names a preset of :data:`PRESETS` (``"default"``,
    ``"full"``). "frozen" is a full copy whose parameters then get ``requires_grad=False``.

    A finer address refines what a coarser one did: a "random" address inside a copied one is
    re-initialised afterwards, so the source need not fit there. In the default preset that lets
    a source with another action count transfer (``transition.action_input`` and ``actor`` are
    fresh; nothing copied depends on the action count in Dreamer-style agents).
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

    def _plan(self, agent) -> list[_Step]:
        steps = [_Step(a, mode, m) for a, mode, m in self._resolve(agent)]
        for i, step in enumerate(steps):
            prefixes = []
            for later in steps[i + 1:]:
                if later.mode != "random":
                    continue
                if later.address == step.address or step.address.startswith(f"{later.address}."):
                    prefixes.append("")  # the whole of this step
                elif later.address.startswith(f"{step.address}."):
                    prefixes.append(later.address[len(step.address) + 1:])
            step.fresh = ("",) if "" in prefixes else tuple(prefixes)
        return steps

    def apply(self, agent) -> None:
        steps = self._plan(agent)  # raises on an absent address before anything changes
        needs_source = any(step.mode != "random" for step in steps)
        source = load_source(self.source) if needs_source else {}
        _check_plan(_sourced(steps, source))  # every address, before the first change
        for step in steps:
            _run(step, self.fraction)
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
        targets = select(agent.components, self.components)  # every pattern, before any re-init
        for module in targets.values():
            reinit(module)
