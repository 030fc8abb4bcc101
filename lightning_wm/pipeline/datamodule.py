"""Lightning glue: the data module that builds the driver and hands its batches to the Trainer.

It builds the collector, the main replay source, the evaluator and the :class:`Driver` at
``setup`` (so envs are never made in a constructor, and each DDP rank makes its own), exposes the
narrow :class:`Pipeline` interface to callbacks, and stores the driver's state in checkpoints.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Iterator

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, IterableDataset

from lightning_wm.agents.protocol import DataNeeds
from lightning_wm.data.absorbing import make_replay
from lightning_wm.data.collector import Collector, EnvFactory, derive_seed
from lightning_wm.data.replay import EpisodeReplay
from lightning_wm.pipeline.config import TrainingConfig
from lightning_wm.pipeline.driver import Driver
from lightning_wm.pipeline.evaluator import Evaluator
from lightning_wm.pipeline.sources import ReplaySource, RolloutSource, SegmentSource, Source
from lightning_wm.signing import reading


class Pipeline:
    """What a callback may ask of the experience pipeline at ``setup``: add a named stream, make
    an env of one of the run's tasks, or a collector of its own (e.g. for teacher rollouts)."""

    def __init__(self, driver: Driver, make_env: EnvFactory, tasks: list[int], action_dim: int,
                 seed: int, rank: int, world: int, config: TrainingConfig) -> None:
        self._driver, self.make_env, self.tasks = driver, make_env, list(tasks)
        self.action_dim, self.seed, self.config = action_dim, seed, config
        self.rank, self.world = rank, world

    def add_source(self, name: str, source: Source) -> None:
        self._driver.add_source(name, source)

    def stream_seed(self, name: str, *parts: int) -> int:
        """A seed of stream ``name`` of this run and rank, independent of every other stream."""
        # a stable digest of the whole name (Python's hash() is salted per process)
        code = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
        return derive_seed(self.seed, 20, code, self.rank, *parts)

    def rollout_source(self, name: str, policy, steps_per_phase: int,
                       batch_size: int | None = None, length: int = 2) -> RolloutSource:
        """A replay that ``policy`` fills on the run's tasks with envs of its own (not added yet:
        pass it to :meth:`add_source`)."""
        collector = self._stream_collector(name)
        rng = np.random.default_rng(self.stream_seed(name, 1))
        return RolloutSource(collector, policy, EpisodeReplay(self.config.replay_capacity), rng,
                             batch_size or self.config.batch_size, length, steps_per_phase)

    def segment_source(self, name: str, policy, steps_per_phase: int) -> SegmentSource:
        """The latest ``steps_per_phase`` env steps of ``policy`` on the run's tasks, renewed
        after every phase, with envs of its own (for on-policy agents; not added yet)."""
        return SegmentSource(self._stream_collector(name), policy, steps_per_phase)

    def _stream_collector(self, name: str) -> Collector:
        """One env slot on the run's tasks, seeded for stream ``name`` alone."""
        return Collector(self.make_env, self.tasks, 1, self.action_dim, self.stream_seed(name, 0))


class _Batches(IterableDataset):
    def __init__(self, dm: "PipelineDataModule") -> None:
        self.dm = dm

    def __iter__(self) -> Iterator:
        return self.dm.driver.batches(self.dm.trainer.lightning_module, self.dm.log)


class PipelineDataModule(L.LightningDataModule):
    def __init__(self, make_env: EnvFactory, tasks: list[int], action_dim: int, budget: int,
                 seed: int, config: TrainingConfig, needs: DataNeeds,
                 make_eval_env: EnvFactory | None = None) -> None:
        super().__init__()
        self.make_env, self.tasks, self.action_dim = make_env, list(tasks), action_dim
        self.make_eval_env = make_eval_env
        self.budget, self.seed, self.config, self.needs = budget, seed, config, needs
        self.rank, self.world = 0, 1
        self.driver: Driver | None = None
        self.pipeline: Pipeline | None = None
        self.elapsed_before = 0.0   # wall time spent by earlier attempts of a resumed run
        self.include_state = True   # False while the final weights-only model is written
        self.resumed_from = 0       # env steps restored from a checkpoint (0: a fresh run)
        self._t_start = time.monotonic()

    def setup(self, stage: str) -> None:
        if self.driver is not None:
            return
        self._t_start = time.monotonic()
        if self.trainer is not None:
            self.rank, self.world = self.trainer.global_rank, self.trainer.world_size
        cfg = self.config
        # each rank collects its share with its own envs and seeds
        collector = Collector(self.make_env, self.tasks, cfg.num_envs, self.action_dim,
                              derive_seed(self.seed, 5, self.rank), cfg.task_sampling,
                              cfg.env_workers, self.make_eval_env, *self._segments())
        main = self._main_source(np.random.default_rng(derive_seed(self.seed, 4, self.rank)))
        evaluator = Evaluator(self.tasks, cfg.eval_every, cfg.eval_episodes, cfg.eval_epsilon)
        self.driver = Driver(collector, main, evaluator, cfg, -(-self.budget // self.world),
                             self.world)
        self.pipeline = Pipeline(self.driver, self.make_env, self.tasks, self.action_dim,
                                 self.seed, self.rank, self.world, cfg)

    def _segments(self) -> tuple[int, int]:
        """(segment_steps, overlap) for the collector: consecutive segments share one step
        fewer than the agent's windows, so each window lies whole in exactly one of them."""
        steps, length = self.config.segment_steps, self.needs.sequence_length
        if steps and self.needs.on_policy:
            raise ValueError("training.segment_steps is for replay-based agents: an on-policy "
                             "agent already learns from each phase's segments; set it to 0")
        if steps and steps <= length:
            raise ValueError(f"training.segment_steps must exceed the agent's window length "
                             f"({length}), got {steps}")
        return steps, max(length - 1, 1)

    def _main_source(self, rng: np.random.Generator) -> ReplaySource | SegmentSource:
        cfg = self.config
        if self.needs.on_policy:
            if cfg.prefill:
                raise ValueError(f"an on-policy agent learns from its own actions only: "
                                 f"training.prefill must be 0, not {cfg.prefill}")
            return SegmentSource()
        replay = make_replay(cfg.replay_capacity, self.needs.absorbing, self.needs.data_age)
        return ReplaySource(replay, rng, cfg.batch_size, self.needs.sequence_length,
                            cfg.reward_fraction)

    def teardown(self, stage: str) -> None:
        if self.driver is not None:
            self.driver.close()

    def on_exception(self, exception: BaseException) -> None:
        # a crashed fit skips teardown: stop the env worker processes here
        self.teardown("fit")

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Batches(self), batch_size=None, num_workers=0)

    def log(self, metrics: dict[str, float], steps: int) -> None:
        """Evaluation scores beside the losses, by env step (rank 0 only)."""
        trainer = self.trainer
        if trainer is not None and trainer.logger is not None and trainer.is_global_zero:
            trainer.logger.log_metrics(metrics, step=steps)

    @property
    def wall_time(self) -> float:
        """Wall time of the whole run, earlier attempts included."""
        return self.elapsed_before + time.monotonic() - self._t_start

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if not self.include_state:  # a weights-only checkpoint: no replay, no counters
            return {}
        return {"driver": self.driver.state_dict(), "wall_time": float(self.wall_time)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.driver is None:
            self.setup("fit")
        driver = self.driver
        # messages about the checkpoint's content (unsigned env state) name its file
        origin = getattr(self.trainer, "ckpt_path", None) if self.trainer is not None else None
        with reading(origin or "checkpoint"):
            driver.load_state_dict(state["driver"])
        self.resumed_from = driver.env_steps
        self.elapsed_before = state["wall_time"]
        self._t_start = time.monotonic()
        if self.rank != 0:  # only rank 0's state is saved: give other ranks their own streams
            driver.collector.rng = np.random.default_rng(
                derive_seed(self.seed, 6, self.rank, driver.phase))
            driver.main.rng = np.random.default_rng(
                derive_seed(self.seed, 7, self.rank, driver.phase))
