"""rliable figures from synthetic (runs x tasks) data: valid PNGs, and the numbers behind them."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks import plots_rliable as P
from benchmarks.report import SuiteFacts, build_report
from benchmarks.results import load_results
from benchmarks.scores import scores_document
from publish_data import FACTS, make_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _doc(root, facts=FACTS, **kw):
    results = load_results(make_results(root, **kw))
    report = build_report(results, facts, reps=200)
    return scores_document(results, [report]), report


def test_four_figures_are_written_as_valid_pngs(tmp_path):
    doc, _ = _doc(tmp_path / "r")
    drawn = P.plot_rliable(doc, "fake_transfer", "smoke", tmp_path / "out")
    assert [d.kind for d in drawn] == ["aggregates", "profiles", "improvement",
                                       "sample_efficiency"]
    for d in drawn:
        data = d.path.read_bytes()
        assert d.path.name.startswith("rliable_fake_transfer_smoke_")
        assert data[:8] == PNG_MAGIC and len(data) > 5000
        # IHDR: width and height of a figure, not an empty canvas
        assert int.from_bytes(data[16:20], "big") > 300 and int.from_bytes(data[20:24], "big") > 100
    # fixed bootstrap seeds: the same data give the same bytes
    again = P.plot_rliable(doc, "fake_transfer", "smoke", tmp_path / "again")
    assert [a.path.read_bytes() for a in again] == [d.path.read_bytes() for d in drawn]


def test_matrices_are_those_of_the_leaderboard_aggregates(tmp_path):
    doc, report = _doc(tmp_path / "r")
    g = P.group_scores(doc, "fake_transfer", "smoke")
    assert g.normalised and g.baselines == ("scratch",)
    # AUC of a line from 0.1 * seed to 1 + 0.1 * seed is 0.5 + 0.1 * seed; random 0, reference 1
    np.testing.assert_allclose(g.methods["scratch"].scores[:, 0], [0.5, 0.6, 0.7])
    np.testing.assert_allclose(g.methods["finetune"].scores[:, 0], [0.7, 0.8, 0.9])
    for m, agg in report["aggregates"]["methods"].items():
        assert g.methods[m].scores.mean() == pytest.approx(agg["mean"]["point"])


def test_probability_of_improvement_compares_with_the_baseline(tmp_path):
    doc, _ = _doc(tmp_path / "r", lift=0.5)
    (name, base, tasks, ci), = P.improvement_rows(P.group_scores(doc, "fake_transfer", "smoke"))
    # every finetune run (0.5 higher) beats every scratch run: P = 1 in every replicate
    assert (name, base, tasks) == ("finetune", "scratch", ("slippery",))
    assert (ci.point, ci.low, ci.high) == (1.0, 1.0, 1.0)


def test_sample_efficiency_cube_is_the_normalised_curves(tmp_path):
    scaled = dataclasses.replace(FACTS, random_scores={"slippery": 0.5},
                                 reference_scores={"slippery": 1.5})
    doc, _ = _doc(tmp_path / "r", facts=scaled, seeds=(0, 1))
    g = P.group_scores(doc, "fake_transfer", "smoke")
    grid, cube = P.curve_matrix(doc, "fake_transfer", "smoke", g.methods["scratch"], "scratch")
    assert cube.shape == (2, 1, 11) and grid[-1] == 1000
    # seed 1 at step 1000: return 1.1 -> (1.1 - 0.5) / (1.5 - 0.5) = 0.6
    assert cube[1, 0, -1] == pytest.approx(0.6)


def test_raw_scale_drops_the_optimality_gap_and_no_baseline_drops_improvement(tmp_path):
    doc, _ = _doc(tmp_path / "r", facts=SuiteFacts(baseline="scratch"))
    g = P.group_scores(doc, "fake_transfer", "smoke")
    assert not g.normalised and "raw" in g.unit
    titles = [ax.get_title() for ax in P.draw_aggregates(g).axes]
    assert titles == ["mean", "median", "IQM"]  # a gap below 1 means nothing on a raw scale
    solo, _ = _doc(tmp_path / "solo", methods=())  # scratch only
    kinds = [d.kind for d in P.plot_rliable(solo, "fake_transfer", "smoke", tmp_path / "o")]
    assert kinds == ["aggregates", "profiles", "sample_efficiency"]
