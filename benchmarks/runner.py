"""Execute one run of the graph: build env, agent and callbacks from factories, train, record.

The runner never imports a concrete agent or env: it takes :class:`Factories`, so tests swap in
fakes. A run's record is written as ``running`` before training, then ``completed`` (curve
first, record last), ``failed`` with its cause, or ``interrupted`` when a signal stopped it (see
:mod:`benchmarks.interrupts`); a rerun skips completed runs with the same config hash and
resumes any other from its last checkpoint. A record that cannot be written (disk full) fails
that run, not the suite: the record comes back in memory, its error naming the OSError.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from benchmarks import interrupts
from benchmarks import provenance as prov
from benchmarks.graph import RunSpec
from benchmarks.names import under
from benchmarks.results import (RECORD, Provenance, RunRecord, SourceUse, atomic_write_text,
                                read_record, write_curve, write_record,
                                write_task_curves)
from lightning_wm.artifacts import CHECKPOINTS, MODEL
from lightning_wm.fileio import sha256_file


@dataclass(frozen=True)
class Factories:
    """How to build the pieces of a run; defaults come from the library's registries."""
    make_agent: Callable[..., Any] = None     # (name, obs_shape, action_dim, discrete, config)
    make_env: Callable[..., gym.Env] = None   # (env_id, options)
    make_callback: Callable[..., Any] = None  # (name, args, sources: slot -> path)
    train: Callable[..., Any] = None          # lightning_wm.training.train

    @staticmethod
    def default() -> "Factories":
        from lightning_wm.agents import make_agent
        from lightning_wm.envs import make_env
        from lightning_wm.training import train
        from lightning_wm.callbacks import make_callback
        return Factories(make_agent, make_env, make_callback, train)


@dataclass
class ExecOptions:
    out_root: Path
    devices: int | str = 1
    strategy: str = "auto"
    accelerator: str | None = None    # overrides the profile's
    report: Callable[[str], None] | None = field(default=None)
    logger: str = "csv"               # Lightning logger: csv | tensorboard
    in_worker: bool = False           # already inside a per-run process (see benchmarks.worker)

    @property
    def multi_process(self) -> bool:
        """Strategies that start one process per device need a per-run entry point."""
        return not self.in_worker and (str(self.strategy).startswith("ddp") or
                                       (isinstance(self.devices, int) and self.devices > 1))


def is_rank_zero() -> bool:
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def run_dir(out_root: Path, spec: RunSpec) -> Path:
    # names are validated with the suite; ``under`` refuses a path that would leave the root anyway
    return under(out_root, spec.suite, spec.profile, "runs", spec.run_id)


def existing(out_root: Path, spec: RunSpec) -> RunRecord | None:
    path = run_dir(out_root, spec) / RECORD
    if not path.exists():
        return None
    record = read_record(path)  # a corrupt record raises, naming the file
    return record if record.provenance.config_hash == spec.config_hash else None


def _spaces(make_env, envs: list[dict]) -> tuple[tuple[int, ...], int, bool, list[tuple]]:
    """Observation shape and action width an agent needs for all its tasks (padded to the max)."""
    shapes, widths, discrete = [], [], set()
    for e in envs:
        env = make_env(e["env"], e["options"])
        shapes.append(env.observation_space.shape)
        space = env.action_space
        discrete.add(isinstance(space, gym.spaces.Discrete))
        widths.append(int(space.n) if isinstance(space, gym.spaces.Discrete) else int(np.prod(space.shape)))
        env.close()
    if len(discrete) > 1:
        raise ValueError("tasks mix discrete and continuous action spaces")
    if len({len(s) for s in shapes}) > 1 or (len(shapes[0]) > 1 and len(set(shapes)) > 1):
        raise ValueError(f"tasks have incompatible observation shapes {shapes}")
    obs = (max(s[0] for s in shapes),) if len(shapes[0]) == 1 else shapes[0]
    return obs, max(widths), discrete.pop(), shapes


def _env_factory(make_env, envs: list[dict], obs_shape, action_dim: int, own_shapes,
                 evaluation: bool = False):
    """Task index -> env; ``evaluation``: with each task's ``eval_options`` applied on top."""
    from lightning_wm.envs.wrappers import PadSpaces
    pad = len(obs_shape) == 1 and len(set(own_shapes)) > 1

    def factory(task: int) -> gym.Env:
        e = envs[task]
        options = {**e["options"], **e.get("eval_options", {})} if evaluation else e["options"]
        env = make_env(e["env"], options)
        if pad or (isinstance(env.action_space, gym.spaces.Box) and len(envs) > 1):
            env = PadSpaces(env, obs_shape[0] if pad else None, action_dim)
        return env
    return factory


def _sources(out_root: Path, spec: RunSpec) -> tuple[dict[str, str], list[SourceUse]]:
    paths, uses = {}, []
    for slot, rid in spec.slots.items():
        folder = under(out_root, spec.suite, spec.profile, "runs", rid)
        rec = read_record(folder / RECORD)
        model = folder / CHECKPOINTS / MODEL
        paths[slot] = str(model)
        uses.append(SourceUse(slot=slot, run_id=rid, checkpoint_sha256=_source_digest(model, rec),
                              env_steps=rec.env_steps, wall_time_s=rec.wall_time_s))
    return paths, uses


def _source_digest(model: Path, rec: RunRecord) -> str:
    """The digest of a source's weights, refusing a file its run did not write (records from
    before digests were recorded carry none, and are taken as they are)."""
    if not model.is_file():
        raise FileNotFoundError(f"{model}: the source run {rec.run_id} has no model file")
    digest = sha256_file(model)
    if rec.model_sha256 is not None and digest != rec.model_sha256:
        raise ValueError(f"{model}: sha256 {digest} differs from the one its run recorded "
                         f"({rec.model_sha256}); refusing to train on it")
    return digest


def _provenance(spec: RunSpec) -> Provenance:
    return Provenance(config_hash=spec.config_hash, git_commit=prov.git_commit(),
                      packages=prov.package_versions(), python=prov.python_version(),
                      platform=prov.machine(), cpu=prov.cpu(), started_at=prov.now())


def _record(spec: RunSpec, status: str, provenance: Provenance, **kw) -> RunRecord:
    return RunRecord(run_id=spec.run_id, suite=spec.suite, profile=spec.profile, kind=spec.kind,
                     task=spec.task, tasks=spec.tasks, method=spec.name, seed=spec.seed,
                     source_seed=spec.source_seed, baseline_run_id=spec.baseline_run_id,
                     is_baseline=spec.is_baseline, status=status, budget=spec.budget,
                     provenance=provenance, **kw)


def _in_subprocess(spec: RunSpec, opts: ExecOptions) -> RunRecord:
    folder = run_dir(opts.out_root, spec)
    folder.mkdir(parents=True, exist_ok=True)
    spec_file = folder / "spec.json"
    atomic_write_text(spec_file, json.dumps(spec.to_dict(), indent=2))
    cmd = [sys.executable, "-m", "benchmarks.worker", str(spec_file), str(opts.out_root),
           str(opts.devices), opts.strategy, opts.accelerator or "", opts.logger]
    proc = subprocess.Popen(cmd)
    interrupts.forward_to(proc, lambda: [proc.pid] if proc.poll() is None else [])
    try:
        proc.wait()  # a signal here runs our handler, which forwards it; the wait goes on
    finally:
        interrupts.forward_to(proc, None)
    record = existing(opts.out_root, spec)
    if record is None or record.status == "running":  # the worker died before recording
        if interrupts.requested():
            return blocked_record(opts.out_root, spec, interrupts.describe(interrupts.received()),
                                  status="interrupted")
        record = blocked_record(opts.out_root, spec, f"worker process died (exit {proc.returncode})",
                                status="failed")
    return record


def blocked_record(out_root: Path, spec: RunSpec, why: str, status: str = "blocked") -> RunRecord:
    """Record ``spec`` as not run (``why``); a completed record on disk is kept and returned."""
    done = existing(out_root, spec) if status == "interrupted" else None
    if done is not None and done.status in ("completed", "interrupted"):
        return done  # the run's own process recorded how it ended
    return _settle(run_dir(out_root, spec), _record(spec, status, _provenance(spec), error=why))


def _settle(folder: Path, record: RunRecord, write=None) -> RunRecord:
    """Write ``record``; when that fails (disk full, folder unwritable), return it with the
    OSError first in its error, so the summary names it and the suite goes on."""
    try:
        (write or write_record)(folder, record)
        return record
    except OSError as e:
        error = f"its {record.status} record could not be written ({e})"
        return record.model_copy(update={"error": f"{error}; {record.error}"})


def execute(spec: RunSpec, opts: ExecOptions, factories: Factories | None = None) -> RunRecord:
    """Run ``spec`` to completion (or failure) and return its record; never raises for a run."""
    f = factories or Factories.default()
    done = existing(opts.out_root, spec)
    if done is not None and done.status == "completed":
        return done
    if interrupts.requested():  # signalled while starting: leave this run as it was on disk
        return _record(spec, "interrupted", _provenance(spec),
                       error=interrupts.describe(interrupts.received()))
    if opts.multi_process:
        return _in_subprocess(spec, opts)
    write = write_record if is_rank_zero() else (lambda *a: None)
    folder = run_dir(opts.out_root, spec)
    p = _provenance(spec)
    start = time.monotonic()
    try:
        write(folder, _record(spec, "running", p))
        paths, p.sources = _sources(opts.out_root, spec)
        result = _train(spec, opts, f, paths, folder)
        return _completed(spec, folder, p, result, write)
    except BaseException as e:  # isolate the failure: record it, let the suite go on
        signum = e.signum if isinstance(e, interrupts.Interrupted) else interrupts.received()
        if not signum and not isinstance(e, Exception):
            raise  # a SystemExit or KeyboardInterrupt that is not our signal: not ours to stop
        p.finished_at = prov.now()
        if signum:  # Lightning's SIGTERMException lands here too: the flag says it was a signal
            error = f"{interrupts.describe(signum)}; a rerun resumes from its last checkpoint"
        else:
            cause = "".join(traceback.format_exception_only(type(e), e)).strip()
            error = f"{cause}\n{''.join(traceback.format_tb(e.__traceback__)[-3:])}"
        record = _record(spec, "interrupted" if signum else "failed", p, error=error,
                         wall_time_s=time.monotonic() - start)
        return _settle(folder, record, write)


def _completed(spec: RunSpec, folder: Path, p: Provenance, result, write) -> RunRecord:
    p.finished_at, p.resumed_from_step = prov.now(), result.resumed_from_step
    if is_rank_zero():
        write_curve(folder, result.steps, result.returns)
        if len(spec.tasks) > 1:
            write_task_curves(folder, spec.tasks, result.steps, result.task_returns)
    record = _record(spec, "completed", p, env_steps=result.env_steps, updates=result.updates,
                     wall_time_s=result.wall_time_s, device=result.device,
                     diagnostics=result.diagnostics,
                     model_sha256=result.model_sha256)
    write(folder, record)
    return record


def _train(spec: RunSpec, opts: ExecOptions, f: Factories, paths: dict[str, str], folder: Path):
    import lightning as L
    from lightning_wm.pipeline import TrainingConfig

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*dataloader_iter.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    obs_shape, action_dim, discrete, own = _spaces(f.make_env, spec.envs)
    L.seed_everything(spec.seed, verbose=False)
    agent = f.make_agent(spec.agent, obs_shape, action_dim, discrete, spec.agent_config)
    # a callback's ``source`` (a slot) travels as an argument; make_callback maps it to a path
    callbacks = [f.make_callback(cb["name"], {**cb["args"], **({"source": cb["source"]} if cb["source"] else {})},
                                 paths) for cb in spec.callbacks]
    callbacks.append(_safe_point_callback()())
    accelerator = opts.accelerator or spec.accelerator
    evaluated = None
    if any(e.get("eval_options") for e in spec.envs):
        evaluated = _env_factory(f.make_env, spec.envs, obs_shape, action_dim, own, True)
    result = f.train(agent, _env_factory(f.make_env, spec.envs, obs_shape, action_dim, own),
                     list(range(len(spec.envs))), action_dim, budget=spec.budget, seed=spec.seed,
                     config=TrainingConfig(**spec.training), run_dir=folder, callbacks=callbacks,
                     accelerator=accelerator, devices=opts.devices, strategy=opts.strategy,
                     label=spec.run_id, report=opts.report, logger=opts.logger,
                     make_eval_env=evaluated)
    return result


@functools.cache
def _safe_point_callback():
    """The callback class that stops training at a safe point once a signal has arrived.

    Built on first use so that importing this module stays free of Lightning. It checks before
    each update, after the previous update's hooks (the phase-boundary checkpoint among them)
    have run; it writes nothing, so the resume checkpoint is the last phase-boundary one.
    """
    import lightning as L

    class StopAtSafePoint(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            signum = interrupts.received()
            if not signum:
                return
            if trainer.world_size == 1:
                raise interrupts.Interrupted(signum)
            # Under DDP every rank must stop at the same update, or one waits forever in a
            # collective. Lightning already broadcasts rank 0's SIGTERM flag before each update
            # (with same-shaped tensors its SIGTERM handler also sends, so a broadcast of our
            # own could pair with one of those): hand it our signal instead, on rank 0.
            if trainer.is_global_zero:
                trainer._signal_connector.received_sigterm = True  # private in Lightning 2.6

    return StopAtSafePoint
