"""Helpers the test suite shares: module-state snapshots, a logged update, a simulated crash.

They ship in the package (like ``torch.testing``) so every test module imports one copy.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import nn


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module``'s state, to compare after it has trained on."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Two state dicts with the same keys and bit-identical tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def logged_update(agent, batches) -> dict[str, torch.Tensor]:
    """Run ``agent.update(batches)`` (``{stream: batch}``) and return the named terms it logs."""
    seen: dict[str, torch.Tensor] = {}
    agent.log_terms = seen.update
    agent.update(batches)
    return seen


class CrashAfter(L.Callback):
    """Raises ``RuntimeError("simulated crash")`` after a training batch once the data module has
    collected ``env_steps`` steps and ``checkpoint`` exists, so a resume has a checkpoint to use."""

    def __init__(self, env_steps: int, checkpoint: Path) -> None:
        self.env_steps, self.checkpoint = int(env_steps), Path(checkpoint)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.datamodule.driver.env_steps >= self.env_steps and self.checkpoint.exists():
            raise RuntimeError("simulated crash")
