"""The experience pipeline: what feeds an agent's updates.

- :mod:`~lightning_wm.pipeline.config`: :class:`TrainingConfig`, the loop's plain settings;
- :mod:`~lightning_wm.pipeline.sources`: named data sources (online replay, offline episodes,
  rollouts of another policy) sampled into ``{stream: batch}``;
- :mod:`~lightning_wm.pipeline.driver`: the :class:`Driver`, the RL loop as one object
  (collection phases, update ratio, sampling, resume state);
- :mod:`~lightning_wm.pipeline.evaluator`: the :class:`Evaluator`, owner of the learning curve;
- :mod:`~lightning_wm.pipeline.datamodule`: Lightning glue, and :class:`Pipeline`, what a
  callback may ask of the pipeline at ``setup``.
"""
from lightning_wm.pipeline.config import TrainingConfig
from lightning_wm.pipeline.datamodule import Pipeline, PipelineDataModule
from lightning_wm.pipeline.driver import Driver
from lightning_wm.pipeline.evaluator import AgentPolicy, Evaluator
from lightning_wm.pipeline.sources import OfflineSource, ReplaySource, RolloutSource, Source

__all__ = ["AgentPolicy", "Driver", "Evaluator", "OfflineSource", "Pipeline",
           "PipelineDataModule", "ReplaySource", "RolloutSource", "Source", "TrainingConfig"]
