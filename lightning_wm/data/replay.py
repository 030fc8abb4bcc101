"""Episodic replay with sequence sampling.

Each stored step ``t`` holds ``obs_t``, the action that led to it (zeros on the first step), the
reward received on arriving, and flags ``is_first`` / ``is_terminal``. A sequence of length 2 is
thus one transition ``(obs_0, action_1, reward_1, is_terminal_1, obs_1)``; Dreamer-style agents
take longer sequences. Finished episodes are sampled, and segments of episodes still in play when
the collector hands them over (``continues``: no window runs past such a segment's last step); a
crash mid-episode loses at most the steps in flight since the last hand-over (the collector starts
fresh episodes on resume). Frame stacks are kept once per frame (:mod:`~lightning_wm.data.frames`).
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from lightning_wm.data.frames import StoredEpisode
from lightning_wm.data.portable import to_array, to_tensor

FIELDS = ("obs", "action", "reward", "is_first", "is_terminal")


def window_ages(replay: "EpisodeReplay", episodes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Age of each sampled window, int64 [B]: the steps stored after its first step was, plus
    one (the newest step has age 1), i.e. (steps stored) − (the step's index in the replay), the
    age EfficientZero's off-policy correction reads. Eviction drops the oldest episodes whole, so
    ages count from the same end whatever was evicted."""
    lengths = np.array([len(ep["reward"]) for ep in replay.episodes], np.int64)
    after = np.concatenate([np.cumsum(lengths[::-1])[::-1][1:], [0]])  # steps of later episodes
    return (after[episodes] + lengths[episodes] - np.asarray(offsets, np.int64)).astype(np.int64)


class EpisodeReplay:
    """``ages``: every batch also carries ``age`` [B] (:func:`window_ages`), for agents whose
    targets depend on how old their data is (``DataNeeds.data_age``)."""

    def __init__(self, capacity: int, balance_tasks: bool = True, ages: bool = False) -> None:
        self.capacity = int(capacity)
        self.balance_tasks = balance_tasks
        self.ages = bool(ages)
        self.episodes: deque[StoredEpisode] = deque()
        self.task_ids: deque[int] = deque()
        self.continues: deque[bool] = deque()  # a segment of an episode that goes on elsewhere
        self.num_steps = 0
        # per sequence length: each episode's starts of sequences ending on a positive reward,
        # and their counts; rebuilt after the stored episodes change, not on every batch (a scan
        # of a full replay cost more than a small agent's update)
        self._rewarding: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}

    def __len__(self) -> int:
        return self.num_steps

    def add_episode(self, episode: dict[str, np.ndarray], task_id: int = 0,
                    continues: bool = False) -> None:
        """Store ``episode`` (or, with ``continues``, a segment of one still in play, which the
        next segment continues; samplers never pad past its end)."""
        length = len(episode["reward"])
        if any(len(episode[k]) != length for k in FIELDS):
            raise ValueError("episode fields differ in length")
        self.episodes.append(StoredEpisode.of({k: np.asarray(episode[k]) for k in FIELDS}))
        self.task_ids.append(int(task_id))
        self.continues.append(bool(continues))
        self.num_steps += length
        while self.num_steps > self.capacity and len(self.episodes) > 1:
            self.num_steps -= len(self.episodes.popleft()["reward"])
            self.task_ids.popleft()
            self.continues.popleft()
        self._rewarding.clear()

    def can_sample(self, length: int) -> bool:
        return any(len(ep["reward"]) >= length for ep in self.episodes)

    def sample(self, rng: np.random.Generator, batch_size: int, length: int,
               rewarding: float = 0.0) -> dict[str, np.ndarray]:
        """``batch_size`` sequences of ``length`` steps from within episodes.

        Episodes are drawn in proportion to their number of valid start points; with several
        tasks and ``balance_tasks`` the task is drawn uniformly first, so every task is trained on
        about equally often whatever its episode lengths.

        ``rewarding`` > 0 draws that fraction of the batch (rounded down) uniformly from the
        sequences whose last step pays a positive reward, when there are any: the skewed sampling
        of UNREAL's reward prediction (Jaderberg et al., 2017), so that a rare sparse reward
        reaches the reward, value and representation losses every update. At 0 the draws, and
        the random stream, are exactly those of plain sampling.
        """
        lengths = np.array([len(ep["reward"]) for ep in self.episodes])
        starts = np.maximum(lengths - length + 1, 0)
        if starts.sum() == 0:
            raise ValueError(f"no stored episode has {length} steps yet")
        tasks = np.array(self.task_ids)
        weights = starts.astype(np.float64)
        if self.balance_tasks and len(np.unique(tasks[starts > 0])) > 1:
            for task in np.unique(tasks[starts > 0]):
                mask = tasks == task
                weights[mask] /= weights[mask].sum()
        skew_episodes, skew_offsets = self._rewarding_starts(rng, int(batch_size * rewarding), length)
        plain = batch_size - len(skew_episodes)
        chosen = rng.choice(len(self.episodes), size=plain, p=weights / weights.sum())
        offsets = rng.integers(0, starts[chosen])
        chosen = np.concatenate([chosen, skew_episodes])
        offsets = np.concatenate([offsets, skew_offsets])
        out = {k: [] for k in FIELDS}
        for e, o in zip(chosen, offsets):
            ep = self.episodes[e]
            for k in FIELDS:
                out[k].append(ep.window(k, o, o + length))
        batch = {k: np.stack(v) for k, v in out.items()}
        batch["task_id"] = np.repeat(tasks[chosen][:, None], length, axis=1)
        if self.ages:
            batch["age"] = window_ages(self, chosen, offsets)
        return batch

    def _rewarding_starts(self, rng: np.random.Generator, n: int,
                          length: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (episode, start) pairs, uniform over the sequences whose last step has a
        positive reward; none when ``n`` is 0 or no such sequence is stored."""
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        if length not in self._rewarding:
            ends = [np.flatnonzero(ep["reward"][length - 1:] > 0) for ep in self.episodes]
            self._rewarding[length] = (ends, np.array([len(e) for e in ends], np.float64))
        ends, counts = self._rewarding[length]
        if counts.sum() == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        episodes = rng.choice(len(ends), size=n, p=counts / counts.sum())
        starts = np.array([ends[e][rng.integers(len(ends[e]))] for e in episodes], np.int64)
        return episodes.astype(np.int64), starts  # index i in ``ends`` is the start of a sequence

    def state_dict(self) -> dict[str, Any]:
        # tensors, not arrays: a weights-only load reads them (dtype and values kept exactly)
        return {"capacity": self.capacity,
                "episodes": [ep.state(to_tensor) for ep in self.episodes],
                "task_ids": [int(t) for t in self.task_ids],
                "continues": [bool(c) for c in self.continues]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self.episodes = deque(StoredEpisode.from_state(ep, to_array) for ep in state["episodes"])
        self.task_ids = deque(int(t) for t in state["task_ids"])
        # checkpoints written before segments existed hold whole episodes only
        self.continues = deque(bool(c) for c in state.get("continues", [False] * len(self.task_ids)))
        self.num_steps = sum(len(ep["reward"]) for ep in self.episodes)
        self._rewarding.clear()
