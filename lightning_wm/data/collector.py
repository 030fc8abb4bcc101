"""The collector: the only code that steps environments.

It runs ``num_envs`` environment slots in lock-step under one batched policy, writes finished
episodes to the replay, and evaluates greedy policies on separate environments. Every reset is
seeded from ``(seed, slot, episode index)``, so collection is reproducible and a resumed run starts
its next episodes exactly where the counters say. The slots' envs live in this process or, with
``env_workers`` >= 1, in worker processes that step them in parallel (same results either way).
"""
from __future__ import annotations

import pickle
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from lightning_wm.data.portable import plain
from lightning_wm.data.replay import EpisodeReplay
from lightning_wm.data.workers import EnvFactory, EnvWorkers, LocalEnvs
from lightning_wm.signing import open_signed, sign


class Policy(Protocol):
    def __call__(self, obs: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        """Batched observations -> batched action vectors (one-hot for discrete actions)."""


def derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def to_env_action(space: gym.Space, vector: np.ndarray):
    """An action vector (padded to the agent's width) -> what ``space`` accepts."""
    if isinstance(space, gym.spaces.Discrete):
        return int(np.argmax(vector[: space.n]))
    if isinstance(space, gym.spaces.Box):
        d = int(np.prod(space.shape))
        return np.clip(vector[:d], space.low.ravel(), space.high.ravel()).reshape(space.shape).astype(space.dtype)
    raise TypeError(f"unsupported action space {space}")


def action_width(space: gym.Space) -> int:
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"unsupported action space {space}")


def random_actions(rng: np.random.Generator, spaces: list[gym.Space], width: int) -> np.ndarray:
    out = np.zeros((len(spaces), width), np.float32)
    for i, space in enumerate(spaces):
        if isinstance(space, gym.spaces.Discrete):
            out[i, rng.integers(space.n)] = 1.0
        else:
            d = action_width(space)
            out[i, :d] = rng.uniform(space.low.ravel(), space.high.ravel())
    return out


class _Slot:
    """One environment slot's episode in flight (its envs live in the collector's backend)."""

    def __init__(self) -> None:
        self.task = 0
        self.space: gym.Space | None = None   # the action space of the slot's env for ``task``
        self.obs: Any = None
        self.steps: dict[str, list] = {}
        self.ret = 0.0

    def episode(self) -> dict[str, np.ndarray]:
        """The steps so far, one array per field (the layout a replay or segment sink takes)."""
        return {k: np.asarray(v) for k, v in self.steps.items()}

    def keep_last(self, n: int) -> None:
        """Go on from the last ``n`` steps, the rest having been handed over."""
        self.steps = {k: v[-n:] for k, v in self.steps.items()}


class Collector:
    """Steps ``num_envs`` slots in lock-step; with ``env_workers`` >= 1 their envs live in that
    many worker processes (see :mod:`lightning_wm.data.workers`) and step in parallel, with the
    same results as in-process stepping (``env_workers=0``)."""

    def __init__(self, make_env: EnvFactory, tasks: list[int], num_envs: int, action_dim: int,
                 seed: int, task_sampling: str = "round_robin", env_workers: int = 0,
                 make_eval_env: EnvFactory | None = None, segment_steps: int = 0,
                 overlap: int = 1) -> None:
        if segment_steps and not segment_steps > overlap >= 1:
            raise ValueError(f"segment_steps ({segment_steps}) must exceed the overlap "
                             f"({overlap}, at least 1) of consecutive segments")
        if task_sampling not in ("round_robin", "uniform"):
            raise ValueError(f"task_sampling must be 'round_robin' or 'uniform', not {task_sampling!r}")
        if env_workers < 0:
            raise ValueError(f"env_workers must be >= 0, not {env_workers}")
        self.make_env, self.tasks = make_env, list(tasks)
        # evaluation may play another version of a task (Atari: whole games, raw game score)
        self.make_eval_env = make_env if make_eval_env is None else make_eval_env
        self.action_dim, self.seed, self.task_sampling = action_dim, seed, task_sampling
        # an episode in play hands its steps to the replay every ``segment_steps`` (0: only when
        # it ends); each segment repeats the previous one's last ``overlap`` steps
        self.segment_steps, self.overlap = int(segment_steps), int(overlap)
        self.slots = [_Slot() for _ in range(num_envs)]
        self.episodes_started = 0
        self.env_steps = 0
        self.rng = np.random.default_rng(derive_seed(seed, 1))
        self.eval_envs: dict[int, list[gym.Env]] = {}
        # more workers than slots would sit idle
        self.envs = (EnvWorkers(make_env, min(env_workers, num_envs)) if env_workers
                     else LocalEnvs(make_env))

    # -- episodes ---------------------------------------------------------------------------------
    def _next_task(self) -> int:
        if self.task_sampling == "uniform":
            return self.tasks[int(self.rng.integers(len(self.tasks)))]
        return self.tasks[self.episodes_started % len(self.tasks)]

    def _begin_episodes(self) -> np.ndarray:
        """Reset the slots with no episode in flight, in slot order; returns the is_first flags."""
        first = np.array([s.obs is None for s in self.slots], bool)
        calls = []
        for i, slot in enumerate(self.slots):
            if first[i]:
                slot.task = self._next_task()
                seed = derive_seed(self.seed, 2, i, self.episodes_started)
                calls.append((i, "reset", (slot.task, seed)))
                self.episodes_started += 1
        for (i, _, _), (obs, space) in zip(calls, self.envs.call(calls)):
            slot = self.slots[i]
            slot.obs, slot.space, slot.ret = obs, space, 0.0
            slot.steps = {"obs": [obs], "action": [np.zeros(self.action_dim, np.float32)],
                          "reward": [0.0], "is_first": [True], "is_terminal": [False]}
        return first

    def collect(self, policy: Policy | None, n_steps: int, replay: EpisodeReplay) -> list[float]:
        """Step every slot until at least ``n_steps`` env steps are done; returns finished
        episodes' returns. ``policy=None`` acts randomly.

        All slots step together (a recurrent policy's state must advance in every slot it was
        shown), so a phase overshoots by at most ``num_envs - 1`` steps unless ``n_steps`` is a
        multiple of ``num_envs``.
        """
        returns: list[float] = []
        done = 0
        while done < n_steps:
            first = self._begin_episodes()
            if policy is None:
                actions = random_actions(self.rng, [s.space for s in self.slots], self.action_dim)
            else:
                actions = policy(np.stack([s.obs for s in self.slots]), first)
            results = self.envs.call([(i, "step", (s.task, to_env_action(s.space, vec)))
                                      for i, (s, vec) in enumerate(zip(self.slots, actions))])
            for slot, vec, result in zip(self.slots, actions, results):
                r = self._record(slot, vec, result, replay)
                if r is not None:
                    returns.append(r)
            done += len(self.slots)
        self.env_steps += done
        return returns

    def _record(self, slot: _Slot, vec: np.ndarray, result: tuple,
                replay: EpisodeReplay) -> float | None:
        obs, reward, terminated, truncated = result
        slot.ret += reward
        for key, value in (("obs", obs), ("action", np.asarray(vec, np.float32)),
                           ("reward", reward), ("is_first", False), ("is_terminal", terminated)):
            slot.steps[key].append(value)
        slot.obs = obs
        if not (terminated or truncated):
            if self.segment_steps and len(slot.steps["reward"]) >= self.segment_steps:
                self._hand_over_segment(slot, replay)
            return None
        replay.add_episode(slot.episode(), slot.task)
        slot.obs = None
        return slot.ret

    def _hand_over_segment(self, slot: _Slot, replay: EpisodeReplay) -> None:
        """Store the steps of ``slot``'s episode so far as a segment that continues, and go on
        from its last ``overlap`` steps: a game without lives (Boxing: about 1,800 decisions)
        would otherwise give a replay-based agent nothing to learn from until it ends. With the
        overlap one shorter than the agent's windows, and no window of a continuing segment
        running past its last step, every window of the episode is sampled from exactly one
        segment, as if the episode had been stored whole (EfficientZero stores its games as
        such blocks too). A segment's first step keeps its real action and reward: a window
        starting there reads them as it would mid-episode."""
        replay.add_episode(slot.episode(), slot.task, continues=True)
        slot.keep_last(self.overlap)

    def flush_in_flight(self, sink) -> None:
        """Hand every slot's unfinished episode so far to ``sink.add_episode`` as a segment,
        and keep collecting it from its last step.

        On-policy agents learn from exactly the steps of the latest phase: the segment's last
        observation is kept as the next segment's first, whose action and reward fields (the
        step before) are never read as a transition. Replay-based agents never call this.
        """
        for slot in self.slots:
            if slot.obs is None or len(slot.steps["reward"]) < 2:
                continue
            sink.add_episode(slot.episode(), slot.task)
            slot.keep_last(1)

    def abandon_episodes(self) -> None:
        """Drop the episodes in flight (on resume: they were not in the checkpoint)."""
        for slot in self.slots:
            slot.obs = None

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, policy: Policy, task: int, episodes: int, index: int,
                 epsilon: float = 0.0) -> float:
        """Mean return of ``episodes`` episodes on ``task``; seeds fixed by ``index``.

        Episodes run in lock-step groups as wide as the collector's slots (one at a time with a
        single slot), so the policy sees a batch per step; episode ``e``'s reset seed depends on ``e``
        alone, whatever group it falls in. ``epsilon`` > 0 replaces the policy's action by a random one
        with that probability (the Atari protocol's ε = 0.05), so a deterministic policy cannot
        lock into a loop.
        """
        width = max(1, min(episodes, len(self.slots)))
        envs = self.eval_envs.setdefault(task, [])
        envs += [self.make_eval_env(task) for _ in range(width - len(envs))]
        rng = np.random.default_rng(derive_seed(self.seed, 10, task, index))
        total = 0.0
        for start in range(0, episodes, width):
            group = envs[:min(width, episodes - start)]
            obs = [env.reset(seed=derive_seed(self.seed, 3, task, index, start + i))[0]
                   for i, env in enumerate(group)]
            done = np.zeros(len(group), bool)
            first = np.ones(len(group), bool)
            while not done.all():
                # finished episodes still ride along with their last observation: a recurrent
                # policy keeps one state per group member, and their actions are dropped
                vecs = policy(np.stack(obs), first)
                for i, env in enumerate(group):
                    if done[i]:
                        continue
                    vec = vecs[i]
                    if epsilon and rng.random() < epsilon:
                        vec = random_actions(rng, [env.action_space], len(vec))[0]
                    obs[i], reward, terminated, truncated, _ = env.step(
                        to_env_action(env.action_space, vec))
                    total += float(reward)
                    done[i] = terminated or truncated
                first[:] = False
        return total / episodes

    def close(self) -> None:
        """Close every env, and stop the worker processes."""
        self.envs.close()
        for envs in self.eval_envs.values():
            for env in envs:
                env.close()
        self.eval_envs.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"episodes_started": self.episodes_started, "env_steps": self.env_steps,
                "rng": plain(self.rng.bit_generator.state), "in_flight": self._in_flight()}

    def _in_flight(self) -> dict[str, Any] | None:
        """The episodes in flight with their envs (pickled where they live), when the envs can
        be pickled, signed with this user's key (:mod:`lightning_wm.signing`).

        Pure-Python envs pickle, and so do the PyBullet adapters (they save the simulator state),
        so a resumed run continues exactly where it stopped; an env that can't be pickled (a
        native handle with no saved state) has its episodes restarted on resume instead.
        """
        blobs = self.envs.call([(i, "get_state", ()) for i in range(len(self.slots))])
        if any(b is None for b in blobs):
            return None
        try:
            blob = pickle.dumps([(b, s.task, s.obs, s.steps, s.ret)
                                 for b, s in zip(blobs, self.slots)])
        except Exception:  # noqa: BLE001 - any pickling failure just means "restart episodes"
            return None
        try:
            return sign(blob)
        except OSError:  # no key can be made (read-only home): resume restarts these episodes
            return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes_started = int(state["episodes_started"])
        self.env_steps = int(state["env_steps"])
        self.rng.bit_generator.state = state["rng"]
        self.abandon_episodes()
        if state.get("in_flight") is None:
            return
        # unpickled only when signed with this user's key: a pickle from elsewhere could run
        # anything; without it the episodes in flight just restart
        blob = open_signed(state["in_flight"])
        if blob is None:
            return
        saved = pickle.loads(blob)
        if len(saved) != len(self.slots):
            return
        # the slots' env pickles were inside the signed blob, so workers get checked data only
        spaces = self.envs.call([(i, "set_state", (envs,)) for i, (envs, *_) in enumerate(saved)])
        for slot, (_, task, obs, steps, ret), space in zip(self.slots, saved, spaces):
            slot.task, slot.obs, slot.steps, slot.ret = task, obs, steps, ret
            slot.space = space.get(task)
