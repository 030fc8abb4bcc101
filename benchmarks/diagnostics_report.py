"""Diagnostics per base model: the inverse-maze protocol trains several base models and several
transfer seeds per base model, and transfer success depends on the base model (seed 001 §5.2.1).
Pure functions over records; the report renders their rows."""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np

from benchmarks.results import RunResult


def means(targets: list[RunResult]) -> list[dict]:
    """Mean of each named diagnostic per (task, method) over completed runs."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in targets:
        if r.record.status == "completed":
            for name, v in r.record.diagnostics.items():
                acc[(r.record.task, r.record.method)][name].append(v)
    return [{"task": t, "method": m, "values": {n: float(np.mean(v)) for n, v in sorted(d.items())}}
            for (t, m), d in sorted(acc.items())]


def per_base_model(targets: list[RunResult], success_below: Mapping[str, float]) -> list[dict]:
    """Rows per (task, method, source seed): mean of each diagnostic and, for diagnostics with a
    success bound, the fraction of runs below it (the transfer success rate)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in targets:
        rec = r.record
        if rec.status == "completed" and rec.diagnostics and rec.source_seed is not None:
            for name, value in rec.diagnostics.items():
                acc[(rec.task, rec.method, rec.source_seed)][name].append(value)
    rows = []
    for (task, method, base), values in sorted(acc.items()):
        row = {"task": task, "method": method, "base_model": base,
               "n": max(len(v) for v in values.values()),
               "mean": {k: float(np.mean(v)) for k, v in sorted(values.items())},
               "success_rate": {k: float(np.mean(np.asarray(values[k]) < bound))
                                for k, bound in success_below.items() if k in values}}
        rows.append(row)
    return rows


def markdown(rows: list[dict], success_below: Mapping[str, float]) -> list[str]:
    if not rows:
        return []
    names = sorted({k for r in rows for k in r["mean"]})
    rated = sorted({k for r in rows for k in r["success_rate"]})
    head = ["task", "method", "base model", "runs", *names,
            *(f"success ({k} < {success_below[k]:g})" for k in rated)]
    lines = ["## Diagnostics per base model", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["task"], r["method"], str(r["base_model"]), str(r["n"]),
                 *(f"{r['mean'][k]:.3g}" if k in r["mean"] else "–" for k in names),
                 *(f"{100 * r['success_rate'][k]:.0f} %" if k in r["success_rate"] else "–"
                   for k in rated)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]
