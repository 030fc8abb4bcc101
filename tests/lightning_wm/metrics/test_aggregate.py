import time

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, trim_mean

from lightning_wm.metrics import (
    Interval,
    aggregate_table,
    difference_ci,
    iqm,
    mean,
    median,
    optimality_gap,
    paired_difference_ci,
    probability_of_improvement,
    probability_of_improvement_ci,
    reference_normalised,
    stratified_bootstrap_ci,
)

# 4 runs x 2 tasks; flattened and sorted: 0, 1, 2, 3, 6, 8, 9, 20
SCORES = np.array([[1.0, 8.0], [2.0, 9.0], [3.0, 6.0], [20.0, 0.0]])


def test_mean_hand_computed():
    # (1+8+2+9+3+6+20+0) / 8 = 49 / 8
    assert mean(SCORES) == pytest.approx(6.125)


def test_median_hand_computed():
    # rliable: median over tasks of the per-task means, (1+2+3+20)/4 = 6.5 and (8+9+6+0)/4 = 5.75
    # -> (6.5 + 5.75) / 2; the pooled median of the 8 entries would be (3 + 6) / 2 = 4.5
    assert median(SCORES) == pytest.approx(6.125)
    # three tasks: per-task means 2, 10, 4 -> the middle one
    assert median([[1.0, 0.0, 4.0], [3.0, 20.0, 4.0]]) == pytest.approx(4.0)


def test_reference_normalised_hand_computed():
    # task 0: random 0, reference 10; task 1: random -4, reference -3 (one unit of range)
    out = reference_normalised([[5.0, -4.0], [10.0, -2.0]], [0.0, -4.0], [10.0, -3.0])
    # (5-0)/10, (-4+4)/1; (10-0)/10, (-2+4)/1
    np.testing.assert_allclose(out, [[0.5, 0.0], [1.0, 2.0]])


def test_reference_normalised_ignores_other_methods():
    """The old best-method scale moved every score when a better method joined; fixed references
    make a method's normalised scores a function of its own runs alone."""
    random, reference = [0.0, 10.0], [4.0, 20.0]
    a = [[2.0, 15.0], [3.0, 12.0]]
    before = reference_normalised(a, random, reference)
    reference_normalised([[40.0, 90.0]], random, reference)  # a much better method
    np.testing.assert_allclose(reference_normalised(a, random, reference), before)
    # (2-0)/4, (15-10)/10; (3-0)/4, (12-10)/10
    np.testing.assert_allclose(before, [[0.5, 0.5], [0.75, 0.2]])


@pytest.mark.parametrize("random, reference, match", [
    ([0.0, 1.0], [1.0, 1.0], "zero range"),
    ([0.0], [1.0], "one value per task"),
    ([0.0, np.inf], [1.0, 2.0], "finite"),
    ([0.0, 0.0], [1.0, np.nan], "finite"),
])
def test_reference_normalised_rejects_bad_bounds(random, reference, match):
    with pytest.raises(ValueError, match=match):
        reference_normalised([[1.0, 2.0]], random, reference)


def test_iqm_hand_computed():
    # drop 25% (2 values) at each end -> 2, 3, 6, 8 -> 19 / 4
    assert iqm(SCORES) == pytest.approx(4.75)


def test_optimality_gap_hand_computed():
    # min(x, 1) = 0.5, 1, 0.8, 1 -> gaps 0.5, 0, 0.2, 0 -> 0.7 / 4
    assert optimality_gap([[0.5, 1.2], [0.8, 1.0]]) == pytest.approx(0.175)
    # gamma 2: gaps 1.5, 0.8, 1.2, 1.0 -> 4.5 / 4
    assert optimality_gap([[0.5, 1.2], [0.8, 1.0]], gamma=2.0) == pytest.approx(1.125)


@pytest.mark.parametrize("fn", [mean, median, iqm, optimality_gap])
def test_score_validation(fn):
    with pytest.raises(ValueError, match="NaN"):
        fn([[1.0, np.nan]])
    with pytest.raises(ValueError, match="2-D"):
        fn([1.0, 2.0])
    with pytest.raises(ValueError, match="at least one run"):
        fn(np.zeros((0, 3)))


def test_interval_as_dict():
    iv = Interval(1.0, 0.5, 2.0)
    assert iv.as_dict() == {"point": 1.0, "low": 0.5, "high": 2.0}
    assert iv.contains(1.5) and not iv.contains(3.0)
    with pytest.raises(AttributeError):
        iv.point = 3.0  # frozen


def test_bootstrap_ci_contains_point_and_is_deterministic():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(10, 5))
    a = stratified_bootstrap_ci(scores, mean, seed=3)
    b = stratified_bootstrap_ci(scores, mean, seed=3)
    c = stratified_bootstrap_ci(scores, mean, seed=4)
    assert a == b
    assert a != c
    assert a.low <= a.point <= a.high
    assert a.point == pytest.approx(scores.mean())


def test_bootstrap_single_run_collapses():
    iv = stratified_bootstrap_ci([[1.0, 2.0, 4.0]], iqm)
    # one run: IQM of 1, 2, 4 (trim 0 of 3) = 7/3; interval is just the point
    assert iv.point == pytest.approx(7.0 / 3.0)
    assert iv.low == iv.point == iv.high


def test_bootstrap_constant_scores_collapse():
    iv = stratified_bootstrap_ci(np.full((5, 3), 2.0), mean)
    assert (iv.point, iv.low, iv.high) == (2.0, 2.0, 2.0)


def test_bootstrap_widens_with_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(10, 4))
    narrow = stratified_bootstrap_ci(base * 0.1, mean)
    wide = stratified_bootstrap_ci(base * 10.0, mean)
    assert (wide.high - wide.low) > 10 * (narrow.high - narrow.low)


def test_bootstrap_is_stratified_by_task():
    runs, tasks = 5, 3
    # value = 100 * task + run, so each entry records where it came from
    scores = 100.0 * np.arange(tasks)[None, :] + np.arange(runs)[:, None]
    seen = []

    def recording_mean(matrix):
        seen.append(matrix.copy())
        return float(matrix.mean())

    stratified_bootstrap_ci(scores, recording_mean, reps=200)
    replicates = seen[1:]  # the first call is the point estimate
    assert len(replicates) == 200
    misaligned = 0
    for rep in replicates:
        assert rep.shape == (runs, tasks)  # per-task run count kept
        # every value in column j was drawn from column j
        np.testing.assert_array_equal(rep // 100, np.broadcast_to(np.arange(tasks), rep.shape))
        rows = rep % 100
        # rows drawn independently per task, not whole rows jointly
        misaligned += not np.all(rows == rows[:, :1])
    assert misaligned > 150


def test_fast_paths_match_generic_loop():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 4))
    pairs = [
        (mean, lambda m: float(np.mean(m))),
        (median, lambda m: float(np.median(m.mean(axis=0)))),
        (iqm, lambda m: float(trim_mean(m.ravel(), 0.25))),
        (optimality_gap, lambda m: float(1.0 - np.minimum(m, 1.0).mean())),
    ]
    for fast, slow in pairs:
        a = stratified_bootstrap_ci(scores, fast, reps=300, seed=7)
        b = stratified_bootstrap_ci(scores, slow, reps=300, seed=7)
        assert a.point == pytest.approx(b.point)
        assert a.low == pytest.approx(b.low)
        assert a.high == pytest.approx(b.high)


def test_bootstrap_is_fast():
    scores = np.random.default_rng(0).normal(size=(10, 10))
    start = time.perf_counter()
    for fn in (mean, median, iqm):
        stratified_bootstrap_ci(scores, fn, reps=2000)
    assert time.perf_counter() - start < 1.0


def test_bootstrap_argument_validation():
    with pytest.raises(ValueError, match="reps"):
        stratified_bootstrap_ci(SCORES, mean, reps=0)
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci(SCORES, mean, confidence=1.0)
    with pytest.raises(ValueError, match="NaN"):
        stratified_bootstrap_ci([[np.nan], [1.0]], mean)


def test_probability_of_improvement_all_greater():
    assert probability_of_improvement([[5.0, 6.0], [7.0, 8.0]], [[1.0, 2.0], [3.0, 4.0]]) == 1.0
    assert probability_of_improvement([[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]) == 0.0


def test_probability_of_improvement_identical():
    assert probability_of_improvement(SCORES, SCORES) == 0.5


def test_probability_of_improvement_hand_computed():
    # pairs (x, y): (1,2) loss, (1,3) loss, (3,2) win, (3,3) tie -> (1 + 0.5) / 4
    assert probability_of_improvement([[1.0], [3.0]], [[2.0], [3.0]]) == pytest.approx(0.375)
    # second task always wins (1.0); average over tasks (0.375 + 1) / 2
    x, y = [[1.0, 9.0], [3.0, 9.0]], [[2.0, 0.0], [3.0, 0.0]]
    assert probability_of_improvement(x, y) == pytest.approx(0.6875)


def test_probability_of_improvement_matches_mann_whitney():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(6, 3)).astype(float)  # small ints force ties
    y = rng.integers(0, 4, size=(4, 3)).astype(float)
    expected = np.mean([mannwhitneyu(x[:, t], y[:, t]).statistic / 24 for t in range(3)])
    assert probability_of_improvement(x, y) == pytest.approx(expected)


def test_probability_of_improvement_task_mismatch():
    with pytest.raises(ValueError, match="same number of tasks"):
        probability_of_improvement(np.zeros((2, 3)), np.zeros((2, 2)))


def test_probability_of_improvement_ci():
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 1.0, size=(8, 4))
    y = rng.normal(0.0, 1.0, size=(8, 4))
    a = probability_of_improvement_ci(x, y, seed=1)
    assert a == probability_of_improvement_ci(x, y, seed=1)
    assert 0.0 <= a.low <= a.point <= a.high <= 1.0
    assert a.point == pytest.approx(probability_of_improvement(x, y))
    # separated samples: every replicate is all wins
    sep = probability_of_improvement_ci(x + 100.0, y)
    assert (sep.point, sep.low, sep.high) == (1.0, 1.0, 1.0)


def test_difference_ci_point_hand_computed():
    # mean(current) = (1+3)/2 = 2, mean(baseline) = (2+4)/2 = 3 -> 2 - 3 = -1
    iv = difference_ci([[1.0], [3.0]], [[2.0], [4.0]])
    assert iv.point == pytest.approx(-1.0)
    assert iv.low <= -1.0 <= iv.high


def test_difference_ci_detects_regression():
    rng = np.random.default_rng(3)
    baseline = rng.normal(10.0, 1.0, size=(10, 5))
    dropped = baseline - 3.0 + rng.normal(0.0, 0.1, size=(10, 5))
    iv = difference_ci(dropped, baseline, statistic=iqm)
    assert iv.high < 0.0  # CI excludes zero: a real drop
    same = difference_ci(baseline, baseline, statistic=mean)
    assert same.point == 0.0 and same.contains(0.0)


def test_difference_ci_task_mismatch():
    with pytest.raises(ValueError, match="same number of tasks"):
        difference_ci(np.zeros((3, 2)), np.zeros((3, 4)))


def test_paired_difference_ci_hand_computed():
    # pair differences 5-2 = 3 and 7-6 = 1: mean 2. A replicate draws two of {3, 1}: its mean is
    # 1 (p 1/4), 2 (p 1/2) or 3 (p 1/4), so the 2.5th and 97.5th percentiles are 1 and 3.
    iv = paired_difference_ci([[5.0], [7.0]], [[2.0], [6.0]], reps=4000)
    assert (iv.point, iv.low, iv.high) == pytest.approx((2.0, 1.0, 3.0))


def test_paired_difference_ci_cancels_what_pairs_share():
    # each pair shares a seed effect (0, 10, 20, 30) and differs by exactly 1: paired, the CI
    # is the point; resampled independently, the seed spread swamps the difference
    base = np.array([[0.0], [10.0], [20.0], [30.0]])
    paired = paired_difference_ci(base + 1.0, base)
    assert (paired.point, paired.low, paired.high) == pytest.approx((1.0, 1.0, 1.0))
    assert difference_ci(base + 1.0, base).contains(0.0)


def test_paired_difference_ci_single_pair_and_shape_mismatch():
    iv = paired_difference_ci([[4.0]], [[1.5]])
    assert (iv.point, iv.low, iv.high) == (2.5, 2.5, 2.5)
    with pytest.raises(ValueError, match="same shape"):
        paired_difference_ci(np.zeros((3, 1)), np.zeros((2, 1)))


def test_aggregate_table():
    table = aggregate_table(SCORES, reps=500)
    assert set(table) == {"mean", "median", "iqm"}
    assert table["mean"]["point"] == pytest.approx(6.125)
    assert table["median"]["point"] == pytest.approx(6.125)
    assert table["iqm"]["point"] == pytest.approx(4.75)
    for row in table.values():
        assert set(row) == {"point", "low", "high"}
        assert row["low"] <= row["point"] <= row["high"]
    assert table == aggregate_table(SCORES, reps=500)


def test_threshold_reduction_ci_by_hand():
    from lightning_wm.metrics import threshold_reduction_ci
    # mean target 50, mean scratch 100: 50 % fewer steps; resampled pairs keep each pair's ratio
    ci = threshold_reduction_ci([40, 60], [80, 120], reps=500, seed=0)
    assert ci.point == pytest.approx(50.0)
    assert ci.low == pytest.approx(50.0) and ci.high == pytest.approx(50.0)
    spread = threshold_reduction_ci([10, 90, 50], [100, 100, 100], reps=2000, seed=1)
    assert spread.point == pytest.approx(50.0) and spread.low < 50.0 < spread.high
    assert threshold_reduction_ci([10, float("inf")], [20, 30]) is None  # one never held it
    with pytest.raises(ValueError, match="same non-zero length"):
        threshold_reduction_ci([1, 2], [1])
