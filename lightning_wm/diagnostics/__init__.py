"""Diagnostics: Lightning callbacks that measure a run without changing it, and the registry run
configs name them by.

They sit beside the transfer callbacks (:mod:`lightning_wm.transfer`), not inside that registry:
a diagnostic reads a source checkpoint with the transfer helpers, so the transfer package must
not import diagnostics back. :mod:`lightning_wm.callbacks` builds either kind by name.
"""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L

from lightning_wm.diagnostics.embedding import EmbeddingAgreement
from lightning_wm.diagnostics.reconstruction import Reconstruction
from lightning_wm.source_slots import resolve_slots

DIAGNOSTICS: dict[str, type[L.Callback]] = {
    "embedding_agreement": EmbeddingAgreement,
    "reconstruction": Reconstruction,
}


def make_diagnostic(name: str, args: Mapping[str, Any], sources: Mapping[str, str]) -> L.Callback:
    """Build diagnostic ``name`` from ``args``; a ``source`` argument names a slot of
    ``sources``."""
    if name not in DIAGNOSTICS:
        raise KeyError(f"unknown diagnostic '{name}'; known: {sorted(DIAGNOSTICS)}")
    return DIAGNOSTICS[name](**resolve_slots(name, args, sources))


__all__ = ["DIAGNOSTICS", "EmbeddingAgreement", "Reconstruction", "make_diagnostic"]
