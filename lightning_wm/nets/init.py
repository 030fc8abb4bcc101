"""The one initialisation rule of the library: Glorot-uniform weights, zero biases.

Every agent applies it to its components when it is built, and transfer methods apply it to
the layers they re-initialise, so a scratch baseline and the fresh layers of a transferred
agent are drawn from the same distribution: the paired comparison differs only by the
transfer. It is also the rule of the source papers' code, which used Keras defaults (Hafner
et al., "Dream to Control: Learning Behaviors by Latent Imagination", 2020; Sasso, Sabatelli
and Wiering, "Multi-Source Transfer Learning for Deep Model-Based Reinforcement Learning",
2023; van Driessel and François-Lavet, "Cross-environment transfer of abstract
representations", 2021). PyTorch's own defaults differ (Kaiming-uniform with ``a=√5`` and
uniform biases), which is why no layer is left on them.
"""
from __future__ import annotations

import torch
from torch import nn

#: layer types whose parameters follow the rule: matrices (and conv kernels) Glorot-uniform,
#: vectors zero; recurrent cells included (input and recurrent matrices alike)
GLOROT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase, nn.RNNCellBase)


def _init_param(name: str, p: torch.Tensor) -> None:
    if p.dim() >= 2 and not name.startswith("bias"):
        nn.init.xavier_uniform_(p)
    else:
        nn.init.zeros_(p)


@torch.no_grad()
def init_weights(module: nn.Module) -> nn.Module:
    """Initialise every layer under ``module`` by the rule, in ``module.modules()`` order
    (so the draws are reproducible under a seed); returns ``module``.

    Normalisation layers (LayerNorm, ...) use their own ``reset_parameters`` (unit scale,
    zero shift); a custom module without one gets the rule by shape (matrices Glorot,
    vectors zero).
    """
    for sub in module.modules():
        own = list(sub.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(sub, GLOROT_LAYERS) or not hasattr(sub, "reset_parameters"):
            for name, p in own:
                _init_param(name, p)
        else:
            sub.reset_parameters()
    return module
