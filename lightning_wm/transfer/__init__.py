"""Transfer methods as Lightning callbacks, and the registry run configs name them by."""
from __future__ import annotations

from typing import Any, Mapping

from lightning_wm.diagnostics import EmbeddingAgreement
from lightning_wm.reconstruction import Reconstruction
from lightning_wm.transfer.base import (
    SourceState,
    TransferCallback,
    copy_,
    freeze,
    load_source,
    mix_,
    reinit,
    source_state_for,
    unfreeze,
)
from lightning_wm.transfer.component import (
    MODULAR_DEFAULT,
    MODULAR_FULL,
    PRESETS,
    FractionalTransfer,
    LoadComponents,
    ModularTransfer,
    ResetComponents,
)
from lightning_wm.transfer.meta_model import MetaModelTransfer
from lightning_wm.transfer.schedule import FreezeComponents, LossSchedule

CALLBACKS: dict[str, type[TransferCallback]] = {
    "load_components": LoadComponents,
    "fractional": FractionalTransfer,
    "modular": ModularTransfer,
    "freeze": FreezeComponents,
    "reset": ResetComponents,
    "loss_schedule": LossSchedule,
    "meta_model": MetaModelTransfer,
    # diagnostics are callbacks too (they read a source checkpoint by slot), named beside transfer
    "embedding_agreement": EmbeddingAgreement,
    "reconstruction": Reconstruction,
}



def make_callback(name: str, args: Mapping[str, Any], sources: Mapping[str, str]) -> TransferCallback:
    """Build callback ``name`` from ``args``; a ``source`` argument names a slot of ``sources``,
    a ``sources`` argument a list of slots (callbacks that read several checkpoints)."""
    if name not in CALLBACKS:
        raise KeyError(f"unknown transfer callback '{name}'; known: {sorted(CALLBACKS)}")
    kwargs = dict(args)

    def path(slot: str) -> str:
        if slot not in sources:
            raise KeyError(
                f"callback '{name}': unknown source slot '{slot}'; known: {sorted(sources)}"
            )
        return sources[slot]

    if "source" in kwargs:
        kwargs["source"] = path(kwargs["source"])
    if "sources" in kwargs:
        if isinstance(kwargs["sources"], str):
            raise TypeError(f"callback '{name}': 'sources' must be a list of slots")
        kwargs["sources"] = [path(slot) for slot in kwargs["sources"]]
    return CALLBACKS[name](**kwargs)


def describe_callbacks() -> dict[str, str]:
    """``{registry name: first line of the callback's docstring}``."""
    return {
        name: (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        for name, cls in CALLBACKS.items()
    }


__all__ = [
    "CALLBACKS", "MODULAR_DEFAULT", "MODULAR_FULL", "PRESETS", "FractionalTransfer",
    "FreezeComponents", "LoadComponents", "LossSchedule", "MetaModelTransfer", "ModularTransfer",
    "ResetComponents",
    "SourceState", "TransferCallback", "copy_", "describe_callbacks", "freeze", "load_source",
    "make_callback", "mix_", "reinit", "source_state_for", "unfreeze",
]
