"""DreamerV2's discrete pieces: a categorical RSSM latent and a one-hot actor.

Voskuil, "Pre-training World Models to efficiently learn related tasks" (Master's thesis, Leiden
University, 2022, §2.3.1), after Hafner et al., "Mastering Atari with Discrete World Models"
(2021): "The latent state at time step t is composed of a deterministic vector h_t and a
stochastic discrete vector z_t. The discrete vector consists of 32 categorical values, each with
32 classes." :class:`CategoricalLatent` has the interface of
:class:`lightning_wm.nets.latent.GaussianLatent` (``params_size``, ``sample_size``, ``dist``,
``sample``, ``mode``, ``kl``), so the V1 RSSM runs it unchanged:

- params are ``groups × classes`` logits; a sample is the flattened one-hot ``[..., G·K]``;
- samples carry straight-through gradients (Hafner et al., 2021): the forward value is the
  one-hot draw, the backward pass is that of the class probabilities;
- ``kl`` is KL balancing with α = ``balance`` (:func:`lightning_wm.losses.balanced_kl`): its value
  is KL(q ‖ p), its gradient reaches the prior with weight α and the posterior with 1 − α.

:class:`OneHotActor` is the policy for discrete actions (Voskuil (2022), eq. (2),
a_t ~ p_ψ(a | z_t)): a categorical over the action logits with the same straight-through one-hot
samples, its argmax as the greedy action and a closed-form entropy for eq. (6)'s regulariser.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import distributions as D

from lightning_wm.losses import balanced_kl
from lightning_wm.nets.heads import MLPHead


def straight_through(logits: torch.Tensor) -> torch.Tensor:
    """One-hot draw from ``softmax(logits)`` over the last dim, with the gradient of the
    probabilities (value: the one-hot; d/dlogits: that of softmax)."""
    probs = logits.softmax(-1)
    index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])
    return F.one_hot(index, probs.shape[-1]).to(probs.dtype) + (probs - probs.detach())


def straight_through_mode(logits: torch.Tensor) -> torch.Tensor:
    """The most likely one-hot, with the same straight-through gradient."""
    probs = logits.softmax(-1)
    return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype) + (probs - probs.detach())


class CategoricalLatent:
    """``groups`` categoricals of ``classes`` classes each (32 × 32 in DreamerV2)."""

    def __init__(self, groups: int = 32, classes: int = 32, balance: float = 0.8) -> None:
        if not 0.0 <= balance <= 1.0:
            raise ValueError(f"KL balance must be in [0, 1], not {balance}")
        self.groups, self.classes, self.balance = int(groups), int(classes), float(balance)

    @property
    def params_size(self) -> int:
        return self.groups * self.classes

    @property
    def sample_size(self) -> int:
        return self.groups * self.classes

    def logits(self, params: torch.Tensor) -> torch.Tensor:
        """``[..., G·K]`` -> ``[..., G, K]``."""
        return params.unflatten(-1, (self.groups, self.classes))

    def dist(self, params: torch.Tensor) -> D.Distribution:
        """One event of G independent one-hot categoricals."""
        return D.Independent(D.OneHotCategoricalStraightThrough(logits=self.logits(params)), 1)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return straight_through(self.logits(params)).flatten(-2)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return straight_through_mode(self.logits(params)).flatten(-2)

    def kl(self, post: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Balanced KL(q ‖ p) per batch element, summed over groups (see module docstring)."""
        return balanced_kl(self.logits(post), self.logits(prior), self.balance)


class OneHotActor(MLPHead):
    """Categorical policy over ``action_dim`` actions; acts with one-hot vectors."""

    def __init__(self, feature_size: int, action_dim: int, hidden: int, layers: int) -> None:
        super().__init__(feature_size, action_dim, hidden, layers)

    def dist(self, feature: torch.Tensor) -> D.Distribution:
        return D.OneHotCategoricalStraightThrough(logits=super().forward(feature))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """A one-hot sample with straight-through gradients (usable by dynamics backprop)."""
        return straight_through(super().forward(feature))

    def mode(self, feature: torch.Tensor) -> torch.Tensor:
        """The greedy one-hot action."""
        logits = super().forward(feature)
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)

    def log_prob(self, feature: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """ln π(a | feature) of one-hot ``action``."""
        return (super().forward(feature).log_softmax(-1) * action).sum(-1)

    def entropy(self, feature: torch.Tensor) -> torch.Tensor:
        return self.dist(feature).entropy()
