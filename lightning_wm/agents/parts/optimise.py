"""The one way a Dreamer update steps an optimiser group, with or without a Trainer.

:func:`step_group` takes the optimiser and the backward function as arguments: under a Trainer
the agent passes Lightning's optimisers and ``manual_backward`` (so DDP and precision plugins see
every backward pass), standalone it passes plain Adam optimisers and ``Tensor.backward``.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

Backward = Callable[[torch.Tensor], None]


def plain_backward(loss: torch.Tensor) -> None:
    loss.backward()


def step_group(optimiser, loss: torch.Tensor | None, backward: Backward, clip: float) -> None:
    """zero_grad, backward, clip the gradient norm to ``clip``, step.

    Frozen parameters get no gradient and stay put; a switched-off loss (``None``) or a wholly
    frozen group leaves every gradient empty, so the step is a no-op for Adam. The step is taken
    anyway: a Lightning optimiser counts its steps, and ``global_step`` must count updates
    whether or not a group had anything to learn.
    """
    optimiser.zero_grad(set_to_none=True)
    trainable = [p for g in optimiser.param_groups for p in g["params"] if p.requires_grad]
    if loss is not None and loss.requires_grad and trainable:
        backward(loss)
        # the gradients that exist are those of ``trainable``; Lightning's own clipping (over
        # every parameter of the optimiser, skipping empty gradients) gives the same norm
        nn.utils.clip_grad_norm_(trainable, clip)
    optimiser.step()


@contextlib.contextmanager
def frozen(params: Iterable[nn.Parameter]) -> Iterator[None]:
    """``requires_grad`` off for ``params`` (those that had it) while the block builds its graph,
    then back on. Gradients still flow *through* the frozen modules: the actor learns through the
    dynamics without its loss reaching the world model's or the critic's weights."""
    params = [p for p in params if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@functools.cache
def compiled(function: Callable) -> Callable:
    """``function`` (an unbound method, so copies of an agent never call back into the original)
    through torch.compile. The observe and imagine loops unroll into graphs of small ops that
    Python dispatch dominates; ``fallback_random`` draws the latent samples from torch's
    generator, so a compiled update matches the eager one for the same seed (up to float
    rounding)."""
    return torch.compile(function, options={"fallback_random": True})
