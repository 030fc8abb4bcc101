"""Leaderboard numbers against hand-computed values on small synthetic runs written to disk."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import report as R, report_md
from benchmarks.report import Reference, SuiteFacts, build_report, write_report
from benchmarks.results import (Provenance, ResultError, RunRecord, SourceUse, load_results,
                                write_curve, write_record, write_task_curves)
from benchmarks.suite import SuiteError

STEPS = np.arange(0, 1001, 100)          # 11 evaluation points over 1000 env steps
OFFSETS = {0: 0.0, 1: 0.5, 2: -0.5}      # per-seed shift of the whole curve
SOURCE_STEPS = 200


def _prov(sources=()):
    return Provenance(config_hash="h", git_commit="c", packages={}, python="3.11", platform="x",
                      sources=list(sources))


def _save(root, run_id, returns=None, **kw):
    base = dict(run_id=run_id, suite="fake", profile="smoke", kind="target", task="reach",
                tasks=["reach"], method="scratch", seed=0, status="completed", budget=1000,
                env_steps=1000, wall_time_s=10.0, provenance=_prov())
    record = RunRecord(**{**base, **kw})
    run_dir = root / record.suite / record.profile / "runs" / run_id
    write_record(run_dir, record)
    if returns is not None:
        write_curve(run_dir, STEPS, returns)
    return run_dir


def _populate(root, task="reach", lift=3.0, methods=("transfer",)):
    """Scratch returns = steps/100 + offset; transfer = the same + ``lift``, paired per seed."""
    src = SourceUse(slot="wm", run_id="src", checkpoint_sha256="0" * 64,
                    env_steps=SOURCE_STEPS, wall_time_s=4.0)
    for seed, off in OFFSETS.items():
        sid = f"{task}-scratch-{seed}"
        _save(root, sid, STEPS / 100 + off, task=task, tasks=[task], seed=seed, is_baseline=True)
        for m in methods:
            _save(root, f"{task}-{m}-{seed}", STEPS / 100 + off + lift, task=task, tasks=[task],
                  method=m, seed=seed, baseline_run_id=sid, provenance=_prov([src]),
                  diagnostics={"wm_loss": float(seed + 1)})


@pytest.fixture()
def root(tmp_path):
    _populate(tmp_path)
    _save(tmp_path, "reach-transfer-3", task="reach", method="transfer", seed=3,
          status="failed", error="boom", baseline_run_id="reach-scratch-3", provenance=_prov())
    _save(tmp_path, "src", STEPS / 100, kind="source", method="pretrain", env_steps=200,
          wall_time_s=10.0)
    return tmp_path


FACTS = SuiteFacts(baseline="scratch", thresholds={"reach": 5.0}, primary="auc",
                   references=(Reference("dreamer-paper", "Doe et al., 2021", "auc",
                                         {"reach": {"scratch": 4.25, "transfer": 7.75}}),))


def _cell(report, method, task="reach"):
    return next(c for c in report["cells"] if c["method"] == method and c["task"] == task)


def test_cell_numbers_match_hand_computed(root):
    report = build_report(load_results(root), FACTS, reps=500, generated="2024-01-01")
    scratch, transfer = _cell(report, "scratch"), _cell(report, "transfer")
    # Linear curves: AUC = mean of the line = 5 + offset; the offsets average to 0.
    assert scratch["auc"]["point"] == pytest.approx(5.0)
    assert transfer["auc"]["point"] == pytest.approx(8.0)
    assert transfer["auc"]["low"] <= 8.0 <= transfer["auc"]["high"]
    # Final over the last 10%: steps 900 and 1000 -> 9.5 (+3 for transfer).
    assert scratch["final"]["point"] == pytest.approx(9.5)
    assert transfer["final"]["point"] == pytest.approx(12.5)
    assert (scratch["n_seeds"], transfer["n_seeds"], transfer["n_failed"]) == (3, 3, 1)
    t = transfer["transfer"]
    assert t["n_pairs"] == 3 and t["n_unpaired"] == 0
    assert t["jumpstart"]["point"] == pytest.approx(3.0)
    assert t["transfer_ratio"] == pytest.approx(8.0 / 5.0)
    assert t["probability_of_improvement"]["point"] == pytest.approx(1.0)
    # Threshold 5, held over 3 evaluations after step 0 (the step is the window's last):
    # scratch holds it from 600, 600, 700; transfer from 300, 300, 400.
    assert t["threshold"]["scratch_steps"] == pytest.approx(1900 / 3)
    assert t["threshold"]["target_steps"] == pytest.approx(1000 / 3)
    assert t["threshold"]["reduction_pct"] == pytest.approx(100 * (1 - 1000 / 1900))
    ci = t["threshold"]["reduction_ci"]  # pairs resampled: 300/600, 300/600 and 400/700
    assert ci["point"] == pytest.approx(100 * (1 - 1000 / 1900))
    assert 100 * (1 - 400 / 700) <= ci["low"] <= ci["point"] <= ci["high"] <= 50.0
    # best evaluation after step 0: the last point, 10 (+3 for transfer)
    assert scratch["best"]["point"] == pytest.approx(10.0)
    assert transfer["best"]["point"] == pytest.approx(13.0)
    # Shifted by 200 source steps, transfer is scratch + 1 on the window [200, 1000].
    cc = t["cost_charged"]
    assert cc["n_pairs"] == 3 and cc["source_env_steps"] == SOURCE_STEPS
    assert cc["difference"]["point"] == pytest.approx(1.0)
    assert cc["scratch_auc"]["point"] == pytest.approx(6.0)
    assert scratch["transfer"] is None


def test_transfer_ratio_of_negative_returns_is_not_shown_as_a_gain(tmp_path):
    """Returns shifted to -15 .. -5: scratch's AUC is -10, the worse transfer's (lift -1) -11;
    the raw ratio 1.1 would read as a 10 % gain, so without a fixed scale it is undefined and
    says why; on the suite's scale (random -20 -> 0, reference 0 -> 1) it is (9/20) / (10/20)."""
    for seed, off in OFFSETS.items():
        _save(tmp_path, f"scratch-{seed}", STEPS / 100 - 15 + off, seed=seed, is_baseline=True)
        _save(tmp_path, f"worse-{seed}", STEPS / 100 - 16 + off, method="worse", seed=seed,
              baseline_run_id=f"scratch-{seed}")
    raw = _cell(build_report(load_results(tmp_path), FACTS, reps=200), "worse")["transfer"]
    assert raw["transfer_ratio"] is None and raw["transfer_ratio_basis"] == "raw"
    assert raw["transfer_ratio_note"].startswith("undefined: scratch's raw AUC is -10")
    scaled = SuiteFacts(random_scores={"reach": -20.0}, reference_scores={"reach": 0.0})
    report = build_report(load_results(tmp_path), scaled, reps=200)
    t = _cell(report, "worse")["transfer"]
    assert t["transfer_ratio"] == pytest.approx(0.9) and t["transfer_ratio_basis"] == "normalised"
    md = "\n".join(report_md._md_group(report))
    assert "| worse | 3 |" in md and "| 0.90 |" in md
    raw_md = "\n".join(report_md._md_group(build_report(load_results(tmp_path), FACTS, reps=200)))
    assert "— (undefined: scratch's raw AUC is -10" in raw_md


def test_a_multi_task_source_shows_its_time_to_threshold_per_task(tmp_path):
    """The source's per-task curves are judged against each task's threshold: task a holds 5
    from step 600; task b never reaches it; task c has no threshold and is not shown."""
    run_dir = _save(tmp_path, "mt", STEPS / 100, kind="source", method="mt", task="a+b+c",
                    tasks=["a", "b", "c"])
    write_task_curves(run_dir, ["a", "b", "c"], STEPS,
                      zip(STEPS / 100, STEPS / 1000, STEPS / 100))
    facts = SuiteFacts(thresholds={"a": 5.0, "b": 5.0})
    report = build_report(load_results(tmp_path), facts, reps=50)
    (row,) = report["sources"]
    assert row["task_thresholds"] == {
        "a": {"value": 5.0, "mean_steps": 600.0, "reached": 1, "of": 1},
        "b": {"value": 5.0, "mean_steps": None, "reached": 0, "of": 1}}
    assert "| a: 600.0 (1/1); b: never (0/1) |" in R.render_markdown([report], tmp_path)


def test_sources_diagnostics_references_aggregates(root):
    report = build_report(load_results(root), FACTS, reps=200)
    # a single-task source is a from-scratch run on its task: its time to the threshold is shown
    assert report["sources"] == [{"run_id": "src", "source": "pretrain", "tasks": "reach", "seed": 0,
                                  "status": "completed", "env_steps": 200, "wall_time_s": 10.0,
                                  "throughput": 20.0, "diagnostics": {},
                                  "threshold": {"value": 5.0, "mean_steps": 600.0,
                                                "reached": 1, "of": 1}}]
    assert "| src | pretrain | reach | 0 | completed | 200 | 10.0 | 20.0 | 600.0 (1/1) |" \
        in R.render_markdown([report], root)
    never = build_report(load_results(root), SuiteFacts(thresholds={"reach": 50.0}), reps=50)
    assert never["sources"][0]["threshold"] == {"value": 50.0, "mean_steps": None,
                                                "reached": 0, "of": 1}
    assert "| never (0/1) |" in R.render_markdown([never], root)
    plain = build_report(load_results(root), SuiteFacts(), reps=50)
    assert "threshold" not in plain["sources"][0]
    assert "steps to threshold" not in R.render_markdown([plain], root).split("## Sources")[1]
    diag = {d["method"]: d["values"] for d in report["diagnostics"]}
    assert diag["transfer"] == {"wm_loss": pytest.approx(2.0)}
    rows = {r["method"]: r for r in report["references"][0]["rows"]}
    assert rows["transfer"]["paper"] == 7.75 and rows["transfer"]["ours"] == pytest.approx(8.0)
    agg = report["aggregates"]
    assert agg["normalisation"] == "raw"
    assert "no random and reference score for reach" in agg["note"]
    assert agg["methods"]["transfer"]["mean"]["point"] == pytest.approx(8.0)


def test_references_keep_tasks_that_ran_and_printed_values(root):
    facts = SuiteFacts(references=(
        Reference("t1", "Sasso et al. (2023), Table 1", "auc",
                  {"reach": {"scratch": "1199 ± 558"}, "push": {"scratch": "?49? ± 44?"}}),
        Reference("t2", "Sasso et al. (2023), Table 2", "final", {"push": {"scratch": 3.0}})))
    report = build_report(load_results(root), facts, reps=50)
    assert [r["name"] for r in report["references"]] == ["t1"]  # t2 has no task that ran
    assert report["references"][0]["rows"] == [
        {"task": "reach", "method": "scratch", "paper": "1199 ± 558",
         "ours": report["references"][0]["rows"][0]["ours"]}]
    assert "| reach | scratch |" in "\n".join(report_md._md_group(report)) and "1199 ± 558" in "\n".join(report_md._md_group(report))


#: reach: random 1, reference 5 -> (x - 1) / 4; push: random 5, reference 7 -> (x - 5) / 2
SCALED = SuiteFacts(random_scores={"reach": 1.0, "push": 5.0},
                    reference_scores={"reach": 5.0, "push": 7.0})


def _two_tasks(root, methods=("transfer",)):
    _populate(root, "reach", lift=3.0, methods=methods)
    _populate(root, "push", lift=1.0, methods=methods)
    return load_results(root)


def test_aggregates_on_the_fixed_scale_match_hand_computed(tmp_path):
    agg = build_report(_two_tasks(tmp_path), SCALED, reps=200)["aggregates"]
    assert agg["normalisation"].startswith("per task (x - random) / (reference - random)")
    assert agg["note"] is None
    assert agg["scale"] == {"push": {"random": 5.0, "reference": 7.0},
                            "reach": {"random": 1.0, "reference": 5.0}}
    scratch, transfer = agg["methods"]["scratch"], agg["methods"]["transfer"]
    # scratch AUC per seed 5, 5.5, 4.5 on both tasks: reach 1, 1.125, 0.875; push 0, .25, -.25
    assert scratch["mean"]["point"] == pytest.approx(0.5)      # 3 / 6
    assert scratch["median"]["point"] == pytest.approx(0.5)    # per-task means 1 and 0
    # middle of -.25, 0, .25, .875, 1, 1.125 (one cut at each end): 2.125 / 4
    assert scratch["iqm"]["point"] == pytest.approx(0.53125)
    # transfer: reach 8, 8.5, 7.5 -> 1.75, 1.875, 1.625; push 6, 6.5, 5.5 -> .5, .75, .25
    assert transfer["mean"]["point"] == pytest.approx(1.125)   # 6.75 / 6
    assert transfer["median"]["point"] == pytest.approx(1.125)  # per-task means 1.75 and 0.5
    assert transfer["tasks"] == ["push", "reach"] and transfer["n_seeds"] == 3
    # optimality gap: mean of 1 - min(x, 1): scratch reach 0, 0, .125; push 1, .75, 1.25 -> 3.125/6
    assert scratch["optimality_gap"]["point"] == pytest.approx(3.125 / 6)
    assert scratch["per_task"] == pytest.approx({"reach": 1.0, "push": 0.0})
    assert transfer["per_task"] == pytest.approx({"reach": 1.75, "push": 0.5})
    md = "\n".join(report_md._md_aggregates(agg))
    assert "| transfer | 0.50 | 1.75 |" in md  # the per-task table, tasks in order push, reach
    assert "push: random 5.00, reference 7.00; reach: random 1.00, reference 5.00" in md


def test_a_better_method_leaves_the_others_scores_alone(tmp_path_factory):
    """The old scale ran from scratch to the best method, so a better method joining moved
    every other method's score; on the fixed scale nothing else moves."""
    alone = build_report(_two_tasks(tmp_path_factory.mktemp("a")), SCALED, reps=200)
    root = tmp_path_factory.mktemp("b")
    _two_tasks(root)
    _populate(root, "reach", lift=20.0, methods=("better",))
    _populate(root, "push", lift=20.0, methods=("better",))
    joined = build_report(load_results(root), SCALED, reps=200)
    for method in ("scratch", "transfer"):
        assert joined["aggregates"]["methods"][method] == alone["aggregates"]["methods"][method]
    # better: reach (25 - 1) / 4 = 6, push (25 - 5) / 2 = 10 per seed on average -> mean 8
    assert joined["aggregates"]["methods"]["better"]["mean"]["point"] == pytest.approx(8.0)


@pytest.mark.parametrize("facts, because", [
    (SuiteFacts(random_scores={"reach": 1.0}, reference_scores={"reach": 5.0}),
     "declares no random and reference score for push"),
    (SuiteFacts(random_scores={"reach": 1.0, "push": 5.0}, reference_scores={"reach": 5.0}),
     "declares no random and reference score for push"),
    (SuiteFacts(random_scores=SCALED.random_scores, reference_scores=SCALED.reference_scores,
                scores_hold_for=("laptop",)), "profiles laptop, not those of profile 'smoke'"),
])
def test_aggregates_without_the_whole_scale_are_raw_and_say_why(tmp_path, facts, because):
    report = build_report(_two_tasks(tmp_path), facts, reps=200)
    agg = report["aggregates"]
    assert agg["normalisation"] == "raw" and agg["scale"] == {}
    assert agg["note"].startswith("raw values: ") and because in agg["note"]
    # raw AUC: scratch 5 +- .5 on both tasks, transfer +3 on reach and +1 on push
    assert agg["methods"]["scratch"]["mean"]["point"] == pytest.approx(5.0)
    assert agg["methods"]["transfer"]["mean"]["point"] == pytest.approx(7.0)
    md = R.render_markdown([report], tmp_path)
    assert f"## Aggregates over tasks (auc, raw)\n\n- note: {agg['note']}" in md


def test_write_report_files(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    paths = write_report(root, out, suite_lookup=lambda name: FACTS, reps=200)
    md, js = out / "leaderboard.md", out / "leaderboard.json"
    assert md in paths and js in paths
    text = md.read_text()
    assert text.startswith("# Leaderboard: suite `fake`, profile `smoke`")
    assert "runs: 8" in text and "Doe et al., 2021" in text
    assert "| reach | transfer | 8.00 | 7.75 |" in text     # ours beside the paper's value
    assert "8.00 ± [" in text
    data = json.loads(js.read_text())
    ref = data["reports"][0]["references"][0]
    assert ref["citation"] == "Doe et al., 2021" and ref["rows"][1]["paper"] == 7.75
    png = out / "curves_fake_smoke_reach.png"
    assert png in paths and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 1000
    # the single-task source's own curve, with the task's threshold line
    src = out / "curves_fake_smoke_reach-sources.png"
    assert src in paths and src.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_source_figure_draws_the_threshold_and_target_figures_keep_their_methods(root):
    from benchmarks import plots
    results = load_results(root)
    by_label = {}
    for path in plots.plot_learning_curves(results, "fake", "smoke", root / "figs", {"reach": 5.0}):
        by_label[path.name] = path
    assert sorted(by_label) == ["curves_fake_smoke_reach-sources.png", "curves_fake_smoke_reach.png"]
    plain = plots.plot_learning_curves(results, "fake", "smoke", root / "plain")  # no thresholds
    assert [p.name for p in plain] == ["curves_fake_smoke_reach.png"]
    fig = plots._draw("reach-sources", "fake", "smoke", {"pretrain": [r for r in results
                      if r.record.kind == "source"]}, set(), threshold=5.0)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"pretrain (n=1)", "threshold 5"}
    assert list(lines["threshold 5"].get_ydata()) == [5.0, 5.0]


def test_unloadable_suite_reports_without_references(root):
    def lookup(name):
        raise SuiteError(f"{name}: unknown suite")
    write_report(root, suite_lookup=lookup, reps=100)
    text = (root / "leaderboard.md").read_text()
    assert "could not be loaded" in text and "Paper reference" not in text


def test_truncated_record_raises_naming_file(root):
    bad = root / "fake" / "smoke" / "runs" / "reach-transfer-1" / "record.json"
    bad.write_text(bad.read_text()[:40])
    with pytest.raises(ResultError, match="reach-transfer-1"):
        write_report(root, suite_lookup=lambda name: FACTS)


def test_build_report_rejects_mixed_groups(root):
    _save(root, "other", STEPS / 100, profile="full")
    with pytest.raises(ValueError, match="one suite/profile"):
        build_report(load_results(root), FACTS)


def test_repeated_eval_step_keeps_last_value(tmp_path):
    # A resumed run can evaluate its resume step twice; the later value counts.
    run_dir = _save(tmp_path, "resumed")
    write_curve(run_dir, [0, 500, 500, 1000], [0.0, 99.0, 5.0, 10.0])
    report = build_report(load_results(tmp_path), FACTS, reps=50)
    assert _cell(report, "scratch")["auc"]["point"] == pytest.approx(5.0)


@pytest.mark.parametrize("transfer_methods, comparison, heading", [
    (None, "transfer", "## Transfer vs scratch (paired runs)"),        # suite unknown
    (("transfer",), "transfer", "## Transfer vs scratch (paired runs)"),
    ((), "agents", "## Methods vs the baseline (paired runs; every method learns from scratch)"),
])
def test_paired_rows_say_whether_they_compare_transfer_or_agents(root, transfer_methods,
                                                                  comparison, heading):
    # a suite whose paired methods are other agents from scratch (atari100k's DreamerV2 against
    # EfficientZero) must not call the comparison "transfer vs scratch"
    facts = SuiteFacts(baseline="scratch", primary="auc", transfer_methods=transfer_methods)
    rep = build_report(load_results(root), facts, reps=50)
    assert rep["settings"]["comparison"] == comparison
    text = "\n".join(report_md._md_group(rep))
    assert heading in text
    assert ("Transfer vs scratch" in text) == (comparison == "transfer")


def test_agents_comparison_drops_the_source_cost_columns(root):
    facts = SuiteFacts(baseline="scratch", primary="auc", transfer_methods=())
    text = "\n".join(report_md._md_group(build_report(load_results(root), facts, reps=50)))
    header = next(line for line in text.splitlines() if line.startswith("| task | method | pairs"))
    assert "AUC ratio" in header and "(method / baseline)" in header
    assert "source decisions" not in header and "cost-charged" not in header


@pytest.mark.parametrize("transfer_methods", [("transfer",), ()])
def test_the_site_prints_the_same_paired_table_as_the_markdown(root, transfer_methods):
    # one definition of the paired columns and cells: the leaderboard page must not drift from
    # leaderboard.md (it once printed the raw reduction % where the markdown gave its CI)
    import re

    from benchmarks.publish import render as H
    facts = SuiteFacts(baseline="scratch", primary="auc", transfer_methods=transfer_methods)
    rep = build_report(load_results(root), facts, reps=50)
    html = H.render("group.html.j2", report=rep, root="../../", generated="now", figures=[],
                    downloads=[], provenance=[], rejected=[], origins=[], definitions=[],
                    diag_names=[])
    table = html[html.index('<table class="transfer">'):]
    table = table[:table.index("</table>")]
    heads = re.findall(r"<th>(.*?)</th>", table)
    cells = re.findall(r"<td>(.*?)</td>", table)
    md = [line for line in report_md._md_group(rep) if line.startswith("| task | method | pairs")]
    assert heads == md[0].strip("| ").split(" | ")
    assert len(heads) == (11 if transfer_methods else 8)
    row = next(c for c in rep["cells"] if c["transfer"])
    assert cells[:len(heads)] == report_md.paired_row(row, rep["settings"]["comparison"])
