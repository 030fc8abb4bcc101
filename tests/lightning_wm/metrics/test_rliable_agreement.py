"""Our aggregate metrics against rliable, the reference implementation of Agarwal et al., "Deep
Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS 2021).

Point metrics must agree to rounding on random (runs x tasks) matrices. The bootstrap intervals
cannot agree exactly: rliable draws its resampling indices from NumPy's global legacy generator,
ours from a seeded ``default_rng``, and our functions do not take indices from outside. Their
endpoints are compared within a Monte-Carlo tolerance instead (see
``_assert_same_percentiles``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("rliable")
from rliable import library as rly  # noqa: E402
from rliable import metrics as rlm  # noqa: E402

from lightning_wm import metrics as M  # noqa: E402


def _matrix(seed: int, runs: int, tasks: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "ties":
        # quarter steps from -0.5 to 1.5: repeated values, negatives, entries exactly at gamma=1
        return rng.integers(-2, 7, size=(runs, tasks)) / 4.0
    # tasks on different offsets and scales, so pooling runs across tasks would show
    loc = rng.uniform(-1.0, 2.0, size=tasks)
    scale = rng.uniform(0.1, 2.0, size=tasks)
    return loc + scale * rng.normal(size=(runs, tasks))


MATRICES = {
    "1 run x 5 tasks": _matrix(0, 1, 5, "normal"),
    "3 runs x 1 task": _matrix(1, 3, 1, "normal"),
    "5 runs x 4 tasks": _matrix(2, 5, 4, "normal"),
    "10 runs x 7 tasks, ties": _matrix(3, 10, 7, "ties"),
    "4 runs x 6 tasks, ties": _matrix(4, 4, 6, "ties"),
    "2 runs x 3 tasks": _matrix(5, 2, 3, "normal"),
}

POINT_METRICS = [
    (M.mean, rlm.aggregate_mean),
    (M.median, rlm.aggregate_median),
    (M.iqm, rlm.aggregate_iqm),
    (M.optimality_gap, lambda s: rlm.aggregate_optimality_gap(s, gamma=1)),
]


@pytest.fixture
def global_numpy_seed():
    """rliable's bootstraps draw from NumPy's global generator: seed it, then put it back."""
    state = np.random.get_state()
    yield np.random.seed
    np.random.set_state(state)


@pytest.mark.parametrize("name", list(MATRICES))
def test_aggregates_equal_rliable(name):
    scores = MATRICES[name]
    for ours, theirs in POINT_METRICS:
        # the mean is pooled here and a mean of task means in rliable: equal up to summation order
        np.testing.assert_allclose(ours(scores), theirs(scores), rtol=1e-12, atol=1e-12,
                                   err_msg=f"{ours.__name__} on {name}")


def test_median_shape_convention():
    # rows are runs, columns tasks: the median is taken over per-task means, so 3 runs of one
    # task give that task's mean, (0 + 0.1 + 1) / 3, while 1 run of 3 tasks gives the middle task
    three_runs = np.array([[0.0], [0.1], [1.0]])
    three_tasks = three_runs.T
    assert M.median(three_runs) == pytest.approx(1.1 / 3.0, abs=1e-15)
    assert M.median(three_tasks) == pytest.approx(0.1, abs=1e-15)
    assert M.median(three_runs) == pytest.approx(rlm.aggregate_median(three_runs), abs=1e-15)
    assert M.median(three_tasks) == pytest.approx(rlm.aggregate_median(three_tasks), abs=1e-15)


def test_optimality_gap_with_other_gamma_equals_rliable():
    scores = MATRICES["10 runs x 7 tasks, ties"]
    for gamma in (0.5, 1.25):
        assert M.optimality_gap(scores, gamma=gamma) == pytest.approx(
            rlm.aggregate_optimality_gap(scores, gamma=gamma), abs=1e-12)


@pytest.mark.parametrize("name", list(MATRICES))
def test_performance_profile_equals_rliable_score_distribution(name):
    scores = MATRICES[name]
    # every entry is itself a threshold, so the strict "score > tau" is tested at ties; plus
    # thresholds below and above all scores
    taus = np.concatenate([np.unique(scores), [scores.min() - 1.0, scores.max() + 1.0, 0.3]])
    np.testing.assert_allclose(M.performance_profile(scores, taus),
                               rly.score_distributions(scores, taus), rtol=0, atol=1e-12)


@pytest.mark.parametrize("x_name, y_name", [
    ("5 runs x 4 tasks", "4 runs x 6 tasks, ties"),  # different run counts (first 4 tasks)
    ("10 runs x 7 tasks, ties", "10 runs x 7 tasks, ties"),  # identical samples: 0.5
    ("1 run x 5 tasks", "1 run x 5 tasks"),
    ("2 runs x 3 tasks", "3 runs x 1 task"),
])
def test_probability_of_improvement_equals_rliable(x_name, y_name):
    x, y = MATRICES[x_name], MATRICES[y_name]
    tasks = min(x.shape[1], y.shape[1])
    x, y = x[:, :tasks], y[:, :tasks]
    for a, b in ((x, y), (y, x), (x, x + 0.25), (x, np.round(x))):
        assert M.probability_of_improvement(a, b) == pytest.approx(
            rlm.probability_of_improvement(a, b), abs=1e-12)


def test_probability_of_improvement_with_tied_runs_equals_rliable():
    # task 0: equal columns (rliable's 0.5 shortcut); task 1: ties within and across x and y;
    # task 2: every entry equal. Then y's runs 0 and 2 only: different run counts, so rliable
    # takes the Mann-Whitney path on every task, all of task 2's pairs tying
    x = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 3.0], [3.0, 1.0, 3.0]])
    y = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 3.0], [3.0, 0.0, 3.0]])
    assert M.probability_of_improvement(x, y) == pytest.approx(
        rlm.probability_of_improvement(x, y), abs=1e-12)
    assert M.probability_of_improvement(x, y[::2]) == pytest.approx(
        rlm.probability_of_improvement(x, y[::2]), abs=1e-12)


# -- bootstrap intervals ------------------------------------------------------------------------
# Both percentile intervals estimate the same 2.5 % and 97.5 % quantiles of the same stratified
# bootstrap distribution if the resampling and the percentile rule agree. An endpoint from R_RL
# draws is where that side's empirical CDF crosses p = 0.025, so the true CDF there is p within
# sqrt(p (1 - p) / R_RL), and the other side's empirical CDF (R_OURS draws) adds
# sqrt(p (1 - p) / R_OURS). So each side's endpoint must lie between the other side's
# (p - delta) and (p + delta) quantiles, delta = K sqrt(p (1 - p) (1 / R_RL + 1 / R_OURS)); both
# libraries give those from the same replicates at confidence 1 - 2 (p -/+ delta). This holds
# whatever the scale of the statistic, and for discrete ones (profiles, tied scores) too: where
# one value holds all the mass near p, both ends of the bracket equal it. K = 5 standard errors
# leaves a correct implementation about one chance in 10^6 per endpoint of failing on an unlucky
# seed, and the bracket is still narrow: for a roughly normal bootstrap distribution, the 1.0 %
# to 4.0 % quantiles, a third of a bootstrap standard deviation either side of the 2.5 % one.
# Checking both ways catches a bootstrap that pools runs across tasks or resamples whole rows
# (wrong spread) and a confidence level mapped to the wrong percentiles (e.g. 90 % for 95 %).
P, K = 0.025, 5.0
R_RL, R_OURS = 3000, 50_000
SLACK = 1e-9  # equal resampled values summed in another order


def _assert_same_percentiles(ours_at, rliable_at):
    """``*_at(confidence) -> (low, high)``, each side from one fixed set of replicates: each
    side's 95 % endpoints must lie in the other's bracket. Returns our 95 % interval."""
    delta = K * math.sqrt(P * (1 - P) * (1 / R_RL + 1 / R_OURS))
    for a_at, b_at in ((ours_at, rliable_at), (rliable_at, ours_at)):
        low, high = map(np.asarray, a_at(1 - 2 * P))
        wide_low, wide_high = map(np.asarray, b_at(1 - 2 * (P - delta)))
        narrow_low, narrow_high = map(np.asarray, b_at(1 - 2 * (P + delta)))
        np.testing.assert_array_less(wide_low - SLACK, low)
        np.testing.assert_array_less(low, narrow_low + SLACK)
        np.testing.assert_array_less(narrow_high - SLACK, high)
        np.testing.assert_array_less(high, wide_high + SLACK)
    return tuple(map(np.asarray, ours_at(1 - 2 * P)))


def _rliable_at(bootstrap, func):
    """rliable's percentile interval (what its ``get_interval_estimates`` returns) at any
    confidence, all from one run of R_RL replicates."""
    bootstrap.conf_int(func, reps=R_RL, method="percentile")

    def at(confidence):
        return bootstrap.conf_int(func, reps=R_RL, size=confidence, method="percentile",
                                  reuse=True)
    return at


def _rl_aggregates(scores):
    return np.array([theirs(scores) for _, theirs in POINT_METRICS])


@pytest.mark.parametrize("name", ["5 runs x 4 tasks", "4 runs x 6 tasks, ties"])
def test_stratified_bootstrap_ci_agrees_with_rliable(name, global_numpy_seed):
    scores = MATRICES[name]
    global_numpy_seed(11)
    rliable_at = _rliable_at(rly.StratifiedBootstrap(scores), _rl_aggregates)
    for i, (ours, _) in enumerate(POINT_METRICS):
        def ours_at(confidence, fn=ours):
            iv = M.stratified_bootstrap_ci(scores, fn, R_OURS, confidence, seed=3)
            return iv.low, iv.high

        def rliable_i_at(confidence, i=i):
            return rliable_at(confidence)[:, i]

        lo, hi = _assert_same_percentiles(ours_at, rliable_i_at)
        assert hi - lo > 0.05 * np.ptp(scores)  # a real interval, not a collapsed one


def test_single_run_intervals_collapse_like_rliable(global_numpy_seed):
    scores = MATRICES["1 run x 5 tasks"]
    global_numpy_seed(0)
    point, ci = rly.get_interval_estimates({"one": scores}, _rl_aggregates, reps=50)
    for i, (ours, _) in enumerate(POINT_METRICS):
        iv = M.stratified_bootstrap_ci(scores, ours)
        np.testing.assert_allclose([iv.point, iv.low, iv.high],
                                   [point["one"][i], *ci["one"][:, i]], rtol=0, atol=1e-12)


def test_probability_of_improvement_ci_agrees_with_rliable(global_numpy_seed):
    x = MATRICES["5 runs x 4 tasks"]
    y = MATRICES["4 runs x 6 tasks, ties"][:, :4] + 0.5
    global_numpy_seed(12)
    # rliable's own statistic costs a scipy Mann-Whitney call per task and replicate (~1 ms);
    # inside its bootstrap we use ours, equal to it as tested above, so this compares the
    # independent per-task resampling of x and y (rliable's bootstrap for a list of score
    # matrices) and the percentile rule
    rliable_at = _rliable_at(rly.StratifiedIndependentBootstrap(x, y),
                             lambda a, b: np.array([M.probability_of_improvement(a, b)]))

    def ours_at(confidence):
        iv = M.probability_of_improvement_ci(x, y, R_OURS, confidence, seed=5)
        return iv.low, iv.high

    lo, hi = _assert_same_percentiles(ours_at, lambda c: rliable_at(c)[:, 0])
    assert 0.0 < lo < hi < 1.0


def test_performance_profile_ci_agrees_with_rliable(global_numpy_seed):
    scores = MATRICES["4 runs x 6 tasks, ties"]
    taus = np.array([-0.3, 0.0, 0.4, 0.75, 1.1])
    global_numpy_seed(13)
    # the bootstrap and profile function that rliable's create_performance_profile runs
    rliable_at = _rliable_at(rly.StratifiedBootstrap(scores),
                             lambda s: rly.score_distributions(s, taus))

    def ours_at(confidence):
        _, lo, hi = M.performance_profile_ci(scores, taus, R_OURS, confidence, seed=7)
        return lo, hi

    lo, hi = _assert_same_percentiles(ours_at, rliable_at)
    assert np.all(hi - lo > 0.05)
