"""A callback's arguments as a run config names them -> as its constructor takes them.

Run configs name source checkpoints by slot (``source: base``); the runner knows which checkpoint
fills each slot. Transfer callbacks and diagnostics both read checkpoints this way, so both
registries resolve their arguments here.
"""
from __future__ import annotations

from typing import Any, Mapping


def resolve_slots(name: str, args: Mapping[str, Any], sources: Mapping[str, str]) -> dict[str, Any]:
    """``args`` with a ``source`` slot replaced by its checkpoint path and a ``sources`` list of
    slots by a list of paths (callbacks that read several checkpoints); ``name`` is the
    callback's, for the error messages."""
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
    return kwargs
