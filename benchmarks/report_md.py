"""leaderboard.md from the report dicts that ``benchmarks.report`` builds: formatting only, no
numbers computed here."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import diagnostics_report as D


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


def _ratio_text(t: dict) -> str:
    if t.get("transfer_ratio") is not None:
        basis = " (raw)" if t.get("transfer_ratio_basis") == "raw" else ""
        return _num(t["transfer_ratio"]) + basis
    return f"— ({t['transfer_ratio_note']})" if t.get("transfer_ratio_note") else "—"


#: headings of the paired sections by what they compare (the report's ``settings.comparison``)
PAIRED_HEADINGS = {
    "transfer": ("Transfer vs scratch (paired runs)",
                 "Verdict (transfer minus scratch, paired by seed; 95% CIs)"),
    "agents": ("Methods vs the baseline (paired runs; every method learns from scratch)",
               "Verdict (method minus baseline, paired by seed; 95% CIs)"),
}

#: columns of the paired table; a comparison of agents has no sources, so no source-cost columns
PAIRED_COLUMNS = {
    "transfer": ["task", "method", "pairs", "jumpstart", "transfer ratio",
                 "decisions to threshold (transfer / scratch)", "reduction %", "P(improve)",
                 "source decisions", "cost-charged AUC diff", "shared-cost AUC diff"],
    "agents": ["task", "method", "pairs", "jumpstart", "AUC ratio",
               "decisions to threshold (method / baseline)", "reduction %", "P(improve)"],
}


def paired_row(cell: dict, comparison: str) -> list[str]:
    """One row of the paired table, as text, in the order of ``PAIRED_COLUMNS[comparison]``
    (the markdown report and the leaderboard site both print it)."""
    t = cell["transfer"]
    thr, cc = t.get("threshold") or {}, t.get("cost_charged") or {}
    row = [cell["task"], cell["method"], str(t["n_pairs"]), _fmt(t.get("jumpstart")),
           _ratio_text(t),
           f"{_num(thr.get('target_steps'))} / {_num(thr.get('scratch_steps'))}" if thr else "—",
           _fmt(thr.get("reduction_ci")) if thr.get("reduction_ci") else
           _num(thr.get("reduction_pct")), _fmt(t.get("probability_of_improvement"))]
    if comparison == "transfer":
        shared = t.get("cost_charged_shared")
        row += [_num(cc.get("source_env_steps")), _charged_text(cc),
                _charged_text(shared) if shared else "—"]
    return row


def baseline_words(comparison: str) -> str:
    return "scratch baseline" if comparison == "transfer" else "baseline (from scratch)"


def _md_cells(cells: list[dict], comparison: str = "transfer") -> list[str]:
    lines = ["## Target tasks", ""] + _table(
        ["task", "method", "seeds", "AUC", "final", "best", "decisions to threshold (reached)",
         "failed/blocked", "interrupted/running"],
        [[c["task"], c["method"], c["n_seeds"], _fmt(c["auc"]), _fmt(c["final"]),
          _fmt(c.get("best")), _thr(c.get("threshold")), c["n_failed"], c.get("n_pending", 0)]
         for c in cells])
    rows = [paired_row(c, comparison) for c in cells if c["transfer"]]
    if rows:
        lines += ([f"## {PAIRED_HEADINGS[comparison][0]}", ""]
                  + _table(PAIRED_COLUMNS[comparison], rows))
    return lines


def _md_verdicts(verdicts: list[dict], comparison: str = "transfer") -> list[str]:
    if not verdicts:
        return []
    return ([f"## {PAIRED_HEADINGS[comparison][1]}", ""]
            + ["- " + v["text"].replace(f"→ {v['verdict']}", f"→ **{v['verdict']}**")
               for v in verdicts] + [""])


def _steps(n: Any) -> str:
    return "budget not stated" if n is None else f"{n:,.0f} env steps per target run"


def _side(setting: dict) -> str:
    return f"{_steps(setting['env_steps'])}, {setting['observation'] or 'observation not stated'}"


def _short(setting: dict) -> str:
    steps = setting["env_steps"]
    return (f"{'?' if steps is None else format(steps, ',.0f')} env steps, "
            f"{setting['observation'] or '?'}")


_AGGREGATE_NAMES = {"iqm": "IQM", "optimality_gap": "optimality gap"}


def _aggregate_name(key: str) -> str:
    """An aggregate's key as the tables head it ("iqm" -> "IQM")."""
    return _AGGREGATE_NAMES.get(key, key)


def _md_reference(ref: dict) -> list[str]:
    ours, paper = ref["ours_setting"], ref["paper_setting"]
    if ref["comparable"]:
        verdict = "Comparable: same budget and observation."
    else:
        verdict = ("**Not comparable**: " + "; ".join(ref["not_comparable_because"])
                   + ". The columns are shown side by side, not as a reproduction check.")
    lines = [f"## Paper reference: {ref['name']} ({ref['metric']})", "",
             f"Citation: {ref['citation']}", "",
             f"- ours: {_side(ours)}", f"- paper: {_side(paper)}", f"- {verdict}"]
    if ref.get("paper_aggregates"):
        agg = dict(ref["paper_aggregates"])
        over = agg.pop("over")
        lines.append(f"- the paper's aggregates ({over}; as published, not recomputed): "
                     + ", ".join(f"{_aggregate_name(k)} {_num(v)}" for k, v in agg.items()))
    lines.append("")
    headers = ["task", "method", f"ours ({_short(ours)})", f"paper ({_short(paper)})"]
    normed = any("ours_normalised" in r for r in ref["rows"])
    if normed:  # each side scaled by its own random policy (0) and scratch baseline (1)
        headers += ["ours, (x - random)/(scratch - random)", "paper, (x - random)/(scratch - random)"]
    rows = []
    for r in ref["rows"]:
        row = [r["task"], r["method"], _num(r["ours"]), _num(r["paper"])]
        if normed:
            row += [_num(r.get("ours_normalised")), _num(r.get("paper_normalised"))]
        rows.append(row)
    return lines + _table(headers, rows)


def _md_sources(sources: list[dict]) -> list[str]:
    headers = ["run", "source", "tasks", "seed", "status", "decisions", "wall time (s)",
               "decisions/s"]
    rows = [[r["run_id"], r["source"], r["tasks"], r["seed"], r["status"], r["env_steps"],
             _num(r["wall_time_s"]), _num(r["throughput"])] for r in sources]
    if any("threshold" in r or "task_thresholds" in r for r in sources):  # only where one has
        headers.append("decisions to threshold (reached)")
        for row, r in zip(rows, sources):
            per_task = r.get("task_thresholds")
            row.append("; ".join(f"{t}: {_thr(v)}" for t, v in per_task.items()) if per_task
                       else _thr(r.get("threshold")))
    lines = ["## Sources", ""] + _table(headers, rows)
    found = sorted({n for r in sources for n in r.get("diagnostics", {})})
    if found:
        lines += ["## Source diagnostics", ""] + _table(
            ["run", *found], [[r["run_id"], *(_num(r["diagnostics"].get(n)) for n in found)]
                              for r in sources if r.get("diagnostics")])
    return lines


def _md_aggregates(agg: dict) -> list[str]:
    """The aggregates table, headed by the scale it is on: the fixed per-task values, or the
    note saying why the values are raw."""
    lines = [f"## Aggregates over tasks ({agg['metric']}, {agg['normalisation']})", ""]
    if agg.get("note"):
        lines += [f"- note: {agg['note']}", ""]
    if agg.get("scale"):
        lines += ["- scale per task (random -> 0, reference -> 1): " + "; ".join(
            f"{t}: random {_num(v['random'])}, reference {_num(v['reference'])}"
            for t, v in agg["scale"].items()), ""]
    methods = agg["methods"]
    gap = any("optimality_gap" in a for a in methods.values())
    lines += _table(
        ["method", "tasks", "seeds", "mean", "median", "IQM"] + (["optimality gap"] if gap else []),
        [[m, ", ".join(a["tasks"]), a["n_seeds"], _fmt(a.get("mean")), _fmt(a.get("median")),
          _fmt(a.get("iqm"))] + ([_fmt(a.get("optimality_gap"))] if gap else [])
         for m, a in methods.items()])
    per_task = sorted({t for a in methods.values() for t in a.get("per_task", {})})
    if per_task:  # each task's normalised mean over seeds, beside the raw cells above
        lines += ["Normalised per task (mean over seeds):", ""] + _table(
            ["method", *per_task],
            [[m, *(_num(a["per_task"][t]) if t in a.get("per_task", {}) else "—"
                   for t in per_task)] for m, a in methods.items()])
    return lines


def _md_group(rep: dict) -> list[str]:
    s, agg = rep["settings"], rep["aggregates"]
    comparison = s.get("comparison", "transfer")
    status = ", ".join(f"{n} {k}" for k, n in sorted(rep["status"].items()))
    lines = [f"# Leaderboard: suite `{rep['suite']}`, profile `{rep['profile']}`", "",
             f"- runs: {rep['n_runs']} ({status or 'none'}); date: {rep['generated']}",
             f"- primary metric: {s['primary']}; {baseline_words(comparison)}: `{s['baseline']}`; "
             f"early/final fraction: {s['early_fraction']}/{s['final_fraction']}"]
    lines += [f"- note: {n}" for n in rep["notes"]] + [""]
    lines += (_md_verdicts(rep.get("verdicts", []), comparison)
              + _md_cells(rep["cells"], comparison))
    lines += _md_aggregates(agg)
    for ref in rep["references"]:
        lines += _md_reference(ref)
    if rep["sources"]:
        lines += _md_sources(rep["sources"])
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


def render(reports: list[dict], root: Path | str, definitions: str) -> str:
    """The leaderboard.md text: one section group per report, then ``definitions``."""
    lines: list[str] = []
    for rep in reports:
        lines += _md_group(rep)
    if not reports:
        lines += ["# Leaderboard", "", f"No runs found under `{root}`.", ""]
    lines += ["## Definitions", "", *definitions.strip().splitlines(), ""]
    return "\n".join(lines)
