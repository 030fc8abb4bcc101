"""Pure loss maths shared by agents: plain functions of tensors, no modules, no state.

Papers cited below by short name:

- van Driessel & François-Lavet (2021): Geoffrey van Driessel and Vincent François-Lavet,
  "Component Transfer Learning for Deep RL Based on Abstract Representations", arXiv, 2021.
- Sasso et al. (2023): Remo Sasso, Matthia Sabatelli and Marco A. Wiering, "Multi-Source Transfer
  Learning for Deep Model-Based Reinforcement Learning", TMLR, 2023.
- Voskuil (2022): Ken S. Voskuil, "Pre-training World Models to efficiently learn related tasks",
  Master's thesis, Leiden University, 2022.
"""
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


def n_step_return(reward: torch.Tensor, terminal: torch.Tensor,
                  gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``[B, n]`` rewards and terminal flags of steps 1..n: the discounted sum
    Σ_k γ^(k−1) r_k up to the first terminal step, and whether one was met (``[B]`` each).

    The target is then ``return + γ^n (1 − ended) Q⁻(s_n, ·)``: ``double_q_target(return,
    ended, γ^n, …)``. With n = 1 it is the one-step target, exactly.
    """
    alive = torch.cumprod(1.0 - terminal, -1)            # 1 while no terminal up to step k
    before = torch.cat([torch.ones_like(alive[:, :1]), alive[:, :-1]], -1)
    discounts = gamma ** torch.arange(reward.shape[-1], dtype=reward.dtype, device=reward.device)
    return (reward * before * discounts).sum(-1), 1.0 - alive[:, -1]


# -- CRAR (van Driessel & François-Lavet, 2021, §4.2; François-Lavet et al., 2019) -------------
# Abstract states are [B, n]; every function returns the batch mean of a per-sample loss.

def crar_transition_loss(x: torch.Tensor, delta: torch.Tensor, x_next: torch.Tensor) -> torch.Tensor:
    """L_p = ‖[x + p̂(x, a)] − x'‖₂², squared L2 summed over the abstract dims
    (van Driessel & François-Lavet, 2021, §4.2).

    No target is detached: the paper trains the encoder through L_p (θ_ê is an argument of L_p).
    """
    return (x + delta - x_next).pow(2).sum(-1).mean()


def crar_d1(x1: torch.Tensor, x2: torch.Tensor, c_d: float) -> torch.Tensor:
    """L_d1 = exp(−C_d ‖x1 − x2‖₂) with the plain (not squared) L2 distance, as in
    van Driessel & François-Lavet (2021), §4.2.

    Pushes the embeddings of two states apart so the abstract space cannot collapse; the paper
    uses it on random pairs (L_d1) and on successive states (L'_d1).
    """
    return torch.exp(-c_d * torch.linalg.vector_norm(x1 - x2, ord=2, dim=-1)).mean()


def crar_d2(x: torch.Tensor) -> torch.Tensor:
    """L_d2 = max(‖x‖_∞ − 1, 0): keeps embeddings inside the unit ∞-ball
    (van Driessel & François-Lavet, 2021, §4.2)."""
    return torch.clamp(x.abs().amax(-1) - 1.0, min=0.0).mean()


# -- Dreamer (Sasso et al., 2023, §2 and Algorithm 1; Hafner et al., 2020) ---------------------
# Time-major tensors: [T, ...].

def lambda_returns(reward: torch.Tensor, value: torch.Tensor, discount: float | torch.Tensor,
                   bootstrap: torch.Tensor, lam: float) -> torch.Tensor:
    """V_λ targets of Sasso et al. (2023), Algorithm 1 ("Compute value estimates V_λ(s_τ)"),
    backwards:

        V_λ(t) = r_t + γ_t [(1 − λ) v_{t+1} + λ V_λ(t+1)],   with v_T = V_λ(T) = ``bootstrap``.

    ``reward``, ``value`` and ``discount`` (γ_t, a float or a tensor like ``reward``) are
    ``[T, ...]``; ``bootstrap`` is v(s_T), ``[...]``. λ = 1 gives the discounted return
    bootstrapped at T, λ = 0 the one-step TD target.
    """
    discount = torch.as_tensor(discount, dtype=reward.dtype, device=reward.device).expand_as(reward)
    next_value = torch.cat([value[1:], bootstrap.unsqueeze(0)], 0)
    # the part of each target that does not depend on later targets
    base = reward + discount * (1.0 - lam) * next_value
    out = []
    last = bootstrap
    for t in reversed(range(reward.shape[0])):
        last = base[t] + discount[t] * lam * last
        out.append(last)
    return torch.stack(out[::-1])


def kl_free_nats(kl: torch.Tensor, free_nats: float) -> torch.Tensor:
    """max(mean KL, free nats): the KL term of Dreamer's model loss (Hafner et al., 2020).

    Below ``free_nats`` the term is constant, so it stops pulling the posterior towards the
    prior before the latent has encoded anything (no gradient there). The mean is taken first,
    over batch and time, as Dreamer V1 does.
    """
    return torch.clamp(kl.mean(), min=free_nats)


# -- DreamerV2 (Voskuil, 2022, §2.3; Hafner et al., 2021) --------------------------------------
# Categorical latents are logits [..., G, K]: G independent categoricals of K classes.

def categorical_kl(post_logits: torch.Tensor, prior_logits: torch.Tensor) -> torch.Tensor:
    """KL(q ‖ p) = Σ_g Σ_k q_gk (ln q_gk − ln p_gk), per batch element ``[...]``."""
    log_q, log_p = post_logits.log_softmax(-1), prior_logits.log_softmax(-1)
    return (log_q.exp() * (log_q - log_p)).sum((-2, -1))


def balanced_kl(post_logits: torch.Tensor, prior_logits: torch.Tensor,
                alpha: float) -> torch.Tensor:
    """KL balancing of the dynamics loss β KL[q ‖ p] (Voskuil (2022), eq. (3); DreamerV2 §2):

        α KL(sg(q) ‖ p) + (1 − α) KL(q ‖ sg(p)),   per batch element ``[...]``.

    The value is KL(q ‖ p); the gradient trains the prior towards the posterior with weight α
    (0.8 in DreamerV2) and regularises the posterior towards the prior with 1 − α, so the prior
    learns faster than the posterior collapses onto it.
    """
    to_prior = categorical_kl(post_logits.detach(), prior_logits)
    to_post = categorical_kl(post_logits, prior_logits.detach())
    return alpha * to_prior + (1.0 - alpha) * to_post


def kl_balance(post_logits: torch.Tensor, prior_logits: torch.Tensor, alpha: float = 0.8,
               free: float = 0.0) -> torch.Tensor:
    """The scalar dynamics loss: max(mean balanced KL, ``free``) (DreamerV2 averages before the
    free-nats clamp; both of its halves have the same value, so one clamp serves both)."""
    return kl_free_nats(balanced_kl(post_logits, prior_logits, alpha), free)


def cumulative_discount(discount: torch.Tensor) -> torch.Tensor:
    """Weights of imagined steps ``[T, ...]``: w_0 = 1, w_t = Π_{k<t} γ̂_k (DreamerV2's
    ``seq['weight']``): a state counts as much as the chance that the trajectory reached it."""
    ones = torch.ones_like(discount[:1])
    return torch.cumprod(torch.cat([ones, discount[:-1]], 0), 0)


def reinforce_objective(log_prob: torch.Tensor, returns: torch.Tensor,
                        baseline: torch.Tensor) -> torch.Tensor:
    """ln π(a_t | ẑ_t) · sg(V^λ − v(ẑ_t)) of Voskuil (2022), eq. (6), to be maximised (Williams,
    1992); the advantage is a constant, only the log-likelihood carries gradient."""
    return log_prob * (returns - baseline).detach()
