"""The experience pipeline: what feeds an agent's updates.

- :mod:`~lightning_wm.pipeline.config`: :class:`TrainingConfig`, the loop's plain settings;
- :mod:`~lightning_wm.pipeline.sources`: named data sources (online replay, offline episodes,
  rollouts of another policy) sampled into ``{stream: batch}``;
- :mod:`~lightning_wm.pipeline.driver`: the :class:`Driver`, the RL loop as one object
  (collection phases, update ratio, sampling, resume state);
- :mod:`~lightning_wm.pipeline.evaluator`: the :class:`Evaluator`, owner of the learning curve;
- :mod:`~lightning_wm.pipeline.datamodule`: Lightning glue, and :class:`Pipeline`, what a
  callback may ask of the pipeline at ``setup``.

The names are exported lazily (PEP 562): suite validation imports
:mod:`~lightning_wm.pipeline.config` alone, and must not pay for the Lightning and torch imports
the other modules bring.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: exported name -> the submodule that defines it
_EXPORTS = {
    "TrainingConfig": "config",
    "Pipeline": "datamodule", "PipelineDataModule": "datamodule",
    "Driver": "driver",
    "AgentPolicy": "evaluator", "Evaluator": "evaluator",
    "OfflineSource": "sources", "ReplaySource": "sources", "RolloutSource": "sources",
    "SegmentSource": "sources", "Source": "sources",
}

if TYPE_CHECKING:
    from lightning_wm.pipeline.config import TrainingConfig
    from lightning_wm.pipeline.datamodule import Pipeline, PipelineDataModule
    from lightning_wm.pipeline.driver import Driver
    from lightning_wm.pipeline.evaluator import AgentPolicy, Evaluator
    from lightning_wm.pipeline.sources import (OfflineSource, ReplaySource, RolloutSource,
                                               SegmentSource, Source)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = ["AgentPolicy", "Driver", "Evaluator", "OfflineSource", "Pipeline",
           "PipelineDataModule", "ReplaySource", "RolloutSource", "SegmentSource", "Source",
           "TrainingConfig"]
