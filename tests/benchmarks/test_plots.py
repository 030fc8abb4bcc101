"""Curve bands against hand-computed values, and the figures written from runs on disk."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import plots
from benchmarks.plot_bands import common_grid, mean_ci_band, on_grid
from benchmarks.report import SuiteFacts, write_report
from benchmarks.results import (Provenance, RunRecord, load_results, write_curve, write_record,
                                write_task_curves)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = [0, 100, 200]
FACTS = SuiteFacts(baseline="scratch", thresholds={"reach": 5.0, "push": 1.0})


def _band(rows, reps=4000, seed=0):
    return mean_ci_band(np.array(rows, dtype=float), reps, np.random.default_rng(seed))


# -- the band -------------------------------------------------------------------------------------
def test_one_seed_gives_a_zero_width_band_on_its_curve():
    mean, low, high = _band([[1.0, -2.5, 7.0]])
    assert mean.tolist() == low.tolist() == high.tolist() == [1.0, -2.5, 7.0]


def test_identical_seeds_give_a_zero_width_band():
    mean, low, high = _band([[0.1, 0.2, 0.3]] * 4)
    np.testing.assert_allclose(low, mean)
    np.testing.assert_allclose(high, mean)
    np.testing.assert_allclose(mean, [0.1, 0.2, 0.3])


def test_two_seeds_band_spans_both_seeds():
    # Resampled means of {0, 2}: 0, 1, 2 with chances 1/4, 1/2, 1/4; each end holds more than
    # the 2.5 % a tail may cut, so the 95 % interval is [0, 2] around the mean 1.
    mean, low, high = _band([[0.0, 10.0], [2.0, 30.0]])
    assert mean.tolist() == [1.0, 20.0]
    assert low.tolist() == [0.0, 10.0] and high.tolist() == [2.0, 30.0]


def test_three_seeds_band_reaches_the_extremes():
    # Of the 27 equally likely draws of {0, 3, 6}, one averages 0 and one 6: 3.7 % each, above
    # the 2.5 % tail, so the interval is [0, 6] around the mean 3.
    mean, low, high = _band([[0.0], [3.0], [6.0]])
    assert (mean[0], low[0], high[0]) == (3.0, 0.0, 6.0)


def test_many_seeds_band_is_narrower_than_their_range():
    rows = [[float(x)] for x in range(20)]
    mean, low, high = _band(rows)
    assert mean[0] == 9.5 and 0.0 < low[0] < 9.5 < high[0] < 19.0


def test_band_is_the_same_for_the_same_generator_seed():
    rows = [[1.0, 4.0], [2.0, 3.0], [7.0, 0.0]]
    for a, b in zip(_band(rows, reps=300, seed=5), _band(rows, reps=300, seed=5)):
        assert a.tolist() == b.tolist()


def test_band_refuses_empty_curves():
    with pytest.raises(ValueError):
        _band(np.zeros((0, 3)))


# -- the grid -------------------------------------------------------------------------------------
def test_grid_is_every_step_inside_the_shared_range():
    a = (np.array([0, 10, 20]), np.array([0.0, 1.0, 2.0]))
    b = (np.array([0, 5, 10, 15]), np.array([4.0, 4.0, 4.0, 4.0]))
    grid = common_grid([a, b])
    assert grid.tolist() == [0.0, 5.0, 10.0, 15.0]    # 20: b stops at 15, so not drawn
    # a is read between its points at 5 and 15: halfway from 0 to 1, and from 1 to 2
    assert on_grid([a, b], grid).tolist() == [[0.0, 0.5, 1.0, 1.5], [4.0] * 4]


def test_grid_of_curves_that_do_not_overlap_is_one_point():
    a = (np.array([0, 10]), np.array([0.0, 1.0]))
    b = (np.array([20, 30]), np.array([2.0, 3.0]))
    assert common_grid([a, b]).tolist() == [10.0]


def test_tick_and_axis_labels():
    assert [plots.steps_tick(x) for x in (0, 500, 2000, 250000, 1500000)] == \
        ["0", "500", "2k", "250k", "1.5M"]
    assert plots.return_label(2) == "return (mean of 2 evaluation episodes)"
    assert plots.return_label(1, task_mean=True) == \
        "return (mean of 1 evaluation episode, mean over tasks)"


# -- figures from runs on disk --------------------------------------------------------------------
def _save(root, run_id, kind="target", task="reach", tasks=None, method="scratch", seed=0,
          returns=(0.0, 1.0, 2.0), steps=STEPS, **kw):
    prov = Provenance(config_hash="h", git_commit="c", packages={}, python="3.11", platform="x")
    record = RunRecord(run_id=run_id, suite="fake", profile="smoke", kind=kind, task=task,
                       tasks=tasks or [task], method=method, seed=seed, status="completed",
                       budget=200, env_steps=200, provenance=prov, **kw)
    run_dir = root / "fake" / "smoke" / "runs" / run_id
    write_record(run_dir, record)
    write_curve(run_dir, steps, returns)
    return run_dir


@pytest.fixture()
def root(tmp_path):
    for seed in (0, 1):
        _save(tmp_path, f"scratch-{seed}", seed=seed, returns=[0.0, 2.0 + seed, 4.0],
              is_baseline=True)
        _save(tmp_path, f"transfer-{seed}", method="transfer", seed=seed,
              returns=[3.0, 5.0, 6.0 + 2 * seed], baseline_run_id=f"scratch-{seed}")
        # a two-task source, resumed at 100: that step is evaluated twice, the last one counts
        steps = [0, 100, 100, 200]
        run = _save(tmp_path, f"mt-{seed}", kind="source", task="push+reach",
                    tasks=["push", "reach"], method="mt", seed=seed, steps=steps,
                    returns=[0.0, 9.0, 1.0, 2.0])
        write_task_curves(run, ["push", "reach"], steps,
                          [[0.0, 0.0], [9.0, 9.0], [seed, 2.0], [2.0, 2.0 + 2 * seed]])
    # a two-task source from before per-task curves: only its mean over tasks is known
    _save(tmp_path, "old-mt", kind="source", task="push+reach", tasks=["push", "reach"],
          method="old", returns=[1.0, 1.0, 1.0])
    return tmp_path


def test_source_panels_are_per_task_with_repeated_steps_once(root):
    panels = plots.source_panels(load_results(root), "fake", "smoke")
    assert list(panels) == ["push", "push+reach", "reach"]
    assert list(panels["push+reach"]) == ["old"]
    steps, push0 = panels["push"]["mt"][0]
    assert steps.tolist() == [0, 100, 200] and push0.tolist() == [0.0, 0.0, 2.0]
    assert plots.source_panels(load_results(root), "fake", "other") == {}


def test_sources_figure_draws_bands_and_each_tasks_threshold(root):
    panels = plots.source_panels(load_results(root), "fake", "smoke")
    fig, drawn = plots.draw_sources(panels, "fake", "smoke", FACTS.thresholds, episodes=3)
    reach = drawn["reach"]["mt"]
    # seeds' reach at 200: 2 and 4 -> mean 3, and two seeds' band is their range
    assert reach.runs == 2 and reach.grid.tolist() == [0.0, 100.0, 200.0]
    assert (reach.mean[-1], reach.low[-1], reach.high[-1]) == (3.0, 2.0, 4.0)
    labels = [{line.get_label() for line in ax.get_lines()} for ax in fig.axes]
    assert labels == [{"mt (n=2)", "threshold 1"}, {"old (n=1)"}, {"mt (n=2)", "threshold 5"}]
    assert fig.axes[0].get_ylabel() == "return (mean of 3 evaluation episodes)"
    assert fig.axes[0].get_xlabel() == plots.X_LABEL


def test_target_figure_draws_mean_ci_and_dashed_threshold(root):
    results = load_results(root)
    by_method = {m: [r for r in results if r.record.kind == "target" and r.record.method == m]
                 for m in ("scratch", "transfer")}
    fig = plots._draw("reach", "fake", "smoke", by_method, {"scratch"}, threshold=5.0)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"scratch (n=2)", "transfer (n=2)", "threshold 5"}
    assert lines["transfer (n=2)"].get_ydata().tolist() == [3.0, 5.0, 7.0]
    assert lines["threshold 5"].get_linestyle() == "--"
    band = plots.method_band(by_method["scratch"])
    assert (band.low.tolist(), band.high.tolist()) == ([0.0, 2.0, 4.0], [0.0, 3.0, 4.0])


def test_plot_functions_write_png_files(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    results = load_results(root)
    paths = plots.plot_source_curves(results, "fake", "smoke", out, FACTS.thresholds)
    paths += plots.plot_learning_curves(results, "fake", "smoke", out, FACTS.thresholds)
    assert sorted(p.name for p in paths) == ["curves_fake_smoke_reach.png",
                                             "curves_fake_smoke_sources.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000
    again = plots.plot_source_curves(results, "fake", "smoke", out / "again", FACTS.thresholds)
    assert again[0].read_bytes() == (out / "curves_fake_smoke_sources.png").read_bytes()


def test_no_source_runs_no_sources_figure(tmp_path):
    _save(tmp_path, "scratch-0", is_baseline=True)
    assert plots.plot_source_curves(load_results(tmp_path), "fake", "smoke", tmp_path) == []


def test_write_report_writes_target_and_sources_figures(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    paths = write_report(root, out, suite_lookup=lambda name: FACTS, reps=100)
    for name in ("curves_fake_smoke_reach.png", "curves_fake_smoke_sources.png"):
        assert out / name in paths and (out / name).read_bytes()[:8] == PNG_MAGIC
