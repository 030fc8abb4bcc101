"""Train one agent on one or more tasks with ``lightning.Trainer``: the library's entry point.

``train`` wires an agent, an env factory and callbacks into a Trainer whose data comes from the
experience pipeline (:mod:`lightning_wm.pipeline`: driver, sources, evaluator), checkpoints
atomically at collection-phase boundaries (replay and RNG included) and resumes from the last
checkpoint when one exists, so a killed run continues.

Checkpoints are data: each is written with a sha256 sidecar and read weights-only after its digest
checks out (:mod:`lightning_wm.checkpoints`); a bad one is named, moved aside, and the run resumes
from the checkpoint before it or starts afresh, so one bad file never fails every rerun.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from lightning_wm import checkpoints
from lightning_wm.artifacts import CHECKPOINTS, LAST, LOGS, MODEL
from lightning_wm.data.collector import EnvFactory
from lightning_wm.diagnostics.base import Diagnostic
from lightning_wm.pipeline.config import TrainingConfig
from lightning_wm.pipeline.datamodule import PipelineDataModule
from lightning_wm.transfer.base import TransferCallback

# LAST (full resume state, replay included; removed when the run completes) and MODEL (final
# weights, consumed by transfer targets) are re-exported: callers name them from here


@dataclass
class TrainResult:
    steps: list[int]
    returns: list[float]
    env_steps: int
    updates: int
    wall_time_s: float
    resumed_from_step: int
    model_path: Path
    device: str
    episode_returns: list[tuple[int, float]] = field(default_factory=list)
    diagnostics: dict[str, float] = field(default_factory=dict)
    #: per evaluation point, the score of each task (a multi-task run's curve is their mean)
    task_returns: list[tuple[float, ...]] = field(default_factory=list)
    #: sha256 of the final weights file ``model_path`` (recorded so a target can check its source)
    model_sha256: str | None = None


class PhaseCheckpoint(L.Callback):
    """Save ``last.ckpt`` atomically once ``every`` env steps, at a collection-phase boundary."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every, self.last_saved = Path(path), every, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        driver = trainer.datamodule.driver
        steps = driver.env_steps
        if driver.at_phase_boundary and steps - self.last_saved >= self.every:
            self.last_saved = steps
            save_atomically(trainer, self.path, keep_previous=True)

    def state_dict(self) -> dict:
        return {"last_saved": self.last_saved}

    def load_state_dict(self, state: dict) -> None:
        self.last_saved = state["last_saved"]


class Progress(L.Callback):
    """A line about the run every ``interval`` seconds: decisions of the budget, rate, ETA.

    A budget counts agent decisions (``env.step`` calls, each ``action_repeat`` simulator steps),
    as ``driver.env_steps`` does. Collection phases only end every minute or so, so the line is
    also offered after every update; the count moves at phase ends, the clock in between. The
    rate is taken over the whole attempt up to the last count, so the ETA counts down smoothly
    rather than swinging with each phase. ``report.live``, where the callable has one, takes
    the ticks (a terminal rewrites them in place, so they may come every second).
    """

    def __init__(self, label: str, report: Callable[[str], None], budget: int,
                 interval: float = 5.0) -> None:
        self.label, self.report, self.budget = label, report, budget
        self._tick_to = getattr(report, "live", None)
        self.interval = min(interval, 1.0) if self._tick_to else interval
        self._tick_to = self._tick_to or report
        self._t0 = self._last = self._t_seen = 0.0
        self._s0 = self._seen = 0
        self._driver = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.is_global_zero:  # one progress line per run, not one per rank
            self._driver = trainer.datamodule.driver
            self._driver.phase_listeners.append(self._tick)

    def on_train_start(self, trainer, pl_module) -> None:
        if self._driver is None:
            return
        self._t0 = self._t_seen = time.monotonic()
        self._s0 = self._seen = self._driver.env_steps
        self._last = float("-inf")  # say at once that the run started (prefill gives no updates)
        self._tick(self._s0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._driver is not None:
            self._tick(self._driver.env_steps)

    def _tick(self, steps: int) -> None:
        now = time.monotonic()
        if steps != self._seen:
            self._seen, self._t_seen = steps, now
        # the budget's line once, at once; the updates after the last phase add nothing to it
        final = steps >= self.budget and self._last != float("inf")
        if now - self._last < self.interval and not final or self._last == float("inf"):
            return
        self._last = float("inf") if final else now
        self._tick_to(f"{self.label}: {self.line(steps, now)}")

    def line(self, steps: int, now: float) -> str:
        elapsed = now - self._t0
        done = f"{steps:,}/{self.budget:,} decisions ({100 * steps / max(self.budget, 1):.0f}%)"
        rate = (steps - self._s0) / (self._t_seen - self._t0) if self._t_seen > self._t0 else 0.0
        if steps >= self.budget:
            return f"{done}, {_clock(elapsed)} elapsed, done"
        if rate <= 0:
            return f"{done}, {_clock(elapsed)} elapsed, ETA ?"  # no phase finished yet
        eta = max(0.0, (self.budget - steps) / rate - (now - self._t_seen))
        return f"{done}, {rate:,.1f}/s, {_clock(elapsed)} elapsed, ETA {_clock(eta)}"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def save_atomically(trainer: L.Trainer, path: Path, weights_only: bool = False,
                    keep_previous: bool = False) -> str | None:
    """Write ``path`` and its sidecar (:func:`checkpoints.publish`); with ``keep_previous`` the
    file it replaces stays as the fallback. Returns the sha256 on global rank 0, else ``None``.

    Every rank takes part in ``save_checkpoint`` (strategies may gather state); only rank 0
    writes, so only its temporary name is ever used."""
    tmp = checkpoints.temp_path(path)
    trainer.save_checkpoint(tmp, weights_only=weights_only)
    digest = None
    if trainer.is_global_zero:
        try:
            digest = checkpoints.publish(tmp, path, keep_previous)
        finally:
            tmp.unlink(missing_ok=True)
    trainer.strategy.barrier()
    return digest


class PortableCallbackState(L.Callback):
    """Store numpy arrays in other callbacks' states as tensors (and restore them), so a
    callback this library does not own still writes a weights-only loadable checkpoint. Its
    save hook runs after every state is gathered; its load hook before any state is applied."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if "callbacks" in checkpoint:
            checkpoint["callbacks"] = checkpoints.tag_arrays(checkpoint["callbacks"])

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if "callbacks" in checkpoint:
            checkpoint["callbacks"] = checkpoints.untag_arrays(checkpoint["callbacks"])


def make_logger(kind: str, run_dir: Path):
    """CSV by default; TensorBoard when installed. Each attempt of a resumed run gets its own
    version folder, so resuming never overwrites the logs of the attempt before."""
    if kind == "csv":
        return CSVLogger(run_dir, name=LOGS)
    if kind == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger
        return TensorBoardLogger(run_dir, name=LOGS)
    raise ValueError(f"logger must be 'csv' or 'tensorboard', not {kind!r}")


def ddp_strategy(agent: L.LightningModule, callbacks: Sequence[L.Callback], strategy: str,
                 devices: int | str) -> str:
    """``strategy``, or its ``find_unused_parameters=True`` variant when a backward pass may miss
    parameters: an agent stepping several optimisers in one update (manual optimisation: each
    backward reaches one group), or a callback that switches loss terms off for a while
    (``TransferCallback.leaves_parameters_unused``). DDP's reducer otherwise expects every
    backward to reach every parameter. Frozen parameters need neither: callbacks freeze at
    ``setup``, before DDP wraps the model, so its reducer never registers them."""
    unused = not agent.automatic_optimization or any(
        isinstance(cb, TransferCallback) and cb.leaves_parameters_unused for cb in callbacks)
    if not unused:
        return strategy
    if strategy == "auto" and isinstance(devices, int) and devices > 1:
        strategy = "ddp"  # what Lightning would pick for several devices
    if strategy in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def _say(label: str, report: Callable[[str], None] | None,
         speaks: bool) -> Callable[[str], None]:
    """One line about the run to ``report`` (stderr without one), from one rank only."""
    def say(line: str) -> None:
        if not speaks:
            return
        if report is None:
            print(f"{label}: {line}", file=sys.stderr, flush=True)
        else:
            report(f"{label}: {line}")
    return say


def train(agent: L.LightningModule, make_env: EnvFactory, tasks: Sequence[int], action_dim: int, *,
          budget: int, seed: int, config: TrainingConfig, run_dir: Path,
          callbacks: Sequence[L.Callback] = (), accelerator: str = "cpu", devices: int | str = 1,
          strategy: str = "auto", label: str = "run", report: Callable[[str], None] | None = None,
          logger: str = "csv", make_eval_env: EnvFactory | None = None) -> TrainResult:
    """Train ``agent`` for ``budget`` env steps; resume from ``run_dir/checkpoints/last.ckpt``.
    The learning curve plays ``make_eval_env``'s envs (default: ``make_env``'s)."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / CHECKPOINTS
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    last = ckpt_dir / LAST
    dm = PipelineDataModule(make_env, list(tasks), action_dim, budget, seed, config,
                            agent.data_needs(), make_eval_env)
    extra: list[L.Callback] = [PhaseCheckpoint(last, config.checkpoint_every)]
    if report is not None:
        extra.append(Progress(label, report, budget))
    extra.append(PortableCallbackState())  # last: it sees every other callback's state
    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, max_epochs=1,
        strategy=ddp_strategy(agent, callbacks, strategy, devices),
        logger=make_logger(logger, run_dir), callbacks=[*callbacks, *extra],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, log_every_n_steps=10, deterministic="warn", default_root_dir=run_dir,
    )
    # only global rank 0 moves bad files aside and says so; under a launcher that starts the
    # other ranks from fit, they look only after rank 0 has
    resume = checkpoints.resume_point(last, _say(label, report, trainer.is_global_zero),
                                      move_bad=trainer.is_global_zero)
    trainer.fit(agent, datamodule=dm, ckpt_path=str(resume) if resume else None,
                weights_only=True)
    wall = dm.wall_time
    device = f"{agent.device.type} x{trainer.world_size}" + (
        f" ({type(trainer.strategy).__name__})" if trainer.world_size > 1 else "")
    model = ckpt_dir / MODEL
    dm.include_state = False  # transfer targets need weights and hyperparameters, not the replay
    digest = save_atomically(trainer, model, weights_only=True)
    dm.include_state = True
    if trainer.is_global_zero:
        checkpoints.discard(last)  # after model.ckpt is in place: a crash before reruns the tail
    else:
        digest = checkpoints.read_sidecar(model)["sha256"]
    driver = dm.driver
    curve = driver.evaluator.curve
    steps, returns = zip(*curve) if curve else ((), ())
    diagnostics = {k: float(v) for cb in callbacks if isinstance(cb, Diagnostic)
                   for k, v in cb.diagnostics.items()}
    return TrainResult(list(steps), list(returns), driver.env_steps, trainer.global_step,
                       wall, dm.resumed_from, model, device, list(driver.episode_returns),
                       diagnostics, list(driver.evaluator.task_curve), model_sha256=digest)
