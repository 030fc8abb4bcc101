"""The numbers behind a learning-curve band: seeds put on one step grid, their mean, and a
bootstrap confidence interval of that mean.

Grid: each seed is read at every evaluation step any seed has inside the range all seeds cover,
linearly interpolated between a seed's own points. Seeds of one method are evaluated at the same
steps (every ``eval_every`` env steps, at 0 and at the budget), so in the usual case this is
exactly the evaluation points and nothing is interpolated; a seed whose grid differs (another
budget, another vector width) is interpolated, never extrapolated past its last point, which would
draw a flat tail it never measured. Repeated steps (a resumed run evaluates its resume step twice)
are removed before, by :func:`benchmarks.results.curve_of`.

Band: the percentile interval of the mean over seeds under resampling the seeds with replacement
(whole curves, so a seed's points stay together). The draws come from a generator the caller
seeds, so a figure is the same on every run. One seed, or seeds that agree, give a band of zero
width: the data show no spread, not a certainty.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

Curve = tuple[np.ndarray, np.ndarray]   # (steps strictly ascending, returns)


def common_grid(curves: Sequence[Curve]) -> np.ndarray:
    """Every step of any curve inside ``[max first step, min last step]``, ascending."""
    if not curves:
        raise ValueError("need at least one curve")
    lo = max(float(steps[0]) for steps, _ in curves)
    hi = min(float(steps[-1]) for steps, _ in curves)
    if hi <= lo:  # one shared step at most (or none): drawn as a single point
        return np.array([hi])
    # lo and hi are steps of some curve themselves, so the grid spans the whole shared range
    points = np.unique(np.concatenate([np.asarray(s, dtype=float) for s, _ in curves]))
    return points[(points >= lo) & (points <= hi)]


def on_grid(curves: Sequence[Curve], grid: np.ndarray) -> np.ndarray:
    """(seeds x points): each curve linearly interpolated at ``grid``."""
    return np.stack([np.interp(grid, np.asarray(s, float), np.asarray(y, float))
                     for s, y in curves])


def mean_ci_band(curves: np.ndarray, reps: int, rng: np.random.Generator,
                 confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) per point of ``curves`` (seeds x points).

    ``low``/``high`` bound the central ``confidence`` share of ``reps`` bootstrap means, each the
    mean of ``seeds`` rows drawn with replacement.
    """
    c = np.asarray(curves, dtype=float)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"curves must be a non-empty (seeds x points) array, got {c.shape}")
    if reps < 1 or not 0.0 < confidence < 1.0:
        raise ValueError("need reps >= 1 and 0 < confidence < 1")
    rows = rng.integers(0, c.shape[0], size=(reps, c.shape[0]))
    means = c[rows].mean(axis=1)  # (reps x points)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0)
    mean = c.mean(axis=0)
    # Rounding in the resampled means can put a zero-width band a hair off the mean.
    return mean, np.minimum(low, mean), np.maximum(high, mean)
