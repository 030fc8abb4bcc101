"""Every callback a run config can name: transfer callbacks and diagnostics, built by name.

The two registries live in their own packages (:mod:`lightning_wm.transfer`,
:mod:`lightning_wm.diagnostics`); a suite's ``callbacks:`` list mixes them, so the runner looks
names up here. :data:`CALLBACK_REGISTRY` is built on first use (PEP 562): the callbacks import
Lightning, which suite validation, reading :mod:`lightning_wm.callback_args` instead, must not pay
for.
"""
from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Mapping

from lightning_wm.source_slots import resolve_slots

if TYPE_CHECKING:
    import lightning as L

    CALLBACK_REGISTRY: dict[str, type[L.Callback]]


@cache
def _registry() -> dict[str, type[L.Callback]]:
    from lightning_wm.diagnostics import DIAGNOSTICS
    from lightning_wm.transfer import TRANSFER_CALLBACKS

    # a name in both registries would silently pick one of them
    shared = set(TRANSFER_CALLBACKS) & set(DIAGNOSTICS)
    if shared:
        raise ImportError(f"callback names registered as transfer and as diagnostic: "
                          f"{sorted(shared)}")
    return {**TRANSFER_CALLBACKS, **DIAGNOSTICS}


def __getattr__(name: str) -> Any:
    if name == "CALLBACK_REGISTRY":
        return _registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_callback(name: str, args: Mapping[str, Any], sources: Mapping[str, str]) -> L.Callback:
    """Build callback ``name`` from ``args``; a ``source`` argument names a slot of ``sources``,
    a ``sources`` argument a list of slots (callbacks that read several checkpoints)."""
    registry = _registry()
    if name not in registry:
        raise KeyError(f"unknown callback '{name}'; known: {sorted(registry)}")
    return registry[name](**resolve_slots(name, args, sources))


def describe_callbacks() -> dict[str, str]:
    """``{registry name: first line of the callback's docstring}``."""
    return {name: (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            for name, cls in _registry().items()}


__all__ = ["CALLBACK_REGISTRY", "describe_callbacks", "make_callback"]
