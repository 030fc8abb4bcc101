"""Named data sources the driver samples ``{stream: batch}`` from.

A source owns its data and its own random generator, so adding a stream never moves the draws of
another (the main stream's batches are the same with or without a teacher stream beside it).

- :class:`ReplaySource`: a replay the driver's collector fills with the agent's own experience
  (the ``main`` stream), or one filled from elsewhere.
- :class:`OfflineSource`: a fixed set of episodes (another task's data, a dataset).
- :class:`RolloutSource`: a replay that another policy (a teacher) fills on the target task, a
  few env steps after each of the driver's collection phases, through a collector of its own.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Protocol

import numpy as np
import torch

from lightning_wm.data.collector import Collector, Policy
from lightning_wm.data.portable import plain
from lightning_wm.data.replay import EpisodeReplay


class Source(Protocol):
    """What the driver asks of a source (a declared protocol: nothing else is probed)."""

    def ready(self) -> bool:
        """Enough data for a batch."""

    def sample(self) -> dict[str, torch.Tensor]:
        """One batch ``[B, T, ...]`` drawn with the source's own generator."""

    def after_phase(self, env_steps: int) -> None:
        """Called after every collection phase of the driver (sources that collect do so here)."""

    def close(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class ReplaySource:
    """Batches of ``length``-step windows from ``replay`` (uniform over episodes' windows, or
    with ``reward_fraction`` of them ending on a positive reward)."""

    def __init__(self, replay: EpisodeReplay, rng: np.random.Generator, batch_size: int,
                 length: int, reward_fraction: float = 0.0) -> None:
        self.replay, self.rng = replay, rng
        self.batch_size, self.length, self.reward_fraction = batch_size, length, reward_fraction

    def ready(self) -> bool:
        return self.replay.can_sample(self.length)

    def sample(self) -> dict[str, torch.Tensor]:
        batch = self.replay.sample(self.rng, self.batch_size, self.length, self.reward_fraction)
        return {k: torch.as_tensor(v) for k, v in batch.items()}

    def after_phase(self, env_steps: int) -> None:
        pass

    def close(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"replay": self.replay.state_dict(), "rng": plain(self.rng.bit_generator.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]


class OfflineSource(ReplaySource):
    """A fixed set of episodes (dicts of ``obs``, ``action``, ``reward``, ``is_first``,
    ``is_terminal`` arrays, as the collector writes them) sampled like a replay. Its episodes are
    data given at construction, so a checkpoint keeps only the generator's state."""

    def __init__(self, episodes: Iterable[Mapping[str, np.ndarray]], rng: np.random.Generator,
                 batch_size: int, length: int, task_id: int = 0) -> None:
        replay = EpisodeReplay(capacity=10**12)
        for episode in episodes:
            replay.add_episode({k: np.asarray(v) for k, v in episode.items()}, task_id)
        if not replay.can_sample(length):
            raise ValueError(f"offline source: no episode is {length} steps long")
        super().__init__(replay, rng, batch_size, length)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": plain(self.rng.bit_generator.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class RolloutSource(ReplaySource):
    """A replay filled by ``policy`` (e.g. a frozen teacher) through ``collector``:
    ``steps_per_phase`` env steps after each driver phase. Its env steps are counted apart from
    the run's budget (:attr:`env_steps`), so a report can charge them."""

    def __init__(self, collector: Collector, policy: Policy | Callable, replay: EpisodeReplay,
                 rng: np.random.Generator, batch_size: int, length: int,
                 steps_per_phase: int) -> None:
        if steps_per_phase < 1:
            raise ValueError(f"steps_per_phase must be >= 1, not {steps_per_phase}")
        super().__init__(replay, rng, batch_size, length)
        self.collector, self.policy, self.steps_per_phase = collector, policy, steps_per_phase

    @property
    def env_steps(self) -> int:
        return self.collector.env_steps

    def after_phase(self, env_steps: int) -> None:
        self.collector.collect(self.policy, self.steps_per_phase, self.replay)

    def close(self) -> None:
        self.collector.close()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "collector": self.collector.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.collector.load_state_dict(state["collector"])
