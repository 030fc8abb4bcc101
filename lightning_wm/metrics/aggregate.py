"""Aggregate metrics and bootstrap intervals over a (runs x tasks) score matrix.

Rows are independent runs (seeds), columns are tasks. The aggregates follow
rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", NeurIPS 2021): the mean and the IQM pool every
(run, task) entry, the median is taken over the per-task mean scores.
Intervals use a stratified bootstrap: runs are resampled with replacement
separately within each task, so every replicate keeps the per-task run count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import trim_mean

__all__ = [
    "Interval",
    "reference_normalised",
    "mean",
    "median",
    "iqm",
    "optimality_gap",
    "stratified_bootstrap_ci",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "difference_ci",
    "paired_difference_ci",
    "threshold_reduction_ci",
    "aggregate_table",
]

Statistic = Callable[[np.ndarray], float]

# Upper bound on array elements materialised per bootstrap chunk (~32 MB of float64).
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval [low, high]."""

    point: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"point": self.point, "low": self.low, "high": self.high}

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _as_scores(scores: ArrayLike, name: str = "scores") -> np.ndarray:
    """Validate a (runs x tasks) matrix of finite scores."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"{name} must be 2-D (runs x tasks), got shape {s.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"{name} must have at least one run and one task, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"{name} of shape {s.shape} contains NaN; fill or drop those runs")
    return s


def _check_bootstrap_args(reps: int, confidence: float) -> None:
    if int(reps) < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def reference_normalised(scores: ArrayLike, random: ArrayLike, reference: ArrayLike) -> np.ndarray:
    """Per task ``(x - random) / (reference - random)`` over a (runs x tasks) matrix.

    ``random`` and ``reference`` hold one fixed value per task (a random policy's score and a
    reference score, as for Atari's human-normalised score), so a score depends only on its own
    run: adding or removing another method never moves it. 0 is random play, 1 the reference.
    """
    s = _as_scores(scores)
    lo, hi = np.asarray(random, dtype=float), np.asarray(reference, dtype=float)
    for name, v in (("random", lo), ("reference", hi)):
        if v.shape != (s.shape[1],):
            raise ValueError(f"{name} needs one value per task ({s.shape[1]}), got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} scores must be finite, got {v.tolist()}")
    same = np.flatnonzero(hi == lo).tolist()
    if same:
        raise ValueError(f"reference equals random (zero range) at task index {same}")
    return (s - lo) / (hi - lo)


def mean(scores: ArrayLike) -> float:
    """Mean over all runs and tasks; every task has the same runs, so this is also rliable's
    mean of the per-task means."""
    return float(np.mean(_as_scores(scores)))


def median(scores: ArrayLike) -> float:
    """Median over tasks of the per-task mean scores (rliable's ``aggregate_median``).

    Averaging runs first keeps one task's spread over seeds from moving the median the way a
    pooled median over all entries would.
    """
    return float(np.median(np.mean(_as_scores(scores), axis=0)))


def iqm(scores: ArrayLike) -> float:
    """Interquartile mean: mean of the middle 50% of all entries."""
    return float(trim_mean(_as_scores(scores).ravel(), 0.25))


def optimality_gap(scores: ArrayLike, gamma: float = 1.0) -> float:
    """Mean shortfall below ``gamma``; scores above ``gamma`` count as reaching it."""
    s = _as_scores(scores)
    return float(gamma - np.mean(np.minimum(s, gamma)))


# Vectorised forms over a batch (reps x runs x tasks) -> (reps,), used in the
# bootstrap so the common statistics avoid a Python loop over replicates.
# optimality_gap passed bare means its default gamma=1; a functools.partial with
# another gamma is a different object and falls back to the generic loop.
_BATCHED: dict[Callable, Callable[[np.ndarray], np.ndarray]] = {
    mean: lambda b: b.mean(axis=(1, 2)),
    median: lambda b: np.median(b.mean(axis=1), axis=1),
    iqm: lambda b: trim_mean(b.reshape(len(b), -1), 0.25, axis=1),
    optimality_gap: lambda b: 1.0 - np.minimum(b, 1.0).mean(axis=(1, 2)),
}


def _batched(statistic: Statistic) -> Callable[[np.ndarray], np.ndarray]:
    """Fast batched form of ``statistic`` if known, else a per-replicate loop."""
    fast = _BATCHED.get(statistic)
    if fast is not None:
        return fast
    return lambda b: np.fromiter((statistic(m) for m in b), dtype=float, count=len(b))


def _chunks(reps: int, per_rep: int) -> Iterator[int]:
    """Split ``reps`` into chunk sizes that keep each chunk's array bounded."""
    size = max(1, _CHUNK_ELEMENTS // max(per_rep, 1))
    done = 0
    while done < reps:
        step = min(size, reps - done)
        yield step
        done += step


def _resample(scores: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` stratified replicates: rows drawn independently per column."""
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(count, runs, tasks))
    return scores[rows, np.arange(tasks)]


def _percentile_interval(point: float, values: np.ndarray, confidence: float) -> Interval:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return Interval(float(point), float(low), float(high))


def stratified_bootstrap_ci(
    scores: ArrayLike,
    statistic: Statistic,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile CI of ``statistic`` under a stratified (per-task) bootstrap of runs.

    ``statistic`` maps a (runs x tasks) matrix to a float. With a single run
    every replicate equals the data, so the interval collapses to the point.
    """
    s = _as_scores(scores)
    _check_bootstrap_args(reps, confidence)
    point = float(statistic(s))
    if s.shape[0] == 1:
        return Interval(point, point, point)
    rng = np.random.default_rng(seed)
    batched = _batched(statistic)
    values = np.concatenate(
        [batched(_resample(s, n, rng)) for n in _chunks(int(reps), s.size)]
    )
    return _percentile_interval(point, values, confidence)


def _check_same_tasks(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"both score matrices need the same number of tasks, got shapes {x.shape} and {y.shape}"
        )


def _poi_batched(xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) averaged over tasks, for batches (reps x runs x tasks)."""
    diff = xb[:, :, None, :] - yb[:, None, :, :]  # reps x n x m x tasks
    wins = (diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2))
    return wins.mean(axis=1)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """Probability a run of X beats a run of Y on a task, averaged over tasks.

    Per task this is the Mann-Whitney U statistic / (n * m), ties counting half.
    """
    xs, ys = _as_scores(x, "x"), _as_scores(y, "y")
    _check_same_tasks(xs, ys)
    return float(_poi_batched(xs[None], ys[None])[0])


def probability_of_improvement_ci(
    x: ArrayLike,
    y: ArrayLike,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile CI of the probability of improvement; x and y each resampled per task."""
    xs, ys = _as_scores(x, "x"), _as_scores(y, "y")
    _check_same_tasks(xs, ys)
    _check_bootstrap_args(reps, confidence)
    point = probability_of_improvement(xs, ys)
    if xs.shape[0] == 1 and ys.shape[0] == 1:
        return Interval(point, point, point)
    rng = np.random.default_rng(seed)
    per_rep = xs.shape[0] * ys.shape[0] * xs.shape[1]
    values = np.concatenate(
        [
            _poi_batched(_resample(xs, n, rng), _resample(ys, n, rng))
            for n in _chunks(int(reps), per_rep)
        ]
    )
    return _percentile_interval(point, values, confidence)


def difference_ci(
    current: ArrayLike,
    baseline: ArrayLike,
    statistic: Statistic = mean,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile CI of statistic(current) - statistic(baseline).

    Both matrices are resampled independently, stratified by task. A
    regression check can flag a drop when the whole interval lies below zero.
    """
    cs, bs = _as_scores(current, "current"), _as_scores(baseline, "baseline")
    _check_same_tasks(cs, bs)
    _check_bootstrap_args(reps, confidence)
    point = float(statistic(cs)) - float(statistic(bs))
    if cs.shape[0] == 1 and bs.shape[0] == 1:
        return Interval(point, point, point)
    rng = np.random.default_rng(seed)
    batched = _batched(statistic)
    per_rep = max(cs.size, bs.size)
    values = np.concatenate(
        [
            batched(_resample(cs, n, rng)) - batched(_resample(bs, n, rng))
            for n in _chunks(int(reps), per_rep)
        ]
    )
    return _percentile_interval(point, values, confidence)


def paired_difference_ci(
    x: ArrayLike,
    y: ArrayLike,
    statistic: Statistic = mean,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile CI of statistic(x - y) where row i of x and row i of y are a pair.

    Pairs (e.g. a transfer run and the scratch run of the same seed) are resampled together, so
    what they share cancels in each replicate; this is the stratified bootstrap of the per-pair
    differences. :func:`difference_ci` resamples the two sides independently instead.
    """
    xs, ys = _as_scores(x, "x"), _as_scores(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"paired score matrices need the same shape, got {xs.shape} and {ys.shape}")
    return stratified_bootstrap_ci(xs - ys, statistic, reps, confidence, seed)


def threshold_reduction_ci(
    t_target: ArrayLike,
    t_scratch: ArrayLike,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval | None:
    """Percent fewer steps to a threshold, 100 (1 − mean(t_target) / mean(t_scratch)), with a
    percentile CI from resampling the (target, scratch) pairs together.

    ``None`` when any run never held the threshold (an unreached time has no size to average)
    or scratch's mean time is 0: the report then says how many runs reached it instead.
    """
    t = np.asarray(t_target, dtype=np.float64).ravel()
    s = np.asarray(t_scratch, dtype=np.float64).ravel()
    if t.shape != s.shape or t.size == 0:
        raise ValueError(f"need paired times of the same non-zero length, got {t.size} and {s.size}")
    _check_bootstrap_args(reps, confidence)
    if not (np.isfinite(t).all() and np.isfinite(s).all()) or s.mean() == 0:
        return None
    point = 100.0 * (1.0 - t.mean() / s.mean())
    if t.size == 1:
        return Interval(float(point), float(point), float(point))
    rows = np.random.default_rng(seed).integers(0, t.size, size=(int(reps), t.size))
    values = 100.0 * (1.0 - t[rows].mean(1) / np.maximum(s[rows].mean(1), 1e-300))
    return _percentile_interval(point, values, confidence)


def aggregate_table(
    scores: ArrayLike, reps: int = 2000, seed: int = 0, confidence: float = 0.95
) -> dict[str, dict[str, float]]:
    """Mean, median and IQM with stratified-bootstrap CIs, as plain dicts."""
    s = _as_scores(scores)
    stats: dict[str, Statistic] = {"mean": mean, "median": median, "iqm": iqm}
    return {
        name: stratified_bootstrap_ci(s, fn, reps, confidence, seed).as_dict()
        for name, fn in stats.items()
    }
