"""Pure loss maths shared by agents: plain functions of tensors, no modules, no state."""
from __future__ import annotations

import torch


def double_q_target(reward: torch.Tensor, terminal: torch.Tensor, gamma: float | torch.Tensor,
                    q_next_online: torch.Tensor, q_next_target: torch.Tensor) -> torch.Tensor:
    """Double-DQN target r + γ (1 − terminal) Q⁻(s', argmax_a Q(s', a)).

    The online network picks the next action and the target network scores it, which removes
    the max operator's overestimation bias (van Hasselt et al., 2016).
    """
    best = q_next_online.argmax(-1, keepdim=True)
    return reward + gamma * (1.0 - terminal) * q_next_target.gather(-1, best).squeeze(-1)


# -- CRAR (seed 001 §4.2; François-Lavet et al., 2019) ----------------------------------------
# Abstract states are [B, n]; every function returns the batch mean of a per-sample loss.

def crar_transition_loss(x: torch.Tensor, delta: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
    """L_p = ‖[x + p̂(x, a)] − x'‖₂², squared L2 summed over the abstract dims (001 §4.2).

    No target is detached: the seed trains the encoder through L_p (θ_ê is an argument of L_p).
    """
    return (x + delta - x_next).pow(2).sum(-1).mean()


def crar_d1(x1: torch.Tensor, x2: torch.Tensor, c_d: float) -> torch.Tensor:
    """L_d1 = exp(−C_d ‖x1 − x2‖₂) with the plain (not squared) L2 distance, as in 001 §4.2.

    Pushes the embeddings of two states apart so the abstract space cannot collapse; the seed
    uses it on random pairs (L_d1) and on successive states (L'_d1).
    """
    return torch.exp(-c_d * torch.linalg.vector_norm(x1 - x2, ord=2, dim=-1)).mean()


def crar_d2(x: torch.Tensor) -> torch.Tensor:
    """L_d2 = max(‖x‖_∞ − 1, 0): keeps embeddings inside the unit ∞-ball (001 §4.2)."""
    return torch.clamp(x.abs().amax(-1) - 1.0, min=0.0).mean()
