"""Cost accounting against hand-computed values: shared source cost (T/M) and equal compute (T/N)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import report_cost as C
from benchmarks.report import build_report, render_markdown
from benchmarks.results import (Provenance, ResultError, RunRecord, SourceUse, load_results,
                                read_task_curves, write_curve, write_record, write_task_curves)

STEPS = np.arange(0, 1001, 100)


def _prov(sources=()):
    return Provenance(config_hash="h", git_commit="c", packages={}, python="3.11", platform="x",
                      sources=list(sources))


def _save(root, run_id, returns, task_returns=None, **kw):
    base = dict(run_id=run_id, suite="s", profile="p", kind="target", task="a", tasks=["a"],
                method="scratch", seed=0, status="completed", budget=1000, env_steps=1000,
                wall_time_s=10.0, provenance=_prov())
    record = RunRecord(**{**base, **kw})
    folder = root / "s" / "p" / "runs" / run_id
    write_record(folder, record)
    write_curve(folder, STEPS, returns)
    if task_returns is not None:
        write_task_curves(folder, record.tasks, STEPS, task_returns)
    return folder


@pytest.fixture()
def runs(tmp_path):
    """A source on tasks a and b (2000 steps); scratch and a transfer run on a and on b."""
    per_task = np.stack([STEPS / 250, STEPS / 500], 1)  # finals: a 4.0, b 2.0
    _save(tmp_path, "src", per_task.mean(1), per_task, kind="source", task="a+b",
          tasks=["a", "b"], method="pre", env_steps=2000, diagnostics={"recon_mse_end": 0.5})
    use = SourceUse(slot="pre", run_id="src", checkpoint_sha256="0" * 64, env_steps=2000,
                    wall_time_s=40.0)
    for task in ("a", "b"):
        _save(tmp_path, f"{task}-scratch", STEPS / 100, task=task, tasks=[task], is_baseline=True)
        _save(tmp_path, f"{task}-ft", STEPS / 100 + 1, task=task, tasks=[task], method="ft",
              baseline_run_id=f"{task}-scratch", provenance=_prov([use]))
    return load_results(tmp_path)


def test_task_curves_round_trip_and_reject_a_wrong_header(tmp_path):
    write_task_curves(tmp_path, ["a", "b"], [0, 10], [(1.0, 2.0), (3.0, 4.0)])
    curves = read_task_curves(tmp_path / "task_curves.csv", ["a", "b"])
    assert curves["b"].returns.tolist() == [2.0, 4.0] and curves["a"].steps.tolist() == [0, 10]
    with pytest.raises(ResultError, match="expected header 'env_steps,a,c'"):
        read_task_curves(tmp_path / "task_curves.csv", ["a", "c"])
    with pytest.raises(ValueError, match="1 task scores for 2 tasks"):
        write_task_curves(tmp_path, ["a", "b"], [0], [(1.0,)])
    short = tmp_path / "short.csv"
    short.write_text("env_steps,a,b\n0,1.0,2.0\n10,3.0\n")
    with pytest.raises(ResultError, match="short.csv: malformed row"):
        read_task_curves(short, ["a", "b"])


def test_equal_compute_compares_the_source_per_task_with_scratch_at_t_over_n(runs):
    rows = {r["task"]: r for r in C.equal_compute(runs, "scratch", reps=200, seed=0)}
    a, b = rows["a"], rows["b"]
    assert a["n_tasks"] == 2 and a["source_steps"] == 2000
    assert a["source_final"]["point"] == pytest.approx(4.0)
    assert b["source_final"]["point"] == pytest.approx(2.0)
    # scratch = steps / 100: at T/N = 1000 it is 10; at T = 2000 the run has stopped short
    assert a["scratch_at_t_over_n"]["point"] == pytest.approx(10.0)
    assert a["n_scratch_at_t"] == 0 and a["scratch_at_t"] is None


def test_shared_cost_divides_the_source_among_the_targets_that_reuse_it(runs):
    shares = C.source_shares([r for r in runs if r.record.kind == "target"])
    assert shares == {"src": 2}
    ft = next(r for r in runs if r.record.run_id == "a-ft")
    scratch = next(r for r in runs if r.record.run_id == "a-scratch")
    assert C.source_cost(ft)[0] == 2000 and C.source_cost(ft, shares)[0] == 1000
    # full charge: the shifted curve starts at 2000, past scratch's end -> no common window
    assert C.charged_pair(ft, scratch) is None
    # shared by 2: shifted by 1000, the window shrinks to the single step 1000
    assert C.charged_pair(ft, scratch, shares) is None
    # shared by 4: shifted by 500, window [500, 1000]; ft climbs 1 -> 6, scratch 5 -> 10
    ta, sa = C.charged_pair(ft, scratch, {"src": 4})
    assert (ta, sa) == (pytest.approx(3.5), pytest.approx(7.5))


def test_report_shows_the_equal_compute_table_and_shared_cost(runs):
    rep = build_report(runs, None, reps=200, generated="today")
    assert [r["task"] for r in rep["equal_compute"]] == ["a", "b"]
    cell = next(c for c in rep["cells"] if c["method"] == "ft" and c["task"] == "a")
    assert cell["transfer"]["cost_charged_shared"]["source_env_steps"] == 1000
    md = render_markdown([rep], "root")
    assert "equal compute" in md and "| pre | a | 2 | 2000 |" in md
    assert "## Source diagnostics" in md and "| src | 0.50 |" in md
