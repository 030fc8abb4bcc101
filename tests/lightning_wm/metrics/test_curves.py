import math

import numpy as np
import pytest

from lightning_wm.metrics import (
    area_under_curve,
    early_performance,
    final_performance,
    jumpstart,
    mean_and_stderr,
    normalise,
    resample,
    shift_curve,
    threshold_reduction,
    time_to_threshold,
    transfer_ratio,
)
from lightning_wm.metrics.curves import HOLD_WINDOW, THRESHOLD_DEFINITION

# 11 evaluations at steps 0, 10, ..., 100 with return equal to the index.
STEPS = np.arange(0, 101, 10)
RETURNS = np.arange(11, dtype=float)


def test_area_under_curve_hand_computed():
    # trapezoids: (0+1)/2*10 = 5, (1+1)/2*10 = 10 -> 15 / span 20 = 0.75
    assert area_under_curve([0, 10, 20], [0, 1, 1]) == pytest.approx(0.75)


def test_area_under_curve_nonzero_start():
    # (2+4)/2*20 = 60 over span 30-10 = 20 -> 3.0
    assert area_under_curve([10, 30], [2, 4]) == pytest.approx(3.0)


def test_area_under_curve_single_point():
    assert area_under_curve([5], [3.0]) == 3.0


def test_final_performance_last_tenth():
    # cutoff = 100 - 0.1*100 = 90 -> steps 90, 100 -> returns (9+10)/2 = 9.5
    assert final_performance(STEPS, RETURNS) == pytest.approx(9.5)


def test_final_performance_always_includes_last_point():
    # cutoff = 95 (fraction 0.05) and 100 (fraction 0) -> only step 100 -> 10
    assert final_performance(STEPS, RETURNS, fraction=0.05) == 10.0
    assert final_performance(STEPS, RETURNS, fraction=0.0) == 10.0
    # sparse curve: cutoff 90 keeps only step 100
    assert final_performance([0, 50, 100], [1, 2, 7]) == 7.0


def test_final_performance_whole_span():
    # fraction 1 keeps everything: mean(0..10) = 55/11 = 5
    assert final_performance(STEPS, RETURNS, fraction=1.0) == pytest.approx(5.0)


def test_early_performance():
    # cutoff = 0 + 0.1*100 = 10 -> steps 0, 10 -> (0+1)/2 = 0.5
    assert early_performance(STEPS, RETURNS) == pytest.approx(0.5)
    # fraction 0 keeps only the first point
    assert early_performance(STEPS, RETURNS, fraction=0.0) == 0.0


def test_jumpstart():
    # target early: steps 0, 10 of [0..100] -> (4+6)/2 = 5
    # scratch early: steps 0, 5 of [0..50] (cutoff 5) -> (1+2)/2 = 1.5
    # jumpstart = 5 - 1.5 = 3.5
    target = jumpstart(
        [0, 10, 50, 100], [4, 6, 8, 9], [0, 5, 25, 50], [1, 2, 3, 4]
    )
    assert target == pytest.approx(3.5)


def test_time_to_threshold_plain_first_crossing():
    # window 1 counting step 0 is the first single evaluation at or above the threshold
    steps, returns = [0, 10, 20, 30], [0.0, 0.5, 1.2, 0.8]
    assert time_to_threshold(steps, returns, 1.0, window=1, after=-math.inf) == 20.0
    # reaching the threshold exactly counts (>=)
    assert time_to_threshold(steps, returns, 1.2, window=1, after=-math.inf) == 20.0
    assert time_to_threshold(steps, returns, -1.0, window=1, after=-math.inf) == 0.0


def test_time_to_threshold_climb_and_hold_reports_the_window_end():
    # after step 0 the windows of 3 average (0.25+0.5+1)/3 = 0.583 (ends at 300),
    # (0.5+1+1)/3 = 0.833 (ends at 400) and 1 (ends at 500)
    steps = [0, 100, 200, 300, 400, 500]
    returns = [-0.25, 0.25, 0.5, 1.0, 1.0, 1.0]
    assert time_to_threshold(steps, returns, 0.8) == 400.0
    assert time_to_threshold(steps, returns, 0.85) == 500.0
    # below every window mean: held from the first full window, (100, 200, 300)
    assert time_to_threshold(steps, returns, 0.5) == 300.0


def test_time_to_threshold_lucky_start_is_not_learning():
    # 0.93 at step 0 (an untrained greedy policy), then stuck at -0.32: the windows after
    # step 0 all average -0.32
    steps = [0, 200, 400, 600, 800]
    returns = [0.93, -0.32, -0.32, -0.32, -0.32]
    assert time_to_threshold(steps, returns, 0.8) == math.inf
    # a high start followed by a held level counts from the first window after step 0 only
    assert time_to_threshold(steps, [0.93, 0.9, 0.9, 0.9, 0.9], 0.8) == 600.0


def test_time_to_threshold_alternating_curve_does_not_reach():
    # -0.32, 0.94 alternating: windows of 3 average (-0.32+0.94-0.32)/3 = 0.1
    # or (0.94-0.32+0.94)/3 = 0.52, both below 0.8 however long the curve
    steps = np.arange(0, 2001, 200)
    returns = np.where(np.arange(steps.size) % 2 == 0, -0.32, 0.94)
    assert time_to_threshold(steps, returns, 0.8) == math.inf
    # a single evaluation would have crossed at step 200
    assert time_to_threshold(steps, returns, 0.8, window=1) == 200.0
    # the higher window mean is 0.52: a threshold of 0.5 is held from (200, 400, 600)
    assert time_to_threshold(steps, returns, 0.5) == 600.0


def test_time_to_threshold_short_curves_never_reach():
    # fewer than 3 evaluations after step 0 show no held level, however high they are
    assert time_to_threshold([0, 10, 20], [5.0, 5.0, 5.0], 1.0) == math.inf
    assert time_to_threshold([0], [5.0], 1.0) == math.inf
    # exactly 3 after step 0: the one window (2+4+6)/3 = 4 ends at the last step
    assert time_to_threshold([0, 10, 20, 30], [0.0, 2.0, 4.0, 6.0], 4.0) == 30.0
    assert time_to_threshold([0, 10, 20, 30], [0.0, 2.0, 4.0, 6.0], 4.01) == math.inf


def test_time_to_threshold_after_and_window_options():
    # a curve without a step-0 point counts from its first evaluation
    assert time_to_threshold([10, 20, 30], [1.0, 2.0, 3.0], 2.0) == 30.0
    # after=15 leaves 20, 30 only: too short for a window of 3, enough for a window of 2
    assert time_to_threshold([10, 20, 30], [1.0, 2.0, 3.0], 2.0, after=15) == math.inf
    # window 2 after 15: (2+3)/2 = 2.5 ends at 30
    assert time_to_threshold([10, 20, 30], [1.0, 2.0, 3.0], 2.5, window=2, after=15) == 30.0
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="window"):
            time_to_threshold([0, 10], [0.0, 1.0], 0.5, window=bad)


def test_time_to_threshold_never_reached():
    assert time_to_threshold([0, 10, 20, 30], [0.0, 0.5, 0.5, 0.5], 5.0) == math.inf


def test_threshold_definition_states_the_window():
    assert f"mean return of {HOLD_WINDOW} consecutive evaluations" in THRESHOLD_DEFINITION
    assert "step 0" in THRESHOLD_DEFINITION


def test_threshold_reduction():
    # 100 * (200 - 50) / 200 = 75
    assert threshold_reduction(50, 200) == pytest.approx(75.0)
    # slower target: 100 * (100 - 200) / 100 = -100
    assert threshold_reduction(200, 100) == pytest.approx(-100.0)
    assert math.isnan(threshold_reduction(math.inf, 100))
    assert math.isnan(threshold_reduction(50, math.inf))
    assert math.isnan(threshold_reduction(0, 0))


def test_transfer_ratio():
    # 3 / 2 = 1.5
    assert transfer_ratio(3.0, 2.0) == pytest.approx(1.5)
    assert transfer_ratio(0.0, 2.0) == 0.0
    assert math.isnan(transfer_ratio(1.0, 0.0))
    # negative areas: the worse method (-612.7 against -583.6) would read as a 1.05x gain
    assert math.isnan(transfer_ratio(-612.7, -583.6))
    assert math.isnan(transfer_ratio(-1.0, 2.0)) and math.isnan(transfer_ratio(1.0, -2.0))


def test_shift_curve():
    steps, returns = shift_curve([0, 10], [1.0, 2.0], 100)
    np.testing.assert_array_equal(steps, [100, 110])
    np.testing.assert_array_equal(returns, [1.0, 2.0])
    with pytest.raises(ValueError, match="offset"):
        shift_curve([0, 10], [1.0, 2.0], -5)


def test_shift_then_area_is_cost_charged():
    # shifting by 20 then resampling onto [0, 40]: held at 0 until step 20, then 0 -> 1 over 20
    steps, returns = shift_curve([0, 20], [0.0, 1.0], 20)
    grid = np.array([0, 10, 20, 30, 40])
    on_grid = resample(steps, returns, grid)
    np.testing.assert_allclose(on_grid, [0.0, 0.0, 0.0, 0.5, 1.0])
    # AUC: trapezoids 0 + 0 + 2.5 + 7.5 = 10 over span 40 -> 0.25
    assert area_under_curve(grid, on_grid) == pytest.approx(0.25)


def test_resample_interpolates_and_holds_ends():
    # inside: 5 -> 0.5, 15 -> (1+3)/2 = 2; outside: held at 0 and 3
    out = resample([0, 10, 20], [0.0, 1.0, 3.0], [-5, 0, 5, 15, 20, 30])
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 2.0, 3.0, 3.0])


def test_mean_and_stderr():
    # column 0: values 1, 3 -> mean 2, sample var 2, std sqrt2, stderr sqrt2/sqrt2 = 1
    # column 1: values 2, 6 -> mean 4, sample var 8, std 2sqrt2, stderr 2
    mean, stderr = mean_and_stderr([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(stderr, [1.0, 2.0])


def test_mean_and_stderr_single_run():
    mean, stderr = mean_and_stderr([[1.0, 5.0]])
    np.testing.assert_array_equal(mean, [1.0, 5.0])
    np.testing.assert_array_equal(stderr, [0.0, 0.0])


def test_mean_and_stderr_rejects_1d():
    with pytest.raises(ValueError, match="2-D"):
        mean_and_stderr([1.0, 2.0])


def test_normalise_per_task():
    # task 0: (0-0)/100 = 0, (100-0)/100 = 1; task 1: (50-50)/50 = 0, (75-50)/50 = 0.5
    out = normalise([[0.0, 50.0], [100.0, 75.0]], [0.0, 50.0], [100.0, 100.0])
    np.testing.assert_allclose(out, [[0.0, 0.0], [1.0, 0.5]])


def test_normalise_scalar_bounds():
    # (5 - 0) / (10 - 0) = 0.5
    np.testing.assert_allclose(normalise([5.0, 10.0], 0.0, 10.0), [0.5, 1.0])


def test_normalise_zero_range_raises():
    with pytest.raises(ValueError, match="high equals low"):
        normalise([[1.0, 2.0]], [0.0, 3.0], [1.0, 3.0])
    with pytest.raises(ValueError, match="high equals low"):
        normalise([1.0], 2.0, 2.0)


def test_normalise_shape_mismatch_raises():
    with pytest.raises(ValueError, match="broadcast"):
        normalise([[1.0, 2.0]], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "steps, returns, message",
    [
        ([0, 10, 20], [1.0, 2.0], "same length"),
        ([], [], "empty"),
        ([[0, 10]], [[1.0, 2.0]], "1-D"),
        ([0, 20, 10], [1.0, 2.0, 3.0], "ascending"),
        ([0, 10, 10], [1.0, 2.0, 3.0], "ascending"),
    ],
)
def test_curve_validation(steps, returns, message):
    with pytest.raises(ValueError, match=message):
        area_under_curve(steps, returns)
    with pytest.raises(ValueError, match=message):
        time_to_threshold(steps, returns, 0.0)


def test_fraction_validation():
    with pytest.raises(ValueError, match="fraction"):
        final_performance(STEPS, RETURNS, fraction=1.5)
    with pytest.raises(ValueError, match="fraction"):
        early_performance(STEPS, RETURNS, fraction=-0.1)


def test_resample_rejects_2d_grid():
    with pytest.raises(ValueError, match="grid"):
        resample([0, 10], [0.0, 1.0], [[0, 5]])
