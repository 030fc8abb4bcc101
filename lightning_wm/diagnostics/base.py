"""What every diagnostic is: a callback that measures a run without changing it."""
from __future__ import annotations

import gymnasium as gym
import lightning as L

from lightning_wm.pipeline.datamodule import PipelineDataModule


class Diagnostic(L.Callback):
    """After training, :attr:`diagnostics` holds the callback's numbers (``{name: value}``);
    ``train`` copies them into the run's record."""

    def __init__(self) -> None:
        self.diagnostics: dict[str, float] = {}


def task_env(trainer: L.Trainer, task: int = 0) -> gym.Env:
    """A fresh env of one of the run's own tasks (the first by default), from its pipeline."""
    dm = trainer.datamodule
    if not isinstance(dm, PipelineDataModule):
        raise ValueError("this diagnostic plays the run's own task, which only a run of "
                         "lightning_wm.training.train has; give it an 'env' argument instead")
    return dm.pipeline.make_env(task)
