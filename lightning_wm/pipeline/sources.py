"""Named data sources the driver samples ``{stream: batch}`` from.

A source owns its data and its own random generator, so adding a stream never moves the draws of
another (the main stream's batches are the same with or without a teacher stream beside it).

- :class:`ReplaySource`: a replay the driver's collector fills with the agent's own experience
  (the ``main`` stream), or one filled from elsewhere.
- :class:`OfflineSource`: a fixed set of episodes (another task's data, a dataset).
- :class:`RolloutSource`: a replay that another policy (a teacher) fills on the target task, a
  few env steps after each of the driver's collection phases, through a collector of its own.
- :class:`SegmentSource`: the transitions of the latest collection phase only, in order, for
  on-policy agents (PPO: roll out, a few epochs of minibatches, discard); filled by the driver's
  collector (the ``main`` stream) or, given a collector and a policy, by a teacher of its own.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Protocol

import numpy as np
import torch

from lightning_wm.data.collector import Collector, Policy
from lightning_wm.data.portable import plain, to_array, to_tensor
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


#: fields of an on-policy batch; every one is ``[N, 2, ...]`` except ``is_last`` ``[N]``
SEGMENT_FIELDS = ("obs", "action", "reward", "is_first", "is_terminal")


class SegmentSource:
    """The latest phase's transitions as ``N`` windows of 2 steps, in the order they happened
    within each segment, plus ``is_last`` ``[N]``: True where the next window does not continue
    this one (the episode ended, or the phase cut it and its successor is the next phase's).

    A batch is the whole phase (the agent draws its own minibatches), so the generalised
    advantage estimate runs backwards over it, restarting at every ``is_last``: a cut segment
    bootstraps from the value of its last observation, a terminal one from 0 (``is_terminal``).

    With ``collector``, ``policy`` and ``steps_per_phase`` the source refills itself after every
    driver phase (a teacher's rollouts on the target task, counted apart from the run's budget);
    without, the driver fills it (the ``main`` stream of an on-policy agent).
    """

    def __init__(self, collector: Collector | None = None, policy: Policy | Callable | None = None,
                 steps_per_phase: int = 0) -> None:
        self_filling = collector is not None
        if self_filling != (policy is not None) or (self_filling and steps_per_phase < 1):
            raise ValueError("a self-filling segment source needs a collector, a policy and "
                             "steps_per_phase >= 1")
        self.collector, self.policy, self.steps_per_phase = collector, policy, steps_per_phase
        self._windows: list[dict[str, np.ndarray]] = []

    @property
    def env_steps(self) -> int:
        return 0 if self.collector is None else self.collector.env_steps

    def __len__(self) -> int:
        return sum(len(w["is_last"]) for w in self._windows)

    def clear(self) -> None:
        self._windows = []

    def add_episode(self, episode: Mapping[str, np.ndarray], task_id: int = 0) -> None:
        """A finished episode or a cut segment (the collector's step layout) -> its windows."""
        n = len(episode["reward"]) - 1
        if n < 1:
            return
        windows = {k: np.stack([np.asarray(episode[k][:-1]), np.asarray(episode[k][1:])], 1)
                   for k in SEGMENT_FIELDS}
        windows["is_last"] = np.arange(n) == n - 1
        windows["task_id"] = np.full((n, 2), int(task_id))
        self._windows.append(windows)

    def ready(self) -> bool:
        return bool(self._windows)

    def sample(self) -> dict[str, torch.Tensor]:
        """The whole phase (no draw: the agent shuffles its own minibatches)."""
        return {k: torch.as_tensor(np.concatenate([w[k] for w in self._windows]))
                for k in self._windows[0]}

    def refill(self, policy: Policy | Callable, collector: Collector, steps: int) -> list[float]:
        """Discard the last phase, collect ``steps`` env steps with ``policy``, and cut the
        episodes in flight so their steps so far belong to this phase; returns the returns of
        the episodes that finished."""
        self.clear()
        returns = collector.collect(policy, steps, self)
        collector.flush_in_flight(self)
        return returns

    def after_phase(self, env_steps: int) -> None:
        if self.collector is not None:
            self.refill(self.policy, self.collector, self.steps_per_phase)

    def close(self) -> None:
        if self.collector is not None:
            self.collector.close()

    def state_dict(self) -> dict[str, Any]:
        # saved although a phase boundary's updates have used it: a checkpoint then holds
        # exactly what the driver held, whatever the next phase does first
        state: dict[str, Any] = {"windows": [{k: to_tensor(v) for k, v in w.items()}
                                             for w in self._windows]}
        if self.collector is not None:
            state["collector"] = self.collector.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._windows = [{k: to_array(v) for k, v in w.items()} for w in state["windows"]]
        if self.collector is not None:
            self.collector.load_state_dict(state["collector"])
