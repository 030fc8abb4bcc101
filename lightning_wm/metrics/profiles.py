"""Performance profiles and per-step aggregates over (runs x tasks) score matrices.

Definitions follow rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS 2021): the performance profile (run-score distribution) at a
threshold tau is the fraction of runs whose score exceeds tau, averaged over tasks. Every task
has the same runs here, so that equals the fraction of all (run, task) entries above tau.
Intervals use the same stratified bootstrap as :mod:`lightning_wm.metrics.aggregate`: runs are
resampled with replacement separately within each task.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from lightning_wm.metrics.aggregate import (
    Interval,
    Statistic,
    _as_scores,
    _check_bootstrap_args,
    _chunks,
    _resample,
    stratified_bootstrap_ci,
)

__all__ = ["performance_profile", "performance_profile_ci", "pointwise_ci"]


def _as_taus(taus: ArrayLike) -> np.ndarray:
    t = np.asarray(taus, dtype=float)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError(f"taus must be a non-empty 1-D array of finite thresholds, got {t!r}")
    return t


def _profile_batched(batch: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """(reps x runs x tasks) -> (reps x taus): fraction of entries strictly above each tau."""
    flat = batch.reshape(len(batch), -1)
    return (flat[:, :, None] > taus[None, None, :]).mean(axis=1)


def performance_profile(scores: ArrayLike, taus: ArrayLike) -> np.ndarray:
    """Fraction of (run, task) scores strictly above each threshold in ``taus``."""
    s = _as_scores(scores)
    return _profile_batched(s[None], _as_taus(taus))[0]


def performance_profile_ci(
    scores: ArrayLike,
    taus: ArrayLike,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, low, high) of the performance profile at each tau, percentile CIs of a stratified
    bootstrap. With a single run every replicate equals the data: low = high = point."""
    s, t = _as_scores(scores), _as_taus(taus)
    _check_bootstrap_args(reps, confidence)
    point = _profile_batched(s[None], t)[0]
    if s.shape[0] == 1:
        return point, point.copy(), point.copy()
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [_profile_batched(_resample(s, n, rng), t) for n in _chunks(int(reps), s.size * t.size)]
    )
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0)
    return point, low, high


def pointwise_ci(
    curves: ArrayLike,
    statistic: Statistic,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Interval]:
    """One stratified-bootstrap interval of ``statistic`` per point of (runs x tasks x points)
    ``curves``: the score matrix at each evaluation step, as rliable's sample-efficiency curves
    draw. Each point reuses ``seed``, so the same data give the same band on every call."""
    c = np.asarray(curves, dtype=float)
    if c.ndim != 3 or 0 in c.shape:
        raise ValueError(f"curves must be a non-empty (runs x tasks x points) array, got {c.shape}")
    return [stratified_bootstrap_ci(c[:, :, k], statistic, reps, confidence, seed)
            for k in range(c.shape[2])]
