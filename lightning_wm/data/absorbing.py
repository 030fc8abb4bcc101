"""Sampling past the end of episodes with absorbing states (Voskuil, "Pre-training World Models to
efficiently learn related tasks", Master's thesis, Leiden University, 2022, §5.2).

"Instead of throwing away short episodes, we allow DreamerV2 to sample past the end of an
episode. For the time steps past the end of the episode, we treat the last step of the episode as
an absorbing state, so that p(s_t = s_{t+1} | s_t, a_t) = 1, no matter the action. To this end, we
repeat the last observation, set the reward and discount targets to 0 and uniformly sample a
random action." (Voskuil (2022), §5.2)

:func:`sample_absorbing` draws ``length``-step sequences from any
:class:`~lightning_wm.data.replay.EpisodeReplay`, also from episodes shorter than ``length`` and
from near their ends; each step after an episode's last one is an absorbing step:

- ``obs``: the episode's last observation, repeated;
- ``reward`` 0, ``is_terminal`` True (so the discount target 1 − is_terminal is 0), ``is_first``
  False;
- ``action``: a fresh uniformly random one-hot (``discrete``) or a uniform vector in [-1, 1]^A;
- ``is_absorbing`` True (False on real steps), an extra key so a loss can mask these steps.

A sequence may start at any real step whose window holds at most ``max_absorbing`` absorbing
steps (default ``length`` − 1: every real step can start one). Episodes are drawn in proportion to
their number of starts, tasks balanced as in ``EpisodeReplay.sample``; with ``max_absorbing=0``
the draws, and hence the batches, are exactly those of ``EpisodeReplay.sample``.

:class:`AbsorbingReplay` is an ``EpisodeReplay`` (same storage, same ``state_dict``) whose
``sample`` / ``can_sample`` do this, so a data module opts in by holding one instead:
``make_replay(capacity, agent.data_needs().absorbing)`` (the agent declares it in its
:class:`~lightning_wm.agents.protocol.DataNeeds`; DreamerV2 does).
As in Voskuil (2022), the end of an episode is treated as absorbing whether it terminated or was
cut by a time limit; the end of a segment of an episode still in play (``continues``) is not.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lightning_wm.data.frames import StoredEpisode
from lightning_wm.data.replay import FIELDS, EpisodeReplay, window_ages

if TYPE_CHECKING:  # annotation only: data/ needs nothing of the agent package at run time
    from lightning_wm.agents.protocol import AbsorbingOptions


def _max_absorbing(length: int, max_absorbing: int | None) -> int:
    cap = length - 1 if max_absorbing is None else int(max_absorbing)
    if not 0 <= cap < length:
        raise ValueError(f"max_absorbing must be in [0, {length - 1}], not {max_absorbing}")
    return cap


def start_counts(replay: EpisodeReplay, length: int,
                 max_absorbing: int | None = None) -> np.ndarray:
    """Per stored episode, how many start steps a ``length``-step window may have (a segment
    that continues has no absorbing steps: its episode goes on in the next segment)."""
    lengths = np.array([len(ep["reward"]) for ep in replay.episodes], dtype=np.int64)
    ends = np.array([not c for c in replay.continues], dtype=np.int64)
    return np.maximum(lengths - length + 1 + _max_absorbing(length, max_absorbing) * ends, 0)


def _episode_probs(replay: EpisodeReplay, starts: np.ndarray) -> np.ndarray:
    """P(episode) ∝ its starts; per-task normalised first when tasks are balanced (the rule of
    ``EpisodeReplay.sample``)."""
    tasks = np.array(replay.task_ids)
    weights = starts.astype(np.float64)
    live = np.unique(tasks[starts > 0])
    if replay.balance_tasks and len(live) > 1:
        for task in live:
            mask = tasks == task
            weights[mask] /= weights[mask].sum()
    return weights / weights.sum()


def _absorbing_steps(ep: StoredEpisode, count: int, rng: np.random.Generator,
                     discrete: bool) -> dict[str, np.ndarray]:
    """``count`` absorbing steps after episode ``ep``'s last one."""
    width = ep["action"].shape[-1]
    if discrete:
        action = np.zeros((count, width), ep["action"].dtype)
        action[np.arange(count), rng.integers(0, width, count)] = 1
    else:
        action = rng.uniform(-1.0, 1.0, (count, width)).astype(ep["action"].dtype)
    last = len(ep["reward"])
    return {"obs": np.repeat(ep.window("obs", last - 1, last), count, axis=0), "action": action,
            "reward": np.zeros(count, ep["reward"].dtype),
            "is_first": np.zeros(count, ep["is_first"].dtype),
            "is_terminal": np.ones(count, ep["is_terminal"].dtype)}


def sample_absorbing(replay: EpisodeReplay, rng: np.random.Generator, batch_size: int,
                     length: int, discrete: bool = True,
                     max_absorbing: int | None = None) -> dict[str, np.ndarray]:
    """``batch_size`` sequences of ``length`` steps, padded past episode ends (module docstring).

    Returns the replay's fields ``[B, L, ...]``, ``task_id`` and ``is_absorbing`` ``[B, L]``.
    """
    starts = start_counts(replay, length, max_absorbing)
    if starts.sum() == 0:
        raise ValueError(f"no stored episode can start a {length}-step sequence yet")
    chosen = rng.choice(len(replay.episodes), size=batch_size, p=_episode_probs(replay, starts))
    offsets = rng.integers(0, starts[chosen])
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*FIELDS, "is_absorbing")}
    for e, o in zip(chosen, offsets):
        ep = replay.episodes[e]
        real = min(length, len(ep["reward"]) - int(o))
        pad = _absorbing_steps(ep, length - real, rng, discrete) if real < length else None
        for k in FIELDS:
            piece = ep.window(k, o, o + real)
            out[k].append(piece if pad is None else np.concatenate([piece, pad[k]]))
        out["is_absorbing"].append(np.arange(length) >= real)
    batch = {k: np.stack(v) for k, v in out.items()}
    batch["task_id"] = np.repeat(np.array(replay.task_ids)[chosen][:, None], length, axis=1)
    if replay.ages:
        batch["age"] = window_ages(replay, chosen, offsets)
    return batch


class AbsorbingReplay(EpisodeReplay):
    """An :class:`EpisodeReplay` that samples with :func:`sample_absorbing`."""

    def __init__(self, capacity: int, balance_tasks: bool = True, discrete: bool = True,
                 max_absorbing: int | None = None, ages: bool = False) -> None:
        super().__init__(capacity, balance_tasks, ages)
        self.discrete, self.max_absorbing = bool(discrete), max_absorbing

    def can_sample(self, length: int) -> bool:
        return bool(start_counts(self, length, self.max_absorbing).sum() > 0)

    def sample(self, rng: np.random.Generator, batch_size: int, length: int,
               rewarding: float = 0.0) -> dict[str, np.ndarray]:
        if rewarding > 0:  # padded sequences have no single "last step" to skew towards
            raise ValueError("reward_fraction > 0 is not supported with absorbing-step sampling")
        return sample_absorbing(self, rng, batch_size, length, self.discrete, self.max_absorbing)


def make_replay(capacity: int, absorbing: AbsorbingOptions | None,
                ages: bool = False) -> EpisodeReplay:
    """The replay an agent's declared :class:`~lightning_wm.agents.protocol.DataNeeds` ask for:
    absorbing-step sampling with ``absorbing`` options, or a plain episode replay; ``ages``: its
    batches carry each window's age (``data_age``)."""
    if absorbing is None:
        return EpisodeReplay(capacity, ages=ages)
    return AbsorbingReplay(capacity, discrete=absorbing.discrete, ages=ages)
