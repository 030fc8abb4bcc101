"""Pure maths of an EfficientZero-style agent's targets and losses (tests check them by hand).

EfficientZero (Ye, Liu, Kurutach, Abbeel and Gao, "Mastering Atari Games with Limited Data",
NeurIPS 2021) trains MuZero's three heads (Schrittwieser et al., "Mastering Atari, Go, Chess and
Shogi by Planning with a Learned Model", Nature 2020) over a K-step unroll, and adds a value-prefix
head, an off-policy correction of the value targets and a SimSiam consistency loss. Everything
here is batched torch with no loop over samples and no host synchronisation, so an agent can
compile it.

- :func:`value_transform` / :func:`inverse_value_transform`: h(x) = sign(x)(√(|x|+1) − 1) + εx
  (Pohlen et al., "Observe and Look Further: Achieving Consistent Performance on Atari", 2018).
- :func:`two_hot`, :func:`scalar_to_categorical`, :func:`categorical_to_scalar`: scalars as
  distributions over the integer atoms −S..S of h(x) (MuZero appendix F).
- :func:`value_prefix_targets`: EfficientZero's value prefix, reset at the LSTM horizon.
- :func:`off_policy_horizon`, :func:`bootstrap_offsets`, :func:`n_step_value_targets`: n-step
  value targets with a per-sample horizon that shrinks with the age of the data.
- :func:`cross_entropy`, :func:`scalar_cross_entropy`, :func:`visit_policy`,
  :func:`consistency_loss`, :func:`scale_gradient`: the loss terms, per sample (or per step), so
  the agent weights and masks them; :data:`EFFICIENTZERO_LOSS_WEIGHTS` their default weights.
- :func:`learning_rate_factor`: the warm-up and step decay of the learning rate.

Index convention for one sampled position t and an unroll of K steps: ``reward[:, i]`` is
r_{t+i}, the reward of the transition (s_{t+i}, a_{t+i}) → s_{t+i+1}; ``terminal[:, i]`` says
s_{t+i+1} is a true terminal state; ``valid[:, i]`` says that transition is stored (False for
padding past the end of an episode or of the data collected so far). Unroll position k = 0..K is
the state s_{t+k}; unroll step k = 1..K is the k-th application of the dynamics.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: ε of h; MuZero and EfficientZero's reference code both use 0.001.
TRANSFORM_EPS = 1e-3
#: S of the value and value-prefix supports at paper size: atoms −300..300 (601 classes) in
#: EfficientZero's reference configuration for Atari.
SUPPORT_SIZE = 300
#: The fraction of the budget after which the off-policy horizon drops by one step (EfficientZero's
#: reference configuration: 0.3, with n = 5 and a 100k budget).
OFF_POLICY_RATIO = 0.3

#: Loss weights of EfficientZero on Atari 100k, as set in the configuration for Atari released with
#: Ye et al. 2021: value 0.25, value prefix 1, policy 1, self-supervised consistency 2.
EFFICIENTZERO_LOSS_WEIGHTS: dict[str, float] = {
    "value": 0.25, "value_prefix": 1.0, "policy": 1.0, "consistency": 2.0}


def value_transform(x: torch.Tensor, eps: float = TRANSFORM_EPS) -> torch.Tensor:
    """h(x) = sign(x)(√(|x| + 1) − 1) + εx, elementwise (Pohlen et al. 2018, used by MuZero).

    It squashes large returns so one categorical support covers games whose scores differ by
    orders of magnitude; the εx term keeps it strictly monotone, hence invertible. Computed as
    x / (√(|x| + 1) + 1) + εx, the same function without the cancellation of √(|x| + 1) − 1,
    which costs float32 three significant digits at |x| ≈ 1e-4.
    """
    return x / (torch.sqrt(x.abs() + 1.0) + 1.0) + eps * x


def inverse_value_transform(y: torch.Tensor, eps: float = TRANSFORM_EPS) -> torch.Tensor:
    """h⁻¹(y) in closed form (Pohlen et al. 2018, proposition A.2), elementwise.

    For y ≥ 0, u = √(x + 1) solves εu² + u − (1 + ε + y) = 0, and x = u² − 1 = (u − 1)(u + 1).
    The textbook root ((√(1 + 4ε(1 + ε + y)) − 1) / 2ε)² − 1 cancels catastrophically in float32
    near y = 0 (the error is ~1e-4 there), so both differences are rationalised, using
    1 + 4ε(1 + ε) = (1 + 2ε)²:  with s = √((1 + 2ε)² + 4ε|y|),
    u − 1 = 4|y|(1 + ε + |y|) / ((1 + 2ε + 2|y| + s)(s + 1)) and u + 1 = (u − 1) + 2.
    """
    a = y.abs()
    c = 1.0 + 2.0 * eps
    s = torch.sqrt(c * c + 4.0 * eps * a)
    u_minus_1 = 4.0 * a * (1.0 + eps + a) / ((c + 2.0 * a + s) * (s + 1.0))
    return torch.sign(y) * u_minus_1 * (u_minus_1 + 2.0)


def two_hot(y: torch.Tensor, support_size: int) -> torch.Tensor:
    """``y`` [...] as a distribution [..., 2S + 1] over the integer atoms −S..S.

    The mass goes to the two atoms around y, in proportion to closeness, so the expected atom is
    y exactly; y outside [−S, S] is clamped first (all mass on the end atom).
    """
    y = y.clamp(-support_size, support_size)
    low = torch.floor(y)
    p_high = y - low
    index_low = (low + support_size).long()
    # at y = S the upper atom does not exist; its weight is 0 there, so clamping its index is safe
    index_high = (index_low + 1).clamp(max=2 * support_size)
    out = torch.zeros(*y.shape, 2 * support_size + 1, dtype=y.dtype, device=y.device)
    out.scatter_add_(-1, index_low.unsqueeze(-1), (1.0 - p_high).unsqueeze(-1))
    return out.scatter_add_(-1, index_high.unsqueeze(-1), p_high.unsqueeze(-1))


def scalar_to_categorical(x: torch.Tensor, support_size: int,
                          eps: float = TRANSFORM_EPS) -> torch.Tensor:
    """Target distribution [..., 2S + 1] of scalars ``x`` [...]: the two-hot of h(x)."""
    return two_hot(value_transform(x, eps), support_size)


def categorical_to_scalar(logits: torch.Tensor, support_size: int,
                          eps: float = TRANSFORM_EPS) -> torch.Tensor:
    """Scalar [...] of a head's ``logits`` [..., 2S + 1]: h⁻¹ of the expected atom under softmax."""
    atoms = torch.arange(-support_size, support_size + 1, dtype=logits.dtype,
                         device=logits.device)
    return inverse_value_transform((torch.softmax(logits, -1) * atoms).sum(-1), eps)


def _live(terminal: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(live [B, W], before [B, W + 1]) of a window of transitions.

    ``before[:, j]``: transitions 0..j−1 are all stored and none is terminal, i.e. s_{t+j} is a
    reached, non-terminal state; ``live[:, i]``: transition i is stored and s_{t+i} is such a
    state, i.e. its reward belongs to the episode. Both are prefixes: data after a gap or after a
    terminal never counts, whatever its flags.
    """
    going_on = (valid & ~terminal).to(torch.float32)
    before = torch.cat([torch.ones_like(going_on[:, :1]), torch.cumprod(going_on, 1)], 1)
    live = before[:, :-1] * valid.to(torch.float32)
    return live.bool(), before.bool()


def value_prefix_targets(reward: torch.Tensor, terminal: torch.Tensor, valid: torch.Tensor,
                         horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Value-prefix targets [B, K] and their mask [B, K] from the K rewards r_t..r_{t+K−1}.

    EfficientZero predicts, at unroll step k, the sum of rewards since the last reset of its
    reward LSTM rather than the single reward r_{t+k−1}, so the model need not pin down the exact
    step a reward arrives. The LSTM's hidden state is reset to zero after every ``horizon``
    unroll steps (after steps H, 2H, ...), so the target at step k is r_{t+s} + ... + r_{t+k−1},
    s = H⌊(k − 1)/H⌋: the agent must reset its LSTM on exactly this schedule, and MCTS recovers a
    per-step reward as the difference of successive prefixes except right after a reset.
    ``horizon`` = 1 makes the targets the plain rewards. Rewards are summed undiscounted, as in
    the authors' code (the horizon is short and γ close to 1).

    Past the episode's end (after a terminal transition, or past stored data) no reward is added
    (the absorbing state earns nothing: the prefix keeps its value until the next reset, then
    is 0) and the mask is False.
    """
    if horizon < 1:
        raise ValueError(f"the value-prefix horizon must be at least 1, got {horizon}")
    live, _ = _live(terminal, valid)
    kept = torch.where(live, reward, torch.zeros_like(reward))
    running = torch.cat([torch.zeros_like(kept[:, :1]), torch.cumsum(kept, 1)], 1)
    step = torch.arange(reward.shape[1], device=reward.device)
    reset = (step // horizon) * horizon  # index of the first reward after the last reset
    return running[:, 1:] - running[:, reset], live


def off_policy_horizon(age: torch.Tensor, n: int, budget: float,
                       ratio: float = OFF_POLICY_RATIO) -> torch.Tensor:
    """EfficientZero's off-policy correction: the bootstrap horizon per sample, int64 [B].

    l = clip(n − ⌊age / (ratio · budget)⌋, 1, n): data collected ``age`` env steps ago by an
    older policy bootstraps sooner, because its rewards say less about the current policy's
    return the older they are. ``budget`` is the run's total env-step budget. Source: Ye et al.
    2021, their model-based off-policy correction, as implemented in the authors' reanalysis
    code, where age = (transitions stored so far) − (the sample's index in the buffer) and the
    divisor is 0.3 × the training-step budget (100k, equal to the 100k env steps of Atari 100k):
    with n = 5 the horizon is 5 for ages below 30k, 4 below 60k, 3 below 90k, 2 below 120k.
    """
    shrink = torch.floor(age.to(torch.float64) / (ratio * budget)).to(torch.int64)
    return (n - shrink).clamp(1, n)


def _per_sample(horizon: int | torch.Tensor, batch: int,
                device: torch.device | None) -> torch.Tensor:
    """``horizon`` as int64 [B] (an int means the same horizon for every sample)."""
    if isinstance(horizon, int):
        return torch.full((batch,), horizon, dtype=torch.int64, device=device)
    return horizon.to(device=device, dtype=torch.int64).expand(batch)


def bootstrap_offsets(horizon: int | torch.Tensor, num_unroll: int,
                      batch: int = 1) -> torch.Tensor:
    """Offsets k + n_b [B, K + 1] from t of the states whose values :func:`n_step_value_targets`
    bootstraps from, so the agent knows which observations to re-evaluate."""
    device = horizon.device if isinstance(horizon, torch.Tensor) else None
    n = _per_sample(horizon, batch, device)
    return torch.arange(num_unroll + 1, device=n.device) + n[:, None]


def n_step_value_targets(reward: torch.Tensor, terminal: torch.Tensor, valid: torch.Tensor,
                         bootstrap: torch.Tensor, horizon: int | torch.Tensor,
                         gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """n-step value targets [B, K + 1] and their mask [B, K + 1] at every unroll position.

    z_k = Σ_{i<n} γ^i r_{t+k+i} + γ^n v(s_{t+k+n}) (MuZero's value target; with a per-sample n,
    EfficientZero's off-policy-corrected one). ``reward``, ``terminal``, ``valid`` [B, W] describe
    the window of transitions from t (see the module docstring); W ≥ K + max n covers every
    target, a shorter window only masks the positions it cannot cover. ``bootstrap`` [B, K + 1]
    holds v(s_{t+k+n_b}) (offsets from :func:`bootstrap_offsets`), typically the target network's
    or a reanalysis search's value; entries the targets cannot use may hold anything, NaN
    included. ``horizon`` is n, an int or int64 [B].

    After a terminal transition no reward is summed and nothing is bootstrapped: the terminal
    state itself gets target 0 with mask True, states past it target 0 with mask False. Where
    the data ends without a terminal inside the n-step window, the return is unknown (treating
    the cut as terminal would bias it), so the target is 0 with mask False.
    """
    batch, window = reward.shape
    positions = bootstrap.shape[1]
    if window < positions - 1:
        raise ValueError(f"a window of {window} transitions cannot reach the {positions - 1} "
                         "unroll steps")
    n = _per_sample(horizon, batch, reward.device)
    live, before = _live(terminal, valid)
    ended_by = torch.cat([torch.zeros_like(live[:, :1]), torch.cumsum(live & terminal, 1) > 0], 1)
    terminal_state = torch.cat([torch.zeros_like(live[:, :1]), live & terminal], 1)
    reached = (before | terminal_state)[:, :positions]

    end = torch.arange(positions, device=reward.device) + n[:, None]  # bootstrap index, [B, K+1]
    inside = end <= window
    end = end.clamp(max=window)
    can_bootstrap = before.gather(1, end) & inside
    # a terminal anywhere before the window's end completes the return, even past W
    mask = reached & (can_bootstrap | ended_by.gather(1, end))

    # offset[b, k, j] = j − k: reward j counts at position k with weight γ^(j−k) when 0 ≤ j−k < n
    offset = (torch.arange(window, device=reward.device)[None, :]
              - torch.arange(positions, device=reward.device)[:, None])
    in_window = (offset >= 0) & (offset < n[:, None, None]) & live[:, None, :]
    discount = gamma ** offset.clamp(min=0).to(reward.dtype)
    summed = torch.where(in_window, discount * reward[:, None, :], torch.zeros_like(discount))
    tail = torch.where(can_bootstrap, gamma ** n[:, None].to(reward.dtype) * bootstrap,
                       torch.zeros_like(bootstrap))
    target = summed.sum(-1) + tail
    return torch.where(mask, target, torch.zeros_like(target)), mask


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """−Σ_c target_c log softmax(logits)_c over the last dim: one loss per sample (or step).

    The value, value-prefix and policy losses of MuZero and EfficientZero; an all-zero target
    row (a masked position) gives 0.
    """
    return -(target * torch.log_softmax(logits, -1)).sum(-1)


def scalar_cross_entropy(logits: torch.Tensor, target: torch.Tensor, support_size: int,
                         eps: float = TRANSFORM_EPS) -> torch.Tensor:
    """Cross-entropy [...] of a categorical head's ``logits`` [..., 2S + 1] against scalar
    targets [...] (values or value prefixes), through the two-hot of h(target)."""
    return cross_entropy(logits, scalar_to_categorical(target.detach(), support_size, eps))


def visit_policy(visit_counts: torch.Tensor) -> torch.Tensor:
    """The search's visit counts [..., A] normalised to a policy target (zero rows stay zero, so
    a position without a search contributes no policy loss)."""
    counts = visit_counts if visit_counts.is_floating_point() else visit_counts.float()
    total = counts.sum(-1, keepdim=True)
    return counts / torch.where(total > 0, total, torch.ones_like(total))


def consistency_loss(prediction: torch.Tensor, target: torch.Tensor,
                     eps: float = 1e-5) -> torch.Tensor:
    """Negative cosine similarity [...] over the last dim, no gradient into ``target``.

    EfficientZero's temporal consistency: ``prediction`` is the predictor head's output on the
    latent state the dynamics unrolled to, ``target`` the projection of the encoding of the true
    observation at that step; stopping the target's gradient is what keeps SimSiam from
    collapsing without negative pairs (Chen and He, "Exploring Simple Siamese Representation
    Learning", CVPR 2021). 1 for opposite, 0 for orthogonal, −1 for aligned vectors.
    """
    p = F.normalize(prediction, dim=-1, eps=eps)
    z = F.normalize(target.detach(), dim=-1, eps=eps)
    return -(p * z).sum(-1)


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward, gradient times ``scale`` backward.

    MuZero (appendix G) halves the gradient that flows back into the dynamics function at each
    unroll step, which keeps the gradient the dynamics receives from growing with the unroll
    length; EfficientZero does the same on the hidden state after every step.
    Written as x̄ + (x − x̄)·scale with x̄ = stop-gradient(x), whose forward value is exactly x.
    """
    frozen = x.detach()
    return frozen + (x - frozen) * scale


def learning_rate_factor(update: int, warmup: int, decay_rate: float, decay_steps: int) -> float:
    """EfficientZero's learning-rate schedule as a factor of the initial rate at update ``update``
    (counted from 0): linear warm-up ``update / warmup`` over the first ``warmup`` updates (the
    very first update at rate 0, as its released code has it), then ``decay_rate`` per completed
    ``decay_steps`` updates after the warm-up. ``warmup=0, decay_rate=1``: constant 1."""
    if update < warmup:
        return update / warmup
    return decay_rate ** ((update - warmup) // decay_steps)


def visit_temperature(update: int, base: float, halvings: Sequence[int]) -> float:
    """The acting temperature at update ``update``: ``base`` halved at each update count of
    ``halvings`` already reached. EfficientZero acts at T = 1, 0.5 and 0.25 over the first half,
    the third quarter and the last quarter of its training steps: ``halvings`` = (½, ¾) × steps.
    A search of few simulations spreads its visits, so at T = 1 acting is nearly random; the
    schedule acts more on what the search found as training goes on."""
    return float(base) * 0.5 ** sum(update >= int(h) for h in halvings)
