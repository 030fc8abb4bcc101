"""Per-run learning-curve metrics.

A curve is a pair of 1-D arrays: ``steps`` (strictly ascending environment
steps at the evaluation points) and ``returns`` (mean evaluation return at
each of those steps). Everything here is pure numpy; nothing reads files.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "area_under_curve",
    "final_performance",
    "early_performance",
    "jumpstart",
    "time_to_threshold",
    "HOLD_WINDOW",
    "THRESHOLD_DEFINITION",
    "threshold_reduction",
    "transfer_ratio",
    "shift_curve",
    "resample",
    "mean_and_stderr",
    "normalise",
]


def _as_curve(steps: ArrayLike, returns: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a curve and return it as (float steps, float returns)."""
    s = np.asarray(steps, dtype=float)
    r = np.asarray(returns, dtype=float)
    if s.ndim != 1 or r.ndim != 1:
        raise ValueError(
            f"steps and returns must be 1-D, got shapes {s.shape} and {r.shape}"
        )
    if s.size == 0:
        raise ValueError("curve is empty: steps and returns need at least one point")
    if s.shape != r.shape:
        raise ValueError(
            f"steps and returns must have the same length, got {s.size} and {r.size}"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("steps must be finite")
    if s.size > 1 and not np.all(np.diff(s) > 0):
        raise ValueError("steps must be strictly ascending")
    return s, r


def _check_fraction(fraction: float) -> float:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    return float(fraction)


def area_under_curve(steps: ArrayLike, returns: ArrayLike) -> float:
    """Mean return over the run: trapezoid integral divided by the step span.

    A single-point curve has no span, so its one value is returned.
    """
    s, r = _as_curve(steps, returns)
    if s.size == 1:
        return float(r[0])
    # Written out rather than np.trapezoid/np.trapz, whose name differs by version.
    integral = np.sum(np.diff(s) * (r[1:] + r[:-1]) / 2.0)
    return float(integral / (s[-1] - s[0]))


def final_performance(
    steps: ArrayLike, returns: ArrayLike, fraction: float = 0.1
) -> float:
    """Mean return over the last ``fraction`` of the step span (at least the last point)."""
    s, r = _as_curve(steps, returns)
    fraction = _check_fraction(fraction)
    cutoff = s[-1] - fraction * (s[-1] - s[0])
    mask = s >= cutoff
    mask[-1] = True  # guard against rounding excluding the final point
    return float(np.mean(r[mask]))


def early_performance(
    steps: ArrayLike, returns: ArrayLike, fraction: float = 0.1
) -> float:
    """Mean return over the first ``fraction`` of the step span (at least the first point)."""
    s, r = _as_curve(steps, returns)
    fraction = _check_fraction(fraction)
    cutoff = s[0] + fraction * (s[-1] - s[0])
    mask = s <= cutoff
    mask[0] = True
    return float(np.mean(r[mask]))


def jumpstart(
    target_steps: ArrayLike,
    target_returns: ArrayLike,
    scratch_steps: ArrayLike,
    scratch_returns: ArrayLike,
    fraction: float = 0.1,
) -> float:
    """Early performance of the transferred (target) run minus that of the scratch run."""
    target = early_performance(target_steps, target_returns, fraction)
    scratch = early_performance(scratch_steps, scratch_returns, fraction)
    return target - scratch


#: Evaluations averaged by the held criterion of ``time_to_threshold``. One evaluation lets a
#: policy that flips between two behaviours cross by luck; three in a row must agree on
#: average, and three evaluation intervals still fit the shortest gated profiles.
HOLD_WINDOW = 3

#: The criterion as the report's definitions should state it.
THRESHOLD_DEFINITION = (
    f"Decisions to threshold: the first point at which the mean return of {HOLD_WINDOW} "
    "consecutive evaluations, all taken after step 0, is at or above the threshold; the step "
    "is that of the window's last evaluation, so the claim is that the level is held from "
    "there. The evaluation at step 0 (before any training) never counts, and a run with fewer "
    f"than {HOLD_WINDOW} evaluations after step 0 never reaches the threshold."
)


def time_to_threshold(steps: ArrayLike, returns: ArrayLike, threshold: float,
                      window: int = HOLD_WINDOW, after: float = 0.0) -> float:
    """First step at which the threshold is held; ``math.inf`` if it never is.

    Only evaluations at steps strictly greater than ``after`` count: the one at step 0 comes
    before any training, so an untrained policy that happens to score well there has learned
    nothing. Among those, the first run of ``window`` consecutive evaluations whose mean return
    is >= ``threshold`` gives the answer: the step of its last evaluation. Fewer than
    ``window`` counted evaluations can show no held level, so the answer is then ``math.inf``.
    ``window=1, after=-inf`` is the plain first crossing.
    """
    s, r = _as_curve(steps, returns)
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive whole number, got {window}")
    window = int(window)
    keep = s > after
    s, r = s[keep], r[keep]
    if s.size < window:
        return math.inf
    # each window averaged on its own, not from a running sum, whose rounding could move a
    # mean that equals the threshold just below it
    means = np.lib.stride_tricks.sliding_window_view(r, window).mean(axis=1)
    hits = np.flatnonzero(means >= threshold)
    if hits.size == 0:
        return math.inf
    return float(s[hits[0] + window - 1])


def threshold_reduction(t_target: float, t_scratch: float) -> float:
    """Percent fewer steps the target needed to reach a threshold: 100 (t_s - t_t) / t_s.

    ``nan`` when either time is infinite/undefined or ``t_scratch`` is 0, since
    a percentage of an unreached or instant threshold has no meaning.
    """
    t_t, t_s = float(t_target), float(t_scratch)
    if not (math.isfinite(t_t) and math.isfinite(t_s)) or t_s == 0.0:
        return math.nan
    return 100.0 * (t_s - t_t) / t_s


def transfer_ratio(area_target: float, area_scratch: float) -> float:
    """Ratio of areas under the curve, target / scratch (Taylor and Stone, "Transfer Learning
    for Reinforcement Learning Domains: A Survey", JMLR, 2009).

    Defined only where it reads as a gain: scratch's area > 0 and the target's >= 0, so pass
    areas of scores whose zero means something (e.g. normalised so random play scores 0).
    Otherwise ``nan``: of two negative areas the worse method has the larger ratio
    (-600 / -500 = 1.2), and a mixed sign gives a negative ratio that reads as nothing.
    """
    a_t, a_s = float(area_target), float(area_scratch)
    if not (a_s > 0.0 and a_t >= 0.0):
        return math.nan
    return a_t / a_s


def shift_curve(
    steps: ArrayLike, returns: ArrayLike, offset: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shift a curve right by ``offset`` steps for a cost-charged comparison.

    The steps spent on the source task are charged before the target's first
    evaluation, so a transferred run is compared against scratch fairly.
    """
    s, r = _as_curve(steps, returns)
    if not math.isfinite(offset) or offset < 0:
        raise ValueError(f"offset must be a finite non-negative step count, got {offset}")
    return s + offset, r.copy()


def resample(steps: ArrayLike, returns: ArrayLike, grid: ArrayLike) -> np.ndarray:
    """Piecewise-linear interpolation of a curve onto ``grid``; ends held constant."""
    s, r = _as_curve(steps, returns)
    g = np.asarray(grid, dtype=float)
    if g.ndim != 1:
        raise ValueError(f"grid must be 1-D, got shape {g.shape}")
    # np.interp clamps to the first/last value outside the data range.
    return np.interp(g, s, r)


def mean_and_stderr(curves_on_grid: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise mean and standard error of curves shaped (runs x points).

    stderr = std(ddof=1) / sqrt(runs); zero for a single run (no spread to estimate).
    """
    c = np.asarray(curves_on_grid, dtype=float)
    if c.ndim != 2:
        raise ValueError(f"curves_on_grid must be 2-D (runs x points), got shape {c.shape}")
    if c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"curves_on_grid must be non-empty, got shape {c.shape}")
    n = c.shape[0]
    mean = c.mean(axis=0)
    if n == 1:
        return mean, np.zeros_like(mean)
    return mean, c.std(axis=0, ddof=1) / np.sqrt(n)


def normalise(scores: ArrayLike, low: ArrayLike, high: ArrayLike) -> np.ndarray:
    """(x - low) / (high - low) elementwise; ``low``/``high`` broadcast over the last (task) axis."""
    x = np.asarray(scores, dtype=float)
    lo = np.asarray(low, dtype=float)
    hi = np.asarray(high, dtype=float)
    span = hi - lo
    if np.any(span == 0):
        bad = np.flatnonzero(np.atleast_1d(span) == 0).tolist()
        raise ValueError(f"normalise: high equals low (zero range) at task index {bad}")
    try:
        return (x - lo) / span
    except ValueError as exc:
        raise ValueError(
            f"low/high of shape {lo.shape} do not broadcast over scores {x.shape}"
        ) from exc
