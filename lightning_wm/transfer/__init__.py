"""Transfer methods as Lightning callbacks, and the registry run configs name them by.

Diagnostics have their own registry (:mod:`lightning_wm.diagnostics`);
:mod:`lightning_wm.callbacks` builds a callback of either kind by name."""
from __future__ import annotations


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
from lightning_wm.transfer.repaint import InstanceTransfer, Kickstart
from lightning_wm.transfer.schedule import FreezeComponents, LossSchedule

TRANSFER_CALLBACKS: dict[str, type[TransferCallback]] = {
    "load_components": LoadComponents,
    "fractional": FractionalTransfer,
    "modular": ModularTransfer,
    "freeze": FreezeComponents,
    "reset": ResetComponents,
    "loss_schedule": LossSchedule,
    "meta_model": MetaModelTransfer,
    "kickstart": Kickstart,
    "instance_transfer": InstanceTransfer,
}


__all__ = [
    "MODULAR_DEFAULT", "MODULAR_FULL", "PRESETS", "FractionalTransfer",
    "FreezeComponents", "InstanceTransfer", "Kickstart", "LoadComponents", "LossSchedule", "MetaModelTransfer", "ModularTransfer",
    "ResetComponents", "SourceState", "TRANSFER_CALLBACKS", "TransferCallback", "copy_", "freeze",
    "load_source", "mix_", "reinit", "source_state_for", "unfreeze",
]
