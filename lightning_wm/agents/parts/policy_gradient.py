"""Pure maths of clipped-PPO and of the REPAINT transfer terms (tests check them by hand).

- :func:`gae`: generalised advantage estimation (Schulman et al., "High-Dimensional Continuous
  Control Using Generalized Advantage Estimation", 2016) over the flat, ordered transitions of
  one collection phase (the layout of :class:`~lightning_wm.pipeline.sources.SegmentSource`).
- :func:`clipped_surrogate`: PPO's clipped objective (Schulman et al., "Proximal Policy
  Optimization Algorithms", 2017), as a loss to minimise. REPAINT's instance-transfer term is the
  same expression with the teacher as the behaviour policy (Tao et al., "REPAINT: Knowledge
  Transfer in Deep Reinforcement Learning", ICML 2021, eq. 4.2).
- :func:`policy_cross_entropy`: H(π_teacher, π_student), kickstarting's auxiliary loss
  (Schmitt et al., "Kickstarting Deep Reinforcement Learning", 2018; REPAINT eq. 4.1), in
  closed form for diagonal Gaussians and for categoricals over one-hot actions.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, Independent, Normal, OneHotCategorical


def gae(reward: torch.Tensor, value: torch.Tensor, next_value: torch.Tensor,
        terminal: torch.Tensor, last: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets of ``N`` ordered transitions ``(s_i, a_i, r_i, s'_i)``.

    δ_i = r_i + γ (1 − terminal_i) V(s'_i) − V(s_i);  A_i = δ_i + γλ (1 − terminal_i)(1 − last_i) A_{i+1}.
    ``last_i`` marks a transition whose successor in the list is not its successor in time (an
    episode ended, or the phase cut it): the sum restarts there, and a cut that is not terminal
    still bootstraps from V(s'_i) through δ_i. Returns (A, A + V(s)).
    """
    keep = 1.0 - terminal.float()
    delta = reward + gamma * keep * next_value - value
    carry = gamma * lam * keep * (1.0 - last.float())
    advantage = torch.zeros_like(delta)
    running = torch.zeros((), dtype=delta.dtype, device=delta.device)
    for i in range(len(delta) - 1, -1, -1):
        running = delta[i] + carry[i] * running
        advantage[i] = running
    return advantage, advantage + value


def clipped_surrogate(log_prob: torch.Tensor, behaviour_log_prob: torch.Tensor,
                      advantage: torch.Tensor, clip: float,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """−mean(min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)), ρ = π(a|s) / μ(a|s), μ the behaviour policy.

    ``mask`` (bool) averages over the kept samples only (0 when none is kept), which is how
    instance transfer drops the teacher's transitions whose advantage is below ζ.
    """
    ratio = torch.exp(log_prob - behaviour_log_prob)
    objective = torch.minimum(ratio * advantage, ratio.clamp(1.0 - clip, 1.0 + clip) * advantage)
    if mask is None:
        return -objective.mean()
    kept = mask.float()
    return -(objective * kept).sum() / kept.sum().clamp(min=1.0)


def policy_cross_entropy(teacher: Distribution, student: Distribution) -> torch.Tensor:
    """H(π_T, π_S) = −E_{a∼π_T}[log π_S(a)] per sample, in closed form.

    Diagonal Gaussians: Σ_d [log σ_S + ½ log 2π + (σ_T² + (μ_T − μ_S)²) / (2 σ_S²)];
    categoricals: −Σ_k p_T(k) log p_S(k).
    """
    if isinstance(teacher, Independent) and isinstance(student, Independent):
        t, s = teacher.base_dist, student.base_dist
        if isinstance(t, Normal) and isinstance(s, Normal):
            per_dim = (torch.log(s.scale) + 0.5 * math.log(2 * math.pi)
                       + (t.scale ** 2 + (t.loc - s.loc) ** 2) / (2 * s.scale ** 2))
            return per_dim.sum(-1)
    if isinstance(teacher, OneHotCategorical) and isinstance(student, OneHotCategorical):
        return -(teacher.probs * torch.log_softmax(student.logits, -1)).sum(-1)
    raise TypeError(f"no closed-form cross-entropy between {type(teacher).__name__} and "
                    f"{type(student).__name__}")
