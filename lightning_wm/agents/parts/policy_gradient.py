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
  closed form for diagonal Gaussians (tanh-squashed ones too, up to a constant) and for
  categoricals over one-hot actions.
- :func:`one_step_advantage`: r + γ V(s') − V(s) over replay windows, instance transfer's score
  for a replay-based (Dreamer) student, whose critic is trained on λ-returns in imagination.
- :func:`sample`: a draw from a policy with a generator of its own (a teacher's stream).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import (Distribution, Independent, Normal, OneHotCategorical, TanhTransform,
                                 TransformedDistribution)


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
    # where, not a product: a dropped sample may carry an infinite advantage (−inf·0 is NaN)
    return -torch.where(mask, objective, 0.0).sum() / kept.sum().clamp(min=1.0)


def _unsquashed(dist: Distribution) -> Distribution:
    """The Gaussian under a tanh-squashed ``Independent`` Gaussian (Dreamer's actor); any other
    distribution unchanged."""
    if isinstance(dist, Independent) and isinstance(dist.base_dist, TransformedDistribution):
        inner = dist.base_dist
        if isinstance(inner.base_dist, Normal) and \
                all(isinstance(t, TanhTransform) for t in inner.transforms):
            return Independent(inner.base_dist, dist.reinterpreted_batch_ndims)
    return dist


def policy_cross_entropy(teacher: Distribution, student: Distribution) -> torch.Tensor:
    """H(π_T, π_S) = −E_{a∼π_T}[log π_S(a)] per sample, in closed form.

    Diagonal Gaussians: Σ_d [log σ_S + ½ log 2π + (σ_T² + (μ_T − μ_S)²) / (2 σ_S²)];
    categoricals: −Σ_k p_T(k) log p_S(k). Two tanh-squashed Gaussians (a = tanh u) have no closed
    form, but both densities carry the same Jacobian, so H(π_T, π_S) = H(N_T, N_S) +
    E_{u∼N_T}[log(1 − tanh² u)]: the pre-tanh Gaussians' cross-entropy is returned, which differs
    by a term that does not depend on the student (the gradient is exact).
    """
    teacher, student = _unsquashed(teacher), _unsquashed(student)
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


def one_step_advantage(reward: torch.Tensor, value: torch.Tensor, terminal: torch.Tensor,
                       first: torch.Tensor, gamma: float) -> torch.Tensor:
    """A_t = r_{t+1} + γ (1 − terminal_{t+1}) V(s_{t+1}) − V(s_t) over windows ``[B, T]``.

    ``reward``, ``terminal`` and ``first`` (is_first) are the window's own ``[B, T]`` fields (a
    step's reward and flags arrive with its observation); ``value`` is V at every step. Returns
    ``[B, T − 1]``, −inf where the successor starts another episode, so no ζ keeps it.
    """
    keep = 1.0 - terminal[:, 1:].float()
    advantage = reward[:, 1:].float() + gamma * keep * value[:, 1:] - value[:, :-1]
    return advantage.masked_fill(first[:, 1:].bool(), float("-inf"))


def sample(dist: Distribution, generator: torch.Generator) -> torch.Tensor:
    """A draw from ``dist`` with ``generator`` (a teacher's own stream: its rollouts never move
    the draws of the student's exploration)."""
    if isinstance(dist, OneHotCategorical):
        index = torch.multinomial(dist.probs, 1, generator=generator).squeeze(-1)
        return nn.functional.one_hot(index, dist.probs.shape[-1]).float()
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal):
        base = dist.base_dist
        noise = torch.randn(base.loc.shape, generator=generator, device=base.loc.device)
        return base.loc + base.scale * noise
    raise TypeError(f"cannot sample a teacher's {type(dist).__name__}")
