"""Base class and weight-surgery helpers for transfer callbacks.

A transfer method is a Lightning callback: :meth:`TransferCallback.configure` decides, at
``setup``, what the run trains (frozen components, extra loss terms, streams, components);
:meth:`TransferCallback.apply` performs one-time weight surgery when training starts and
:meth:`TransferCallback.on_step` follows a schedule measured in optimizer steps
(``trainer.global_step``). The ``applied`` flag is saved with the checkpoint, so a resumed run
keeps the weights it had instead of having the transfer applied a second time.

Lightning 2.6 order on ``trainer.fit(ckpt_path=...)`` with the default strategies: model and
callback state are restored *before* ``on_fit_start``, optimizer and loop state (so
``trainer.global_step``) only *after* it. Strategies with ``restore_checkpoint_after_setup``
(FSDP, DeepSpeed) restore everything after ``on_fit_start``; there the start is deferred to
``on_train_start``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import lightning as L
import torch
from torch import nn

from lightning_wm import checkpoints
from lightning_wm.nets.init import init_weights
from lightning_wm.pipeline.datamodule import Pipeline, PipelineDataModule

_COMPONENT_PREFIX = "components."



class SourceState(dict):
    """``{component: {param path: tensor}}`` read from a checkpoint; remembers the file."""

    def __init__(self, data: Mapping[str, dict], path: str) -> None:
        super().__init__(data)
        self.path = path


# -- helpers -------------------------------------------------------------------------------------
def _modules(modules: nn.Module | Iterable[nn.Module] | Mapping[str, nn.Module]) -> list[nn.Module]:
    if isinstance(modules, nn.Module):
        return [modules]
    if isinstance(modules, Mapping):
        return list(modules.values())
    return list(modules)


def freeze(modules) -> None:
    """Stop gradients to every parameter of ``modules`` (a module, list or ``select`` result)."""
    for module in _modules(modules):
        for p in module.parameters():
            p.requires_grad_(False)
            p.grad = None  # a stale gradient would still be applied by the optimizer


def unfreeze(modules) -> None:
    for module in _modules(modules):
        for p in module.parameters():
            p.requires_grad_(True)


def reinit(module: nn.Module) -> None:
    """Fresh init of every layer under ``module`` by the library's one rule (Glorot-uniform
    weights, zero biases; :func:`lightning_wm.nets.init.init_weights`), the rule every
    scratch agent is built with."""
    init_weights(module)


def _without(state: Mapping[str, torch.Tensor], skip: frozenset[str]) -> Mapping[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k not in skip} if skip else state


def _check_compatible(target: nn.Module, source_state: Mapping[str, torch.Tensor],
                      where: str = "", skip: frozenset[str] = frozenset()) -> None:
    """Raise naming the first parameter missing, unexpected or of the wrong shape; keys in
    ``skip`` are not compared (a later re-initialisation provides them)."""
    own = _without(target.state_dict(), skip)
    source_state = _without(source_state, skip)
    full = (lambda k: f"{where}.{k}") if where else (lambda k: k)
    missing = sorted(full(k) for k in set(own) - set(source_state))
    unexpected = sorted(full(k) for k in set(source_state) - set(own))
    if missing:
        raise KeyError(f"source lacks parameter(s) {missing} of the target")
    if unexpected:
        raise KeyError(f"source has parameter(s) {unexpected} the target does not have")
    for key, value in own.items():
        if tuple(source_state[key].shape) != tuple(value.shape):
            raise ValueError(
                f"shape mismatch for '{full(key)}': target {tuple(value.shape)}, "
                f"source {tuple(source_state[key].shape)}"
            )


@torch.no_grad()
def copy_(target: nn.Module, source_state: Mapping[str, torch.Tensor], where: str = "",
          skip: frozenset[str] = frozenset()) -> None:
    """θ_T ← θ_S for every parameter and buffer of ``target`` (in place, shape-checked).

    ``where`` (e.g. ``"reward.out"``) prefixes parameter names in error messages; keys in
    ``skip`` keep the target's values (a later re-initialisation replaces them).
    """
    _check_compatible(target, source_state, where, skip)
    for key, value in target.state_dict(keep_vars=True).items():
        if key not in skip:
            value.copy_(source_state[key])


@torch.no_grad()
def mix_(target: nn.Module, source_state: Mapping[str, torch.Tensor], fraction: float,
         where: str = "", skip: frozenset[str] = frozenset()) -> None:
    """Fractional transfer θ_T ← θ_ε + λ θ_S, θ_ε a fresh :func:`reinit` of ``target``.

    Only parameters are mixed; buffers (running statistics) keep the target's own values, and
    parameters in ``skip`` stay θ_ε.
    """
    if not math.isfinite(fraction):
        raise ValueError(f"fraction must be finite, got {fraction}")
    _check_compatible(target, source_state, where, skip)  # before touching anything
    reinit(target)
    for key, p in target.named_parameters():
        if key not in skip:
            p.add_(source_state[key].to(device=p.device, dtype=p.dtype), alpha=fraction)


def load_source(path: str) -> SourceState:
    """Read a Lightning checkpoint into ``{component: {param path: tensor}}``.

    The file must match its sha256 sidecar (``<name>.sha256.json``, written with every
    checkpoint :func:`~lightning_wm.training.train` saves; :func:`lightning_wm.checkpoints.seal`
    writes one for a file from elsewhere) and is read weights-only, so a source file can neither
    run code nor be trained on when it is not what its run wrote: a
    :class:`~lightning_wm.checkpoints.CheckpointError` naming it is raised instead."""
    checkpoint = checkpoints.load(path)
    if "state_dict" not in checkpoint:
        raise KeyError(f"checkpoint '{path}' has no 'state_dict' (keys: {sorted(checkpoint)})")
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in checkpoint["state_dict"].items():
        if not key.startswith(_COMPONENT_PREFIX):
            continue
        name, _, rest = key[len(_COMPONENT_PREFIX):].partition(".")
        out.setdefault(name, {})[rest] = value
    return SourceState(out, str(path))


def source_state_for(source: Mapping[str, dict], address: str) -> dict[str, torch.Tensor]:
    """The parameters under a dotted ``address`` (``"reward.out"``), keyed relative to it."""
    name, _, rest = address.partition(".")
    params = source.get(name, {})
    prefix = f"{rest}." if rest else ""
    found = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    if not found:
        where = source.path if isinstance(source, SourceState) else "<source state>"
        raise KeyError(
            f"checkpoint '{where}' has no parameters under '{address}' "
            f"(its components: {sorted(source)})"
        )
    return found


def _sync_across_ranks(module: nn.Module) -> None:
    # DDP syncs weights only when it wraps the model (before on_fit_start); fresh random inits
    # made afterwards would differ per rank, so rank 0's result is broadcast.
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for tensor in module.state_dict(keep_vars=True).values():
        torch.distributed.broadcast(tensor.data, src=0)


# -- base callback -------------------------------------------------------------------------------
class TransferCallback(L.Callback):
    """A transfer method: decisions at ``setup``, one-time weight surgery, a step schedule.

    Hooks for subclasses, in the order they run:

    - :meth:`configure` at ``setup``, on every start and resume, before a strategy wraps the
      model and before the optimisers are built (as Lightning's ``BaseFinetuning`` freezes):
      freeze components, add loss terms (:meth:`Agent.add_loss_term`), streams
      (:meth:`Pipeline.add_source`) or components (:meth:`Agent.add_component`). Nothing it does
      is in a checkpoint, so it must do the same on resume.
    - :meth:`apply` once per run when training starts: weight surgery (never again on resume).
    - :meth:`on_step` at every update with ``trainer.global_step``: schedules.
    """

    freeze = staticmethod(freeze)
    unfreeze = staticmethod(unfreeze)
    reinit = staticmethod(reinit)
    copy_ = staticmethod(copy_)
    mix_ = staticmethod(mix_)
    load_source = staticmethod(load_source)
    source_state_for = staticmethod(source_state_for)

    #: True for callbacks that switch loss terms off for a while: a backward pass may then miss
    #: whole parameters, which DDP must be told (``find_unused_parameters``)
    leaves_parameters_unused: bool = False

    def __init__(self) -> None:
        self.applied = False

    # -- hooks for subclasses -------------------------------------------------------------------
    def configure(self, agent, pipeline: Pipeline | None) -> None:
        """Decisions about the model and the data, at ``setup`` (fresh and resumed runs);
        ``pipeline`` is ``None`` when the trainer is fed by plain dataloaders."""

    def apply(self, agent) -> None:
        """Weight surgery, run once per training run (never again on resume)."""

    def on_step(self, agent, step: int) -> None:
        """Called at the start of every training batch with ``trainer.global_step``."""

    def on_resume(self, agent) -> None:
        """Re-establish what a checkpoint does not hold and :meth:`configure` does not redo.

        Called instead of :meth:`apply` on resume. ``trainer.global_step`` is not restored yet
        at this point, so decide from the callback's own state; :meth:`on_step` follows.
        """

    def key_args(self) -> dict[str, Any]:
        """Constructor arguments that tell two instances of the class apart."""
        return {}

    # -- Lightning plumbing ---------------------------------------------------------------------
    @property
    def state_key(self) -> str:
        return self._generate_state_key(**self.key_args())

    def state_dict(self) -> dict[str, Any]:
        return {"applied": self.applied}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = bool(state_dict.get("applied", False))

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        # Lightning skips a callback whose key is absent; applying the surgery over resumed
        # weights would silently wreck the run, so refuse instead.
        saved = checkpoint.get("callbacks") or {}
        if trainer.state.fn == "fit" and self.state_key not in saved:
            raise RuntimeError(
                f"resuming from a checkpoint without state for transfer callback "
                f"'{self.state_key}' (its callback states: {sorted(map(str, saved))}); "
                "the callback's arguments must match those of the run that wrote it"
            )

    def setup(self, trainer, pl_module, stage: str) -> None:
        # the data module's setup runs first, so the pipeline exists; the strategy wraps the
        # model and builds the optimisers only after every setup hook. A fit on plain
        # dataloaders (tests, notebooks) has no pipeline: callbacks that need one say so.
        if stage == "fit":
            dm = trainer.datamodule
            self.configure(pl_module, dm.pipeline if isinstance(dm, PipelineDataModule) else None)

    def _start(self, trainer, agent) -> None:
        if self.applied:
            self.on_resume(agent)
            return
        self.apply(agent)
        if trainer.world_size > 1:
            _sync_across_ranks(agent)
        self.applied = True

    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.strategy.restore_checkpoint_after_setup:
            self._start(trainer, pl_module)

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.strategy.restore_checkpoint_after_setup:  # state restored only now
            self._start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.on_step(pl_module, trainer.global_step)
