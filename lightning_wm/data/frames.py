"""Stored episodes, with frame stacks kept once per frame.

An Atari observation is a stack of the last k frames (oldest first), so consecutive observations
of an episode share k − 1 frames: stored as they come, every frame is kept k times (at
EfficientZero's 4 × 96 × 96 RGB, 110,592 bytes a step where 27,648 are new). An episode whose
observations ``[T, D, ...]`` satisfy ``obs[t, :D − c] == obs[t − 1, c:]`` for every t, for some
block of c channels dividing D, is kept as its first observation's k = D / c blocks followed by
each later step's newest block: ``k − 1 + T`` blocks of c channels. Windows are rebuilt from them
when sampled. The test is the equality itself, on every step, so packing is lossless whatever
the observations are; an episode that fails it (no stack, a stack that is not shifted this way)
is kept as it came.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np


def stack_block(obs: np.ndarray) -> int:
    """The smallest block c of channels (a proper divisor of ``obs.shape[1]``) by which every
    observation of ``obs`` ``[T, D, H, W]`` is the previous one shifted, plus c new channels;
    0 when there is none, or ``obs`` is not a sequence of two or more images."""
    if obs.ndim != 4 or len(obs) < 2:
        return 0
    depth = obs.shape[1]
    for c in range(1, depth):
        if depth % c == 0 and np.array_equal(obs[1:, :depth - c], obs[:-1, c:]):
            return c
    return 0


def pack(obs: np.ndarray, block: int) -> np.ndarray:
    """``[k − 1 + T, c, H, W]``: the first observation's k blocks, then each later newest block."""
    depth = obs.shape[1]
    head = obs[0].reshape(depth // block, block, *obs.shape[2:])
    return np.concatenate([head, obs[1:, depth - block:]])


def unpack(frames: np.ndarray, depth: int, start: int, stop: int) -> np.ndarray:
    """Observations ``start..stop − 1`` ``[stop − start, k · c, H, W]`` from packed ``frames``
    (observation t is blocks t..t + k − 1)."""
    n, c = stop - start, frames.shape[1]
    stacked = np.stack([frames[start + i:start + i + n] for i in range(depth)], axis=1)
    return stacked.reshape(n, depth * c, *frames.shape[2:])


class StoredEpisode(Mapping):
    """One stored episode: ``episode[field]`` is the whole field as an array (observations
    rebuilt when packed; other fields are the stored arrays themselves), and
    :meth:`window` a slice of it without rebuilding the rest."""

    def __init__(self, fields: Mapping[str, np.ndarray], frames: np.ndarray | None = None,
                 depth: int = 1) -> None:
        self._fields = {k: np.asarray(v) for k, v in fields.items()}
        self._frames, self._depth = frames, int(depth)

    @classmethod
    def of(cls, fields: Mapping[str, np.ndarray]) -> "StoredEpisode":
        """Packs ``fields["obs"]`` when its steps are shifted frame stacks (module docstring)."""
        obs = np.asarray(fields["obs"])
        block = stack_block(obs)
        if block == 0:
            return cls(fields)
        rest = {k: v for k, v in fields.items() if k != "obs"}
        return cls(rest, np.ascontiguousarray(pack(obs, block)), obs.shape[1] // block)

    @property
    def packed(self) -> bool:
        return self._frames is not None

    def window(self, key: str, start: int, stop: int) -> np.ndarray:
        if key == "obs" and self._frames is not None:
            return unpack(self._frames, self._depth, int(start), int(stop))
        return self._fields[key][start:stop]

    def __getitem__(self, key: str) -> np.ndarray:
        if key == "obs" and self._frames is not None:
            return unpack(self._frames, self._depth, 0, len(self._frames) - self._depth + 1)
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        if self._frames is not None:
            yield "obs"
        yield from self._fields

    def __len__(self) -> int:
        return len(self._fields) + (self._frames is not None)

    @property
    def nbytes(self) -> int:
        """Bytes held: what the replay's memory actually pays for this episode."""
        frames = 0 if self._frames is None else self._frames.nbytes
        return frames + sum(v.nbytes for v in self._fields.values())

    def state(self, to_tensor) -> dict[str, Any]:
        """The fields as stored (packed frames stay packed), each array through ``to_tensor``;
        :meth:`from_state` reads it back."""
        state = {k: to_tensor(v) for k, v in self._fields.items()}
        if self._frames is not None:
            state.update(frames=to_tensor(self._frames), depth=self._depth)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any], to_array) -> "StoredEpisode":
        fields = {k: to_array(v) for k, v in state.items() if k not in ("frames", "depth")}
        if "frames" not in state:
            return cls(fields)
        return cls(fields, to_array(state["frames"]), int(state["depth"]))
