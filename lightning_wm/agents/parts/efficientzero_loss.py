"""The EfficientZero agent's glue between the replay, the search and the target maths.

- :func:`transitions`: a replay window ``[B, T]`` as the transition window ``[B, T − 1]`` of
  :mod:`~lightning_wm.agents.parts.muzero_targets` (its index convention), and
  :func:`state_masks`, which states of the window belong to the episode;
- :class:`LatentStep`: the ``step(state, action)`` the batched search calls, wrapping the
  dynamics (value-prefix LSTM) and prediction functions;
- :func:`search`: one batched search (Gumbel or pUCT) from given roots.

**Window mapping.** The replay stores at index j the observation o_j, the action that *led to*
it (a_{j−1} in MuZero's terms), the reward received on arriving (r_{j−1}), ``is_first[j]`` (o_j
starts an episode) and ``is_terminal[j]`` (o_j is terminal). With the root at replay index 0
(MuZero's t), the transition window of muzero_targets is, for i = 0..T − 2::

    reward[:, i]   = replay reward[:, i + 1]          (r_{t+i}: s_{t+i} → s_{t+i+1})
    terminal[:, i] = replay is_terminal[:, i + 1]     (s_{t+i+1} is terminal)
    valid[:, i]    = not replay is_first[:, i + 1]    (o_{i+1} continues o_i's episode)
                     and not replay is_absorbing[:, i + 1] (absorbing replays only)
                     and not replay is_terminal[:, 0] (nothing follows a terminal root)
    action a_{t+k} = argmax replay action[:, k + 1]   (k = 0..K − 1, taken at o_k)

Unroll position k = 0..K is the state at replay index k; its n-step target bootstraps from the
observation at replay index k + n (≤ K + n = T − 1, so a window of K + n + 1 steps covers all).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from lightning_wm.agents.parts.muzero_targets import categorical_to_scalar
from lightning_wm.agents.parts.search import SearchResult, muzero_search
from lightning_wm.agents.parts.search_gumbel import gumbel_search
from lightning_wm.nets.efficientzero import Dynamics


def transitions(batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """(reward, terminal, valid), each ``[B, T − 1]``, of a replay window (module docstring)."""
    reward = batch["reward"][:, 1:].float()
    terminal = batch["is_terminal"][:, 1:].bool()
    valid = ~batch["is_first"][:, 1:].bool() & ~batch["is_terminal"][:, :1].bool()
    if "is_absorbing" in batch:
        valid = valid & ~batch["is_absorbing"][:, 1:].bool()
    return reward, terminal, valid


def taken_actions(batch: Mapping[str, Tensor], num_unroll: int) -> Tensor:
    """a_{t+k} for k = 0..K − 1 as int64 ``[B, K]``: the one-hot at replay index k + 1."""
    return batch["action"][:, 1:num_unroll + 1].float().argmax(-1)


def state_masks(terminal: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """(acting, reached), each bool ``[B, T]``, over the window's states s_t..s_{t+T−1}.

    ``reached[:, j]``: o_j belongs to the root's episode (a terminal observation included);
    ``acting[:, j]``: it does and is not terminal, so an action was chosen there (where a policy
    target means something). Both are prefixes: nothing after a gap or a terminal counts.
    """
    going_on = (valid & ~terminal).to(torch.float32)
    acting = torch.cat([torch.ones_like(going_on[:, :1]), torch.cumprod(going_on, 1)], 1).bool()
    ends_here = acting[:, :-1] & valid & terminal
    reached = acting | torch.cat([torch.zeros_like(ends_here[:, :1]), ends_here], 1)
    return acting, reached


class LatentStep:
    """``step(state, action)`` of the search contract over (dynamics, prediction).

    The state is ``(latent, lstm_h, lstm_c, prefix, depth)``: the value prefix of the node and
    its depth below the root. The reward of an edge is the child's prefix minus the parent's,
    or the child's prefix itself where the parent's LSTM was reset (the root, and every depth
    that is a multiple of ``horizon``); the LSTM state is zeroed at those depths, exactly as the
    training unroll resets it and as ``value_prefix_targets`` sums the rewards.
    """

    def __init__(self, nets: Mapping[str, nn.Module], horizon: int, value_support: int,
                 reward_support: int) -> None:
        self.nets, self.horizon = nets, int(horizon)
        self.value_support, self.reward_support = int(value_support), int(reward_support)

    def root_state(self, latent: Tensor) -> tuple[Tensor, ...]:
        b = latent.shape[0]
        h, c = self.nets["dynamics"].initial_hidden(b, latent.device, latent.dtype)
        return (latent, h, c, latent.new_zeros(b), torch.zeros(b, dtype=torch.long,
                                                                 device=latent.device))

    def predict(self, latent: Tensor) -> tuple[Tensor, Tensor]:
        """(policy logits, scalar value) of latents."""
        logits, value_logits = self.nets["prediction"](latent)
        return logits, categorical_to_scalar(value_logits, self.value_support)

    def __call__(self, state: tuple[Tensor, ...], action: Tensor):
        latent, h, c, prefix, depth = state
        nxt, prefix_logits, hidden = self.nets["dynamics"](latent, action, (h, c))
        child = categorical_to_scalar(prefix_logits, self.reward_support)
        parent = torch.where(depth % self.horizon == 0, torch.zeros_like(prefix), prefix)
        depth = depth + 1
        h, c = Dynamics.reset_hidden(hidden, depth % self.horizon == 0)
        logits, value = self.predict(nxt)
        return (nxt, h, c, child, depth), child - parent, value, logits


def search(step: LatentStep, latent: Tensor, logits: Tensor, value: Tensor,
           cfg: Mapping[str, Any], explore: bool, root_noise: bool | None = None,
           temperature: float | None = None) -> SearchResult:
    """One batched search from roots (latent ``[B, ...]``, policy logits, scalar value) with the
    options of a resolved EfficientZero config. ``explore`` False: no Gumbel or Dirichlet noise
    and, for pUCT, the most visited action (evaluation). ``root_noise`` (pUCT only; default:
    ``explore``) mixes Dirichlet noise into the root prior whatever ``explore`` says:
    EfficientZero's reanalysis searches with it but needs no sampled action. ``temperature``
    (pUCT, exploring; default: the config's) is the visit-count draw's."""
    noise = explore if root_noise is None else root_noise
    root = step.root_state(latent)
    # on the CPU reading the tree's depth back is free and makes the descent ~15x shorter (same
    # result); on an accelerator the search stays free of host syncs (capturable)
    read_depth = latent.device.type == "cpu"
    if cfg["search"] == "gumbel":
        return gumbel_search(logits, value, root, step, int(cfg["simulations"]),
                             discount=float(cfg["gamma"]),
                             num_considered=int(cfg["num_considered"]),
                             c_visit=float(cfg["c_visit"]), c_scale=float(cfg["c_scale"]),
                             gumbel_scale=1.0 if explore else 0.0,
                             min_range=float(cfg["gumbel_min_delta"]), read_depth=read_depth)
    return muzero_search(logits, value, root, step, int(cfg["simulations"]),
                         discount=float(cfg["gamma"]), pb_c_init=float(cfg["pb_c_init"]),
                         pb_c_base=float(cfg["pb_c_base"]),
                         dirichlet_alpha=float(cfg["dirichlet_alpha"]),
                         noise_fraction=float(cfg["noise_fraction"]) if noise else 0.0,
                         temperature=(float(cfg["temperature"] if temperature is None
                                            else temperature) if explore else 0.0),
                         min_delta=float(cfg["min_delta"]), read_depth=read_depth)
