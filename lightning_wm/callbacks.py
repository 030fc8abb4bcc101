"""Every callback a run config can name: transfer callbacks and diagnostics, built by name.

The two registries live in their own packages (:mod:`lightning_wm.transfer`,
:mod:`lightning_wm.diagnostics`); a suite's ``callbacks:`` list mixes them, so the runner and the
suite checks look names up here.
"""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L

from lightning_wm.diagnostics import DIAGNOSTICS
from lightning_wm.source_slots import resolve_slots
from lightning_wm.transfer import TRANSFER_CALLBACKS

# a name in both registries would silently pick one of them
_SHARED = set(TRANSFER_CALLBACKS) & set(DIAGNOSTICS)
if _SHARED:
    raise ImportError(f"callback names registered as transfer and as diagnostic: {sorted(_SHARED)}")

CALLBACK_REGISTRY: dict[str, type[L.Callback]] = {**TRANSFER_CALLBACKS, **DIAGNOSTICS}


def make_callback(name: str, args: Mapping[str, Any], sources: Mapping[str, str]) -> L.Callback:
    """Build callback ``name`` from ``args``; a ``source`` argument names a slot of ``sources``,
    a ``sources`` argument a list of slots (callbacks that read several checkpoints)."""
    if name not in CALLBACK_REGISTRY:
        raise KeyError(f"unknown callback '{name}'; known: {sorted(CALLBACK_REGISTRY)}")
    return CALLBACK_REGISTRY[name](**resolve_slots(name, args, sources))


def describe_callbacks() -> dict[str, str]:
    """``{registry name: first line of the callback's docstring}``."""
    return {name: (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            for name, cls in CALLBACK_REGISTRY.items()}


__all__ = ["CALLBACK_REGISTRY", "describe_callbacks", "make_callback"]
