"""Checkpoint state in the types a weights-only ``torch.load`` reads: tensors, plain containers,
numbers, strings and bytes.

A numpy array or random state pickled as such needs numpy's globals on load, which a weights-only
load refuses (and an allowlist wide enough for them is wider than needed), so state is converted
on the way out and back on the way in, exactly: arrays keep their dtype, shape and values.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch


def to_tensor(array: Any) -> torch.Tensor:
    """An array as a CPU tensor of the same dtype and values (shares memory when it can)."""
    array = np.asarray(array)
    if array.dtype == object:
        raise TypeError("an object array cannot be stored in a weights-only checkpoint")
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = array.copy()  # torch wants writable memory it can view
    return torch.from_numpy(array)


def to_array(value: Any) -> np.ndarray:
    """Back to numpy (tensors as :func:`to_tensor` wrote them; arrays pass through)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def global_numpy_rng() -> dict[str, Any]:
    """``np.random``'s legacy global state as a dict of ints and a float."""
    state = np.random.get_state(legacy=False)
    inner = state["state"]
    return {"bit_generator": str(state["bit_generator"]),
            "state": {"key": [int(k) for k in inner["key"]], "pos": int(inner["pos"])},
            "has_gauss": int(state["has_gauss"]), "gauss": float(state["gauss"])}


def set_global_numpy_rng(state: Mapping[str, Any] | tuple) -> None:
    if isinstance(state, tuple):  # numpy's own tuple form
        np.random.set_state(state)
        return
    inner = state["state"]
    np.random.set_state({**state, "state": {"key": np.asarray(inner["key"], np.uint32),
                                            "pos": int(inner["pos"])}})


def plain(value: Any) -> Any:
    """``value`` with numpy arrays turned into lists and numpy scalars into Python numbers
    (for small state such as a bit generator's, where a list is the natural form)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value
