"""Leaderboard per task x method with bootstrap CIs; the definitions below go into leaderboard.md.

* AUC = mean evaluation return over the run (trapezoid area / step span); final = mean return
  over the last ``final_fraction`` of the span. Cells show the mean over seeds with a 95%
  stratified bootstrap CI (an n_seeds x 1 matrix, ``mean`` statistic).
* Transfer metrics pair each transfer run with the scratch run named by its ``baseline_run_id``.
  Jumpstart and the cost-charged difference are averaged over pairs (CI over pairs); transfer
  ratio = mean paired target AUC / mean paired scratch AUC; time to threshold is the mean over
  runs (undefined if any run never reaches the threshold).
* Cost-charged view: the transfer curve is shifted right by the env steps its sources consumed
  (the full cost, even for a source shared by several targets), then compared with its scratch
  run by mean return over the total-step window both cover, ``[max(source steps, scratch
  start), min(shifted end, scratch end)]``, where both agents have used the same env steps.
  Pairs whose sources cost at least the target budget have no such window and are left out.
  The shared-cost column charges each source's steps divided by M, the number of target tasks
  that reuse it (the thesis's baseline at t + T/M); it appears when a source serves several.
* Equal compute: a source trained T steps on N tasks, scored per task at its last evaluation,
  against that task's scratch runs at T/N steps (N such baselines cost one source) and at T;
  a scratch run shorter than the step is left out.
* Aggregates: per task, x -> (x - scratch mean) / (best method mean - scratch mean), so scratch
  scores 0 and the best method 1; raw values with a single task, no scratch cell or a zero range.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from benchmarks.results import RunResult, as_jsonable, atomic_write_text, load_results
from benchmarks import diagnostics_report as D
from benchmarks.report_cost import charged, ci as _ci, curve_of, equal_compute, source_shares
from benchmarks.suite import Suite, load_suite
from lightning_wm import metrics as M

FAILED = ("failed", "blocked")
REFERENCE_PATHS = {"auc": ("auc", "point"), "final": ("final", "point"),
                   "jumpstart": ("transfer", "jumpstart", "point"),
                   "transfer_ratio": ("transfer", "transfer_ratio")}


@dataclass(frozen=True)
class Reference:
    """A paper's values for one metric: task -> method -> value."""
    name: str
    citation: str
    metric: str
    values: Mapping[str, Mapping[str, float | str]]


@dataclass(frozen=True)
class SuiteFacts:
    """The few suite settings the report and the regression check need, as plain values."""
    baseline: str = "scratch"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    learn_within: Mapping[str, int] = field(default_factory=dict)
    early_fraction: float = 0.1
    final_fraction: float = 0.1
    primary: str = "auc"
    references: tuple[Reference, ...] = ()
    success_below: Mapping[str, float] = field(default_factory=dict)


def facts_from_suite(suite: Suite) -> SuiteFacts:
    m = suite.metrics
    refs = tuple(Reference(r.name, r.citation, r.metric, r.values) for r in suite.references)
    return SuiteFacts(suite.baseline, dict(m.thresholds), dict(m.learn_within), m.early_fraction,
                      m.final_fraction, m.primary, refs, dict(m.success_below))


def as_facts(suite: Suite | SuiteFacts | None) -> SuiteFacts | None:
    return facts_from_suite(suite) if isinstance(suite, Suite) else suite


def run_scores(r: RunResult, facts: SuiteFacts) -> dict[str, float]:
    """AUC and final performance of one completed run."""
    s, y = curve_of(r)
    return {"auc": M.area_under_curve(s, y),
            "final": M.final_performance(s, y, facts.final_fraction)}


def _mean_time(times: list[float]) -> float:
    # One unreached run makes the mean undefined; inf becomes null in JSON.
    return float(np.mean(times)) if times else float("nan")


def _threshold(runs: list[RunResult], value: float) -> dict:
    times = [M.time_to_threshold(*curve_of(r), value) for r in runs]
    return {"value": value, "mean_steps": _mean_time(times),
            "reached": int(np.isfinite(times).sum()), "of": len(times)}


def _transfer(pairs: list, facts: SuiteFacts, task: str, reps: int, seed: int,
              shares: Mapping[str, int] | None = None) -> dict:
    primary = facts.primary
    t_sc = [run_scores(t, facts) for t, _ in pairs]
    s_sc = [run_scores(s, facts) for _, s in pairs]
    jumps = [M.jumpstart(*curve_of(t), *curve_of(s), facts.early_fraction) for t, s in pairs]
    out: dict[str, Any] = {
        "n_pairs": len(pairs), "jumpstart": _ci(jumps, reps, seed),
        "transfer_ratio": M.transfer_ratio(np.mean([x["auc"] for x in t_sc]),
                                           np.mean([x["auc"] for x in s_sc])),
        "probability_of_improvement": M.probability_of_improvement_ci(
            [[x[primary]] for x in t_sc], [[x[primary]] for x in s_sc],
            reps=reps, seed=seed).as_dict()}
    if task in facts.thresholds:
        thr = facts.thresholds[task]
        tt = _mean_time([M.time_to_threshold(*curve_of(t), thr) for t, _ in pairs])
        ts = _mean_time([M.time_to_threshold(*curve_of(s), thr) for _, s in pairs])
        out["threshold"] = {"target_steps": tt, "scratch_steps": ts,
                            "reduction_pct": M.threshold_reduction(tt, ts)}
    out["cost_charged"] = charged(pairs, reps, seed)
    if shares and any(shares.get(u.run_id, 1) > 1 for t, _ in pairs
                      for u in t.record.provenance.sources):
        out["cost_charged_shared"] = charged(pairs, reps, seed, shares)
    return out


def _cell(task: str, method: str, runs: list[RunResult], by_id: dict, facts: SuiteFacts,
          reps: int, seed: int, shares: Mapping[str, int] | None = None) -> dict:
    done = [r for r in runs if r.record.status == "completed" and r.curve is not None]
    scores = [run_scores(r, facts) for r in done]
    status = Counter(r.record.status for r in runs)
    cell: dict[str, Any] = {
        "task": task, "method": method, "n_seeds": len({r.record.seed for r in done}),
        "n_failed": sum(status[s] for s in FAILED), "status": dict(status),
        "is_baseline": any(r.record.is_baseline for r in runs),
        "auc": _ci([s["auc"] for s in scores], reps, seed),
        "final": _ci([s["final"] for s in scores], reps, seed), "transfer": None}
    if task in facts.thresholds and done:
        cell["threshold"] = _threshold(done, facts.thresholds[task])
    if any(r.record.baseline_run_id for r in runs):
        pairs = [(r, by_id[r.record.baseline_run_id]) for r in done
                 if r.record.baseline_run_id in by_id]
        cell["transfer"] = (_transfer(pairs, facts, task, reps, seed, shares) if pairs
                            else {"n_pairs": 0})
        cell["transfer"]["n_unpaired"] = len(done) - len(pairs)
    return cell


def _per_seed(targets: list[RunResult], facts: SuiteFacts) -> dict:
    """(task, method) -> seed -> primary metric (mean if a seed ran twice)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in targets:
        if r.record.status == "completed" and r.curve is not None:
            acc[(r.record.task, r.record.method)][r.record.seed].append(
                run_scores(r, facts)[facts.primary])
    return {k: {s: float(np.mean(v)) for s, v in d.items()} for k, d in acc.items()}


def _norm_bounds(per_seed: dict, baseline: str) -> tuple[dict | None, str]:
    tasks = sorted({t for t, _ in per_seed})
    if len(tasks) < 2:
        return None, "raw (single task)"
    bounds = {}
    for t in tasks:
        means = {m: np.mean(list(v.values())) for (tt, m), v in per_seed.items() if tt == t}
        if baseline not in means or max(means.values()) == means[baseline]:
            return None, f"raw (task '{t}' has no scratch cell or scratch is best: zero range)"
        bounds[t] = (means[baseline], max(means.values()))
    return bounds, "per task: (x - scratch mean) / (best method mean - scratch mean)"


def _aggregates(targets: list[RunResult], facts: SuiteFacts, reps: int, seed: int) -> dict:
    per_seed = _per_seed(targets, facts)
    bounds, how = _norm_bounds(per_seed, facts.baseline)
    out: dict[str, Any] = {"metric": facts.primary, "normalisation": how, "methods": {}}
    for method in sorted({m for _, m in per_seed}):
        tasks = sorted(t for t, m in per_seed if m == method)
        seeds = sorted(set.intersection(*(set(per_seed[(t, method)]) for t in tasks)))
        if not seeds:
            out["methods"][method] = {"tasks": tasks, "n_seeds": 0, "note": "no seed common to all tasks"}
            continue
        mat = np.array([[per_seed[(t, method)][s] for t in tasks] for s in seeds])
        if bounds:
            mat = M.normalise(mat, [bounds[t][0] for t in tasks], [bounds[t][1] for t in tasks])
        out["methods"][method] = {"tasks": tasks, "n_seeds": len(seeds),
                                  **M.aggregate_table(mat, reps=reps, seed=seed)}
    return out


def _dig(d: Any, path: tuple) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _references(cells: list[dict], facts: SuiteFacts) -> list[dict]:
    index = {(c["task"], c["method"]): c for c in cells}
    ran = {c["task"] for c in cells}
    out = []
    for ref in facts.references:
        # only the tasks this report has runs for: a laptop profile runs one target of six
        rows = [{"task": t, "method": m, "paper": v,
                 "ours": _dig(index.get((t, m)), REFERENCE_PATHS.get(ref.metric, ()))}
                for t, per in sorted(ref.values.items()) if t in ran for m, v in sorted(per.items())]
        if not rows:
            continue
        out.append({"name": ref.name, "citation": ref.citation, "metric": ref.metric, "rows": rows})
    return out


def _sources(results: list[RunResult], facts: SuiteFacts) -> list[dict]:
    out = []
    for r in sorted(results, key=lambda r: (r.record.method, r.record.seed, r.record.run_id)):
        if r.record.kind != "source":
            continue
        row = {"run_id": r.record.run_id, "source": r.record.method, "tasks": r.record.task,
               "seed": r.record.seed, "status": r.record.status, "env_steps": r.record.env_steps,
               "wall_time_s": r.record.wall_time_s, "throughput": r.record.throughput,
               "diagnostics": dict(r.record.diagnostics)}
        thr = facts.thresholds.get(r.record.task)  # a single-task source trains from scratch
        if thr is not None and r.curve is not None:
            row["threshold"] = _threshold([r], thr)
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
    cells = [_cell(t, m, rs, by_id, facts, reps, seed, shares)
             for (t, m), rs in sorted(cells_in.items())]
    report = {
        "suite": name, "profile": profile, "n_runs": len(results), "n_targets": len(targets),
        "status": dict(Counter(r.record.status for r in results)),
        "generated": generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"baseline": facts.baseline, "primary": facts.primary,
                     "early_fraction": facts.early_fraction, "final_fraction": facts.final_fraction,
                     "thresholds": dict(facts.thresholds)},
        "notes": notes, "cells": cells, "aggregates": _aggregates(targets, facts, reps, seed),
        "references": _references(cells, facts), "sources": _sources(results, facts),
        "equal_compute": equal_compute(results, facts.baseline, reps, seed),
        "diagnostics": D.means(targets),
        "per_base_model": D.per_base_model(targets, facts.success_below),
        "success_below": dict(facts.success_below)}
    return as_jsonable(report)


def write_report(root: Path, out: Path | None = None,
                 suite_lookup: Callable[[str], Suite | SuiteFacts] = load_suite, *,
                 reps: int = 2000) -> list[Path]:
    """Load the runs under ``root`` and write leaderboard.md/.json and curve PNGs into ``out``."""
    from benchmarks import plots  # matplotlib only when files are written
    from benchmarks.plots_embedding import plot_embeddings
    from benchmarks.plots_reconstruction import plot_reconstructions

    root, out = Path(root), Path(out if out is not None else root)
    results = load_results(root)
    groups: dict = defaultdict(list)
    for r in results:
        groups[(r.record.suite, r.record.profile)].append(r)
    reports, pngs = [], []
    for (name, profile), runs in sorted(groups.items()):
        facts, notes = None, []
        try:
            facts = as_facts(suite_lookup(name))
        except (ValueError, OSError) as e:  # SuiteError is a ValueError
            notes.append(f"suite '{name}' could not be loaded, reported without references: {e}")
        reports.append(build_report(runs, facts, reps=reps, notes=notes))
        pngs += plots.plot_learning_curves(runs, name, profile, out,
                                           facts.thresholds if facts else None)
        pngs += plot_embeddings(runs, out)
        pngs += plot_reconstructions(runs, out)
    md, js = out / "leaderboard.md", out / "leaderboard.json"
    atomic_write_text(js, json.dumps({"root": str(root), "reports": reports}, indent=2,
                                     allow_nan=False) + "\n")
    atomic_write_text(md, render_markdown(reports, root))
    return [md, js, *pngs]


# -- markdown ---------------------------------------------------------------------------------
def _num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):  # a paper value as printed, e.g. "1199 ± 558"
        return x
    a = abs(float(x))
    if a < 1e-9:  # bootstrap round-off, e.g. -4.6e-18 for an exact zero
        return "0.00"
    return f"{x:.0f}" if a >= 1000 else f"{x:.1f}" if a >= 10 else f"{x:.2f}" if a >= 0.01 else f"{x:.2g}"


def _fmt(ci: dict | None) -> str:
    return f"{_num(ci['point'])} ± [{_num(ci['low'])}, {_num(ci['high'])}]" if ci else "—"


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _thr(t: dict | None) -> str:
    if not t:
        return "—"
    mean = t["mean_steps"]  # None when some run never reached it: the mean is undefined
    text = _num(mean) if mean is not None else "never" if t["reached"] == 0 else "—"
    return f"{text} ({t['reached']}/{t['of']})"


def _charged_text(cc: dict) -> str:
    if cc.get("difference"):
        return f"{_fmt(cc['difference'])} ({cc['n_pairs']} pairs)"
    return "— (sources cost >= target budget: no common window)" if cc else "—"


def _md_cells(cells: list[dict]) -> list[str]:
    lines = ["## Target tasks", ""] + _table(
        ["task", "method", "seeds", "AUC", "final", "steps to threshold (reached)", "failed/blocked"],
        [[c["task"], c["method"], c["n_seeds"], _fmt(c["auc"]), _fmt(c["final"]),
          _thr(c.get("threshold")), c["n_failed"]] for c in cells])
    rows = []
    for c in (c for c in cells if c["transfer"]):
        t = c["transfer"]
        thr, cc = t.get("threshold") or {}, t.get("cost_charged") or {}
        shared = t.get("cost_charged_shared")
        rows.append([c["task"], c["method"], t["n_pairs"], _fmt(t.get("jumpstart")),
                     _num(t.get("transfer_ratio")),
                     f"{_num(thr.get('target_steps'))} / {_num(thr.get('scratch_steps'))}" if thr else "—",
                     _num(thr.get("reduction_pct")), _fmt(t.get("probability_of_improvement")),
                     _num(cc.get("source_env_steps")), _charged_text(cc),
                     _charged_text(shared) if shared else "—"])
    if rows:
        lines += ["## Transfer vs scratch (paired runs)", ""] + _table(
            ["task", "method", "pairs", "jumpstart", "transfer ratio",
             "steps to threshold (transfer / scratch)", "reduction %", "P(improve)",
             "source env steps", "cost-charged AUC diff", "shared-cost AUC diff"], rows)
    return lines


def _md_group(rep: dict) -> list[str]:
    s, agg = rep["settings"], rep["aggregates"]
    status = ", ".join(f"{n} {k}" for k, n in sorted(rep["status"].items()))
    lines = [f"# Leaderboard: suite `{rep['suite']}`, profile `{rep['profile']}`", "",
             f"- runs: {rep['n_runs']} ({status or 'none'}); date: {rep['generated']}",
             f"- primary metric: {s['primary']}; scratch baseline: `{s['baseline']}`; "
             f"early/final fraction: {s['early_fraction']}/{s['final_fraction']}"]
    lines += [f"- note: {n}" for n in rep["notes"]] + [""] + _md_cells(rep["cells"])
    lines += [f"## Aggregates over tasks ({agg['metric']}, {agg['normalisation']})", ""] + _table(
        ["method", "tasks", "seeds", "mean", "median", "IQM"],
        [[m, ", ".join(a["tasks"]), a["n_seeds"], _fmt(a.get("mean")), _fmt(a.get("median")),
          _fmt(a.get("iqm"))] for m, a in agg["methods"].items()])
    for ref in rep["references"]:
        lines += [f"## Paper reference: {ref['name']} ({ref['metric']})", "",
                  f"Citation: {ref['citation']}", ""]
        lines += _table(["task", "method", "ours", "paper"],
                        [[r["task"], r["method"], _num(r["ours"]), _num(r["paper"])] for r in ref["rows"]])
    if rep["sources"]:
        thr = any("threshold" in r for r in rep["sources"])
        lines += ["## Sources", ""] + _table(
            ["run", "source", "tasks", "seed", "status", "env steps", "wall time (s)", "env steps/s",
             *(["steps to threshold (reached)"] if thr else [])],
            [[r["run_id"], r["source"], r["tasks"], r["seed"], r["status"], r["env_steps"],
              _num(r["wall_time_s"]), _num(r["throughput"]),
              *([_thr(r.get("threshold"))] if thr else [])] for r in rep["sources"]])
        found = sorted({n for r in rep["sources"] for n in r.get("diagnostics", {})})
        if found:
            lines += ["## Source diagnostics", ""] + _table(
                ["run", *found], [[r["run_id"], *(_num(r["diagnostics"].get(n)) for n in found)]
                                  for r in rep["sources"] if r.get("diagnostics")])
    if rep["equal_compute"]:
        lines += ["## Multi-task source vs per-task scratch (equal compute)", ""] + _table(
            ["source", "task", "N tasks", "source steps T", "source final (runs)",
             "scratch at T/N (runs)", "scratch at T (runs)"],
            [[r["source"], r["task"], r["n_tasks"], f"{r['source_steps']:.0f}",
              f"{_fmt(r['source_final'])} ({r['n_source_runs']})",
              f"{_fmt(r['scratch_at_t_over_n'])} ({r['n_scratch_at_t_over_n']})",
              f"{_fmt(r['scratch_at_t'])} ({r['n_scratch_at_t']})"] for r in rep["equal_compute"]])
    names = sorted({n for d in rep["diagnostics"] for n in d["values"]})
    if names:
        lines += ["## Diagnostics (mean over completed runs)", ""] + _table(
            ["task", "method", *names],
            [[d["task"], d["method"], *(_num(d["values"].get(n)) for n in names)]
             for d in rep["diagnostics"]])
    return lines + D.markdown(rep["per_base_model"], rep["success_below"])


def render_markdown(reports: list[dict], root: Path | str) -> str:
    lines: list[str] = []
    for rep in reports:
        lines += _md_group(rep)
    if not reports:
        lines += ["# Leaderboard", "", f"No runs found under `{root}`.", ""]
    lines += ["## Definitions", "", *(__doc__.split("\n\n", 1)[1].strip().splitlines()), ""]
    return "\n".join(lines)
