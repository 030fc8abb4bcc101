"""Leaderboard per task x method with bootstrap CIs; the definitions below go into leaderboard.md.

* Verdict: per target task and transfer method, d = primary metric of the transfer run minus
  that of its paired scratch run (same seed), averaged over pairs, with a 95% bootstrap CI that
  resamples pairs. **better**: the whole CI of d is above 0; **worse**: the whole CI is below
  0; **no detectable difference**: the CI contains 0; **too few pairs to judge**: fewer than 5
  completed pairs (with fewer, a percentile bootstrap interval is about the range of the pairs,
  which holds their median only 1 - 2 * 0.5**n of the time: 75 % for 3 pairs). P(improve) (CI over seeds) is shown beside it and does not decide. The
  verdict holds only at the stated budget: target env steps per run (agent decisions x action
  repeat) and number of pairs.
* Reference tables: each states the paper's budget (env steps per target run) and
  observation and ours; where either differs, or is not stated, the values are marked not
  comparable. Given random-policy values for both sides, each side is also shown as
  (x - random) / (scratch - random) against its own random policy and scratch baseline.
* Units: budgets, curves, decisions to threshold, source costs and throughput count agent
  decisions (one ``env.step`` of the agent; PyBullet tasks repeat each action for 2 simulator
  steps, Mario for 4). "env steps" in the verdict and reference lines are decisions x action
  repeat, the unit papers report.
* AUC = mean evaluation return over the run (trapezoid area / step span); final = mean return
  over the last ``final_fraction`` of the span. Cells show the mean over seeds with a 95%
  stratified bootstrap CI (an n_seeds x 1 matrix, ``mean`` statistic).
* Transfer metrics pair each transfer run with the scratch run named by its ``baseline_run_id``.
  Jumpstart and the cost-charged difference are averaged over pairs (CI over pairs); transfer
  ratio = mean paired target AUC / mean paired scratch AUC, both normalised to the task's fixed
  random and reference scores where the suite declares them for the profile (raw otherwise), and
  shown only where scratch's area is > 0 and the target's >= 0 (a ratio of negative areas reads
  backwards: "—" and the reason instead); time to threshold is the mean over runs (undefined if
  any run never reaches the threshold), its reduction 100 (1 - mean target time / mean scratch
  time) with a CI from resampling pairs (only where every paired run held the threshold).
* Best = a run's highest evaluation after step 0 (REPAINT's "best score"), mean over seeds.
* Cost-charged view: the transfer curve is shifted right by the env steps its sources consumed
  (the full cost, even for a source shared by several targets), then compared with its scratch
  run by mean return over the total-step window both cover, ``[max(source steps, scratch
  start), min(shifted end, scratch end)]``, where both agents have used the same env steps.
  Pairs whose sources cost at least the target budget have no such window and are left out.
  The shared-cost column charges each source's steps divided by M, the number of target tasks
  that reuse it (the baseline at t + T/M of Voskuil, "Pre-training World Models to efficiently
  learn related tasks", Master's thesis, Leiden University, 2022, §4.2); it appears when a source
  serves several.
* Equal compute: a source trained T steps on N tasks, scored per task at its last evaluation,
  against that task's scratch runs at T/N steps (N such baselines cost one source) and at T;
  a scratch run shorter than the step is left out.
* Aggregates: each run's primary metric is normalised per task to fixed references declared in
  the suite, x -> (x - random) / (reference - random), like Atari's human-normalised score:
  random = the mean return of uniformly random actions on the task (measured, stated in the
  suite's YAML); reference = the task's threshold, the suite's stated "solved" level, or where
  the suite says so (Atari) the published human score, which makes it the human-normalised
  score. So random play scores 0 and the reference 1, and no method's score depends on which
  other methods ran. Mean and IQM (mean of the middle 50 %) pool the (seeds x tasks) matrix of
  one method; the median is over tasks of the per-task means (rliable's definitions), each
  with a 95 % stratified bootstrap CI; on the fixed scale also the optimality gap (the mean
  shortfall below the reference, a score above it counting as 1) and each task's normalised
  mean over seeds. Where a task of the report has no declared random and reference score, or
  the profile's episodes are not those the scores were measured at, every aggregate of that
  report is raw and a note says why.
* Run counts: failed/blocked runs count against a method; interrupted runs (stopped by a signal,
  resumable) and running ones are pending, counted apart and left out of every number.
"""
from __future__ import annotations

import json
import textwrap
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from benchmarks.results import (NO_RUNS, ResultError, RunResult, as_jsonable, atomic_write_text,
                                curve_of, load_results)
from benchmarks import diagnostics_report as D, report_aggregates as A, report_md, report_refs
from benchmarks.suite_facts import Reference, SuiteFacts, as_facts, facts_from_suite
from benchmarks.report_cost import charged, ci as _ci, equal_compute, source_shares
from benchmarks.suite import Suite, SuiteError, load_suite, suite_names
from lightning_wm import metrics as M
from lightning_wm.metrics.curves import THRESHOLD_DEFINITION

#: the facts' types live in benchmarks.suite_facts; callers may import them from here
__all__ = ["Reference", "SuiteFacts", "as_facts", "build_report", "facts_from_suite",
           "comparison", "registered_suite", "render_markdown", "run_scores", "suite_facts",
           "write_report"]

FAILED = ("failed", "blocked")
#: not finished yet, through no fault of the method: a rerun resumes or restarts them
PENDING = ("interrupted", "running")
REFERENCE_PATHS = {"auc": ("auc", "point"), "final": ("final", "point"),
                   "jumpstart": ("transfer", "jumpstart", "point"),
                   "transfer_ratio": ("transfer", "transfer_ratio"),
                   "threshold_reduction": ("transfer", "threshold", "reduction_pct"),
                   "best": ("best", "point")}


def run_scores(r: RunResult, facts: SuiteFacts) -> dict[str, float]:
    """AUC and final performance of one completed run."""
    s, y = curve_of(r)
    return {"auc": M.area_under_curve(s, y),
            "final": M.final_performance(s, y, facts.final_fraction)}


def _mean_time(times: list[float]) -> float:
    # One unreached run makes the mean undefined; inf becomes null in JSON.
    return float(np.mean(times)) if times else float("nan")


def _threshold(runs: list[RunResult], value: float, task: str | None = None) -> dict:
    """Held time to ``value`` per run (of the runs' curves on ``task`` when given)."""
    times = [M.time_to_threshold(*curve_of(r, task), value) for r in runs]
    return {"value": value, "mean_steps": _mean_time(times),
            "reached": int(np.isfinite(times).sum()), "of": len(times)}


def _transfer(pairs: list, facts: SuiteFacts, task: str, reps: int, seed: int,
              shares: Mapping[str, int] | None = None,
              scale: tuple[float, float] | None = None) -> dict:
    primary = facts.primary
    t_sc = [run_scores(t, facts) for t, _ in pairs]
    s_sc = [run_scores(s, facts) for _, s in pairs]
    jumps = [M.jumpstart(*curve_of(t), *curve_of(s), facts.early_fraction) for t, s in pairs]
    out: dict[str, Any] = {
        "n_pairs": len(pairs), "jumpstart": _ci(jumps, reps, seed),
        "paired_difference": report_refs.paired_difference(
            [(x[primary], y[primary]) for x, y in zip(t_sc, s_sc)], reps, seed),
        "decisions_per_run": float(np.mean([t.record.env_steps for t, _ in pairs])),
        **report_refs.transfer_ratio_block(np.mean([x["auc"] for x in t_sc]),
                                           np.mean([x["auc"] for x in s_sc]), scale),
        "probability_of_improvement": M.probability_of_improvement_ci(
            [[x[primary]] for x in t_sc], [[x[primary]] for x in s_sc],
            reps=reps, seed=seed).as_dict()}
    if task in facts.thresholds:
        thr = facts.thresholds[task]
        times_t = [M.time_to_threshold(*curve_of(t), thr) for t, _ in pairs]
        times_s = [M.time_to_threshold(*curve_of(s), thr) for _, s in pairs]
        tt, ts = _mean_time(times_t), _mean_time(times_s)
        ci = M.threshold_reduction_ci(times_t, times_s, reps=reps, seed=seed)
        out["threshold"] = {"target_steps": tt, "scratch_steps": ts,
                            "reduction_pct": M.threshold_reduction(tt, ts),
                            "reduction_ci": ci.as_dict() if ci else None}
    out["cost_charged"] = charged(pairs, reps, seed)
    if shares and any(shares.get(u.run_id, 1) > 1 for t, _ in pairs
                      for u in t.record.provenance.sources):
        out["cost_charged_shared"] = charged(pairs, reps, seed, shares)
    return out


def _cell(task: str, method: str, runs: list[RunResult], by_id: dict, facts: SuiteFacts,
          reps: int, seed: int, shares: Mapping[str, int] | None = None,
          scale: tuple[float, float] | None = None) -> dict:
    done = [r for r in runs if r.record.status == "completed" and r.curve is not None]
    scores = [run_scores(r, facts) for r in done]
    status = Counter(r.record.status for r in runs)
    cell: dict[str, Any] = {
        "task": task, "method": method, "n_seeds": len({r.record.seed for r in done}),
        "n_failed": sum(status[s] for s in FAILED),
        "n_pending": sum(status[s] for s in PENDING), "status": dict(status),
        "is_baseline": any(r.record.is_baseline for r in runs),
        "env_steps": float(np.mean([r.record.env_steps for r in done])) if done else None,
        "auc": _ci([s["auc"] for s in scores], reps, seed),
        "final": _ci([s["final"] for s in scores], reps, seed),
        "best": _ci([_best(r) for r in done], reps, seed), "transfer": None}
    if task in facts.thresholds and done:
        cell["threshold"] = _threshold(done, facts.thresholds[task])
    if any(r.record.baseline_run_id for r in runs):
        pairs = [(r, by_id[r.record.baseline_run_id]) for r in done
                 if r.record.baseline_run_id in by_id]
        cell["transfer"] = (_transfer(pairs, facts, task, reps, seed, shares, scale) if pairs
                            else {"n_pairs": 0})
        cell["transfer"]["n_unpaired"] = len(done) - len(pairs)
    return cell


def _best(r: RunResult) -> float:
    """The run's best evaluation after step 0 (REPAINT's "best score"; step 0 is untrained)."""
    s, y = curve_of(r)
    return float(np.max(y[s > 0] if (s > 0).any() else y))


def _per_seed(targets: list[RunResult], facts: SuiteFacts) -> dict:
    """(task, method) -> seed -> primary metric (mean if a seed ran twice)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in targets:
        if r.record.status == "completed" and r.curve is not None:
            acc[(r.record.task, r.record.method)][r.record.seed].append(
                run_scores(r, facts)[facts.primary])
    return {k: {s: float(np.mean(v)) for s, v in d.items()} for k, d in acc.items()}


def _sources(results: list[RunResult], facts: SuiteFacts) -> list[dict]:
    out = []
    for r in sorted(results, key=lambda r: (r.record.method, r.record.seed, r.record.run_id)):
        if r.record.kind != "source":
            continue
        row = {"run_id": r.record.run_id, "source": r.record.method, "tasks": r.record.task,
               "seed": r.record.seed, "status": r.record.status, "env_steps": r.record.env_steps,
               "wall_time_s": r.record.wall_time_s, "throughput": r.record.throughput,
               "diagnostics": dict(r.record.diagnostics)}
        thr = facts.thresholds.get(r.record.task)
        if thr is not None and r.curve is not None:
            row["threshold"] = _threshold([r], thr)
        # a multi-task source ("a+b") is judged per task, on its per-task curves
        per_task = {t: _threshold([r], facts.thresholds[t], t)
                    for t in sorted(r.task_curves or {}) if t in facts.thresholds}
        if per_task:
            row["task_thresholds"] = per_task
        out.append(row)
    return out


def build_report(results: list[RunResult], suite: Suite | SuiteFacts | None, *, reps: int = 2000,
                 seed: int = 0, generated: str | None = None, notes: list[str] | None = None) -> dict:
    """The leaderboard of one suite/profile as JSON-safe data (pure: reads no files)."""
    groups = {(r.record.suite, r.record.profile) for r in results}
    if len(groups) > 1:
        raise ValueError(f"build_report takes one suite/profile at a time, got {sorted(groups)}")
    name, profile = next(iter(groups)) if groups else ("", "")
    facts, notes = as_facts(suite), list(notes or [])
    if facts is None:
        facts = SuiteFacts()
        notes.append("suite settings unavailable: defaults used (AUC primary, fractions 0.1, "
                     "no thresholds, no paper references)")
    targets = [r for r in results if r.record.kind == "target"]
    by_id = {r.record.run_id: r for r in targets
             if r.record.status == "completed" and r.curve is not None}
    cells_in: dict = defaultdict(list)
    for r in targets:
        cells_in[(r.record.task, r.record.method)].append(r)
    shares = source_shares(targets)
    cells = [_cell(t, m, rs, by_id, facts, reps, seed, shares,
                   (A.scale([t], facts, profile)[0] or {}).get(t))
             for (t, m), rs in sorted(cells_in.items())]
    setups = facts.setups.get(profile, {})
    report = {
        "suite": name, "profile": profile, "n_runs": len(results), "n_targets": len(targets),
        "status": dict(Counter(r.record.status for r in results)),
        "generated": generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"baseline": facts.baseline, "primary": facts.primary,
                     "early_fraction": facts.early_fraction, "final_fraction": facts.final_fraction,
                     "thresholds": dict(facts.thresholds),
                     "comparison": comparison(cells, facts)},
        "notes": notes,
        "verdicts": report_refs.verdicts(cells, facts.baseline, facts.primary, setups),
        "cells": cells, "aggregates": A.aggregates(_per_seed(targets, facts), facts, profile,
                                                          reps, seed),
        "references": report_refs.reference_tables(cells, facts.references, REFERENCE_PATHS,
                                                   facts.baseline, setups),
        "sources": _sources(results, facts),
        "equal_compute": equal_compute(results, facts.baseline, reps, seed),
        "diagnostics": D.means(targets),
        "per_base_model": D.per_base_model(targets, facts.success_below),
        "success_below": dict(facts.success_below)}
    return as_jsonable(report)


def comparison(cells: list[dict], facts: SuiteFacts) -> str:
    """What the paired rows compare: ``"transfer"`` (a transfer method against scratch runs) or
    ``"agents"`` (every paired method learns from scratch too, e.g. another agent family)."""
    if facts.transfer_methods is None:
        return "transfer"
    paired = {c["method"] for c in cells if c["transfer"]}
    return "transfer" if paired & set(facts.transfer_methods) or not paired else "agents"


def registered_suite(name: str) -> Suite:
    """The suite a record names, looked up among the registered suites only: records come from
    other machines, and a file path there must not make the report read that file."""
    known = suite_names()
    if name not in known:
        raise SuiteError(f"suite '{name}' is not a registered suite (known: {', '.join(known)})")
    return load_suite(name)


def suite_facts(name: str, lookup: Callable) -> tuple[SuiteFacts | None, list[str]]:
    """The settings of suite ``name`` via ``lookup``, or ``None`` and a note saying why not."""
    try:
        return as_facts(lookup(name)), []
    except (ValueError, OSError) as e:  # SuiteError is a ValueError
        return None, [f"suite '{name}' could not be loaded, reported without references: {e}"]


def write_report(root: Path, out: Path | None = None,
                 suite_lookup: Callable[[str], Suite | SuiteFacts] = registered_suite, *,
                 reps: int = 2000) -> list[Path]:
    """Load the runs under ``root`` and write leaderboard.md/.json and curve PNGs into ``out``.

    A record's suite is looked up by registry name (``suite_lookup``); a name the registry does
    not know is reported with default settings, no thresholds and no paper references, and a
    note says so. Raises :class:`ResultError`, before anything is written, when ``root`` holds
    no runs, ``out`` is not a folder or any file below ``root`` is bad. Every file is written
    atomically: PNGs first, then leaderboard.json, then leaderboard.md, then scores.json/.csv.
    """
    root, out = Path(root), Path(out if out is not None else root)
    if out.exists() and not out.is_dir():
        raise ResultError(f"{out}: the report's output path exists and is not a folder")
    results = load_results(root)
    if not results:
        raise ResultError(NO_RUNS.format(root=root))
    for r in results:  # a bad figure array stops the report before any file is written
        D.check_figure_data(r.path)
    groups: dict = defaultdict(list)
    for r in results:
        groups[(r.record.suite, r.record.profile)].append(r)
    reports, facts_of = [], {}
    for (name, profile), runs in sorted(groups.items()):
        facts, notes = suite_facts(name, suite_lookup)
        facts_of[(name, profile)] = facts
        reports.append(build_report(runs, facts, reps=reps, notes=notes))
    js = json.dumps({"root": str(root), "reports": reports}, indent=2, allow_nan=False) + "\n"
    # raw score files (every run's curve, metrics, provenance) for third parties
    from benchmarks.scores import scores_document, write_scores
    doc = scores_document(results, reports)
    try:
        written = _write_files(out, groups, facts_of, js, render_markdown(reports, root), doc)
        return written + write_scores(out, doc)
    except OSError as e:
        raise ResultError(f"{e.filename or out}: cannot write the report ({e.strerror or e})") \
            from None


def _write_files(out: Path, groups: dict, facts_of: dict, js: str, md: str,
                 doc: dict) -> list[Path]:
    from benchmarks import plots  # matplotlib only when files are written
    from benchmarks.plots_embedding import plot_embeddings
    from benchmarks.plots_reconstruction import plot_reconstructions
    from benchmarks.plots_rliable import plot_rliable

    pngs = []
    for (name, profile), runs in sorted(groups.items()):
        facts = facts_of[(name, profile)]
        pngs += plots.plot_learning_curves(runs, name, profile, out,
                                           facts.thresholds if facts else None)
        pngs += plots.plot_source_curves(runs, name, profile, out,
                                         facts.thresholds if facts else None)
        pngs += plot_embeddings(runs, out)
        pngs += plot_reconstructions(runs, out)
        if facts is not None and facts.reference == "human":  # Atari: rliable's figures too
            pngs += [d.path for d in plot_rliable(doc, name, profile, out)]
    js_path = plots.figure_path(out, "leaderboard.json")
    md_path = plots.figure_path(out, "leaderboard.md")
    atomic_write_text(js_path, js)
    atomic_write_text(md_path, md)
    return [md_path, js_path, *pngs]


def render_markdown(reports: list[dict], root: Path | str) -> str:
    """leaderboard.md for ``reports``, with this module's definitions at the end."""
    # the threshold rule is defined once, beside the function that applies it
    held = textwrap.fill(f"* {THRESHOLD_DEFINITION} ``regress``'s learning gate uses the same "
                         "rule.", 98, subsequent_indent="  ")
    return report_md.render(reports, root, __doc__.split("\n\n", 1)[1] + held)
