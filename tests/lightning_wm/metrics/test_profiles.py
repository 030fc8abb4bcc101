"""Performance profiles and per-step intervals against values worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from lightning_wm import metrics as M


def test_profile_counts_entries_strictly_above_tau():
    # 2 runs x 2 tasks: entries 0.2, 0.6, 0.4, 1.0
    scores = [[0.2, 0.6], [0.4, 1.0]]
    got = M.performance_profile(scores, [0.0, 0.4, 0.6, 1.0])
    # > 0: all 4; > 0.4: 0.6 and 1.0; > 0.6: 1.0; > 1.0: none (strict)
    np.testing.assert_allclose(got, [1.0, 0.5, 0.25, 0.0])


def test_profile_is_the_mean_over_tasks_of_per_task_fractions():
    scores = np.array([[0.1, 0.9], [0.3, 0.8], [0.5, 0.2]])
    per_task = [(scores[:, j] > 0.25).mean() for j in range(2)]  # 2/3 and 2/3
    assert M.performance_profile(scores, [0.25])[0] == pytest.approx(np.mean(per_task))


def test_profile_ci_collapses_for_one_run_and_brackets_the_point():
    p, lo, hi = M.performance_profile_ci([[0.2, 0.7]], [0.5])
    assert (p[0], lo[0], hi[0]) == (0.5, 0.5, 0.5)
    rng = np.random.default_rng(1)
    scores = rng.uniform(size=(6, 3))
    taus = np.linspace(0, 1, 11)
    p, lo, hi = M.performance_profile_ci(scores, taus, reps=500)
    assert np.all(lo <= p + 1e-12) and np.all(p <= hi + 1e-12)
    assert hi[5] > lo[5]  # data with spread give an interval of non-zero width
    # fixed seed: the same interval every call
    np.testing.assert_array_equal(M.performance_profile_ci(scores, taus, reps=500)[1], lo)


def test_profile_rejects_bad_input():
    with pytest.raises(ValueError, match="taus"):
        M.performance_profile([[1.0]], [])
    with pytest.raises(ValueError, match="2-D"):
        M.performance_profile([1.0, 2.0], [0.5])


def test_pointwise_ci_points_are_the_statistic_at_each_step():
    # runs x tasks x steps: at step 0 every entry is 0; at step 1 the entries are 1, 2, 3, 4
    curves = np.array([[[0.0, 1.0], [0.0, 2.0]], [[0.0, 3.0], [0.0, 4.0]]])
    got = M.pointwise_ci(curves, M.mean, reps=200)
    assert [g.point for g in got] == [0.0, 2.5]
    assert got[0].low == got[0].high == 0.0  # no spread at step 0
    assert got[1].low < 2.5 < got[1].high
    with pytest.raises(ValueError, match="runs x tasks x points"):
        M.pointwise_ci(np.zeros((2, 2)), M.mean)
