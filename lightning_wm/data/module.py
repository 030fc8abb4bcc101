"""Env interaction as a Lightning data pipeline.

:class:`EnvDataModule` owns the collector, the replay and the learning curve. Its training
dataloader is an ``IterableDataset`` (:class:`ReplayStream`) that alternates collection phases
(``collect_every`` env steps with the current policy) with ``updates_per_collect`` batches sampled
from replay, until the env-step budget is spent. Evaluation happens at every ``eval_every`` env
steps (and at 0 and at the budget). Everything needed to resume -- replay, counters, curve, RNG
states -- is in :meth:`EnvDataModule.state_dict`, which Lightning stores in every checkpoint.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from lightning_wm.data.absorbing import with_absorbing
from lightning_wm.data.collector import Collector, EnvFactory, derive_seed
from lightning_wm.data.replay import EpisodeReplay


@dataclass(frozen=True)
class TrainingConfig:
    """How collection feeds updates (plain values; mirrors a suite profile's ``training``)."""
    collect_every: int = 100
    updates_per_collect: int = 10
    prefill: int = 100
    batch_size: int = 32
    eval_every: int = 500
    eval_episodes: int = 5
    eval_epsilon: float = 0.0
    checkpoint_every: int = 1000
    replay_capacity: int = 100_000
    num_envs: int = 1
    task_sampling: str = "round_robin"
    reward_fraction: float = 0.0  # of each batch, from sequences that end on a positive reward
    env_workers: int = 0   # processes stepping the slots' envs in parallel (0: in this process)


class AgentPolicy:
    """Batched numpy policy over an agent; keeps its recurrent state per slot."""

    def __init__(self, agent, explore: bool) -> None:
        self.agent, self.explore, self.state = agent, explore, None

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        device = self.agent.device
        if self.state is None or is_first.all():
            self.state = self.agent.initial_state(len(obs))
        else:
            self.state = self.agent.reset_state(self.state, torch.as_tensor(is_first, device=device))
        action, self.state = self.agent.act(torch.as_tensor(obs, device=device), self.state, self.explore)
        return action.float().cpu().numpy()


class ReplayStream(IterableDataset):
    def __init__(self, dm: "EnvDataModule") -> None:
        self.dm = dm

    def __iter__(self):
        dm = self.dm
        dm.restore_global_rng()
        while True:
            if dm.pending_updates == 0:
                if dm.env_steps >= dm.local_budget:
                    dm.maybe_evaluate(final=True)
                    return
                dm.run_phase()
                continue
            dm.pending_updates -= 1
            yield dm.sample()


class EnvDataModule(L.LightningDataModule):
    def __init__(self, make_env: EnvFactory, tasks: list[int], action_dim: int, budget: int,
                 seed: int, config: TrainingConfig, sequence_length: int) -> None:
        super().__init__()
        self.make_env, self.tasks, self.action_dim = make_env, list(tasks), action_dim
        self.budget, self.seed, self.config = budget, seed, config
        self.sequence_length = sequence_length
        self.local_budget = budget
        self.rank, self.world = 0, 1
        self.pending_updates = 0
        self.phase = 0
        self.curve: list[tuple[int, float]] = []
        self.task_curve: list[tuple[float, ...]] = []  # per-task scores behind each curve point
        self.episode_returns: list[tuple[int, float]] = []
        self.next_eval = 0
        self.collector: Collector | None = None
        self.replay = EpisodeReplay(config.replay_capacity)
        self.rng = np.random.default_rng(derive_seed(seed, 4))
        self.on_progress: Callable[[int, int], None] | None = None
        self.elapsed_before = 0.0   # wall time spent by earlier attempts of a resumed run
        self.include_state = True   # False while the final weights-only model is written
        self.resumed_from = 0       # env steps restored from a checkpoint (0: a fresh run)
        self._t_start = time.monotonic()

    # Envs are made in setup, never in the constructor.
    def setup(self, stage: str) -> None:
        if self.collector is not None:
            return
        self._t_start = time.monotonic()
        if self.trainer is not None:
            self.rank, self.world = self.trainer.global_rank, self.trainer.world_size
            # agents that train on sequences past episode ends (DreamerV2) opt in to absorbing states
            self.replay = with_absorbing(self.replay, self.trainer.lightning_module)
        # each rank collects its share with its own envs and seeds
        self.local_budget = -(-self.budget // self.world)
        self.collector = Collector(self.make_env, self.tasks, self.config.num_envs, self.action_dim,
                                   derive_seed(self.seed, 5, self.rank), self.config.task_sampling,
                                   self.config.env_workers)
        self.rng = np.random.default_rng(derive_seed(self.seed, 4, self.rank))

    def teardown(self, stage: str) -> None:
        if self.collector is not None:
            self.collector.close()

    def on_exception(self, exception: BaseException) -> None:
        # a crashed fit skips teardown: stop the env worker processes here
        self.teardown("fit")

    def train_dataloader(self) -> DataLoader:
        return DataLoader(ReplayStream(self), batch_size=None, num_workers=0)

    @property
    def env_steps(self) -> int:
        return self.collector.env_steps if self.collector else 0

    @property
    def wall_time(self) -> float:
        """Wall time of the whole run, earlier attempts included."""
        return self.elapsed_before + time.monotonic() - self._t_start

    @property
    def agent(self):
        return self.trainer.lightning_module

    # -- the loop's pieces -----------------------------------------------------------------------
    def run_phase(self) -> None:
        cfg = self.config
        self.maybe_evaluate()
        n = min(cfg.collect_every, self.local_budget - self.env_steps)
        random_phase = self.env_steps < cfg.prefill
        if random_phase:
            n = min(n, cfg.prefill - self.env_steps)
        policy = None if random_phase else self._train_policy()
        for r in self.collector.collect(policy, n, self.replay):
            self.episode_returns.append((self.env_steps * self.world, r))
        self.agent.env_steps = self.env_steps * self.world
        self.phase += 1
        if self.env_steps >= cfg.prefill and self.replay.can_sample(self.sequence_length):
            self.pending_updates = cfg.updates_per_collect
        if self.on_progress is not None:
            self.on_progress(self.env_steps * self.world, self.budget)

    def _train_policy(self) -> AgentPolicy:
        if getattr(self, "_policy", None) is None or self._policy.agent is not self.agent:
            self._policy = AgentPolicy(self.agent, explore=True)
        return self._policy

    def sample(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        batch = self.replay.sample(self.rng, cfg.batch_size, self.sequence_length, cfg.reward_fraction)
        return {k: torch.as_tensor(v) for k, v in batch.items()}

    def maybe_evaluate(self, final: bool = False) -> None:
        steps = self.env_steps * self.world
        if not final and steps < self.next_eval:
            return
        if final and self.curve and self.curve[-1][0] == steps:
            return
        agent = self.agent
        was_training = agent.training
        agent.eval()
        index = len(self.curve)
        per_task = tuple(
            self.collector.evaluate(AgentPolicy(agent, explore=False), task,
                                    self.config.eval_episodes, index, self.config.eval_epsilon)
            for task in self.tasks)
        score = float(np.mean(per_task))
        agent.train(was_training)
        self.curve.append((steps, score))
        self.task_curve.append(per_task)
        logger = self.trainer.logger if self.trainer is not None else None
        if logger is not None and self.trainer.is_global_zero:  # beside the losses, by env step
            logger.log_metrics({"eval/return": score, "eval/env_steps": steps}, step=steps)
        while self.next_eval <= steps:
            self.next_eval += self.config.eval_every

    def restore_global_rng(self) -> None:
        if getattr(self, "_pending_rng", None) is not None:
            torch_rng, numpy_rng, python_rng = self._pending_rng
            torch.set_rng_state(torch_rng)
            np.random.set_state(numpy_rng)
            random.setstate(python_rng)
            self._pending_rng = None

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if not self.include_state:  # a weights-only checkpoint: no replay, no counters
            return {}
        return {
            "collector": self.collector.state_dict(), "replay": self.replay.state_dict(),
            "rng": self.rng.bit_generator.state, "phase": self.phase,
            "pending_updates": self.pending_updates, "curve": list(self.curve),
            "task_curve": list(self.task_curve),
            "episode_returns": list(self.episode_returns), "next_eval": self.next_eval,
            "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(), "wall_time": self.wall_time,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.collector is None:
            self.setup("fit")
        self.collector.load_state_dict(state["collector"])
        self.resumed_from = self.collector.env_steps * self.world
        self.replay.load_state_dict(state["replay"])
        self.rng.bit_generator.state = state["rng"]
        self.phase, self.pending_updates = state["phase"], state["pending_updates"]
        self.curve = [tuple(x) for x in state["curve"]]
        self.task_curve = [tuple(x) for x in state.get("task_curve", [])]
        self.episode_returns = [tuple(x) for x in state["episode_returns"]]
        self.next_eval = state["next_eval"]
        self.elapsed_before = state["wall_time"]
        self._t_start = time.monotonic()
        if self.rank != 0:  # only rank 0's state is saved: give other ranks their own streams
            self.collector.rng = np.random.default_rng(derive_seed(self.seed, 6, self.rank, self.phase))
            self.rng = np.random.default_rng(derive_seed(self.seed, 7, self.rank, self.phase))
        # applied when iteration starts: creating the DataLoader iterator draws from torch's RNG
        self._pending_rng = (state["torch_rng"], state["numpy_rng"], state["python_rng"])
