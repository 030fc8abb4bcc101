"""The leaderboard's aggregates: each method's (seeds x tasks) matrix of its primary metric,
on the suite's fixed per-task scale (random and reference scores) where the suite states one for
every task, summarised by :mod:`lightning_wm.metrics` (mean, median, IQM, optimality gap, with
stratified bootstrap CIs). Pure: plain values in, JSON-safe dicts out."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from benchmarks.suite_facts import SuiteFacts
from lightning_wm import metrics as M

NORMALISED = "per task (x - random) / (reference - random), fixed in the suite"


def scale(tasks: list[str], facts: SuiteFacts, profile: str) -> tuple[dict | None, str | None]:
    """task -> (random, reference) for every task, or None and the note saying why the
    aggregates stay raw: a partial scale would mix units in one mean."""
    held = facts.scores_hold_for
    if held is not None and profile not in held:
        return None, (f"raw values: the suite's random and reference scores were measured at the "
                      f"episodes of profiles {', '.join(held)}, not those of profile '{profile}'")
    missing = [t for t in tasks
               if t not in facts.random_scores or t not in facts.reference_scores]
    if missing:
        return None, ("raw values: the suite declares no random and reference score for "
                      f"{', '.join(missing)} (metrics.random_scores / metrics.reference_scores)")
    return {t: (facts.random_scores[t], facts.reference_scores[t]) for t in tasks}, None


def aggregates(per_seed: Mapping[tuple[str, str], Mapping[int, float]], facts: SuiteFacts,
               profile: str, reps: int, seed: int) -> dict:
    """Each method's aggregates over its (seeds x tasks) matrix of ``per_seed`` values ((task,
    method) -> seed -> primary metric), on the suite's fixed scale where it has one."""
    fixed, note = scale(sorted({t for t, _ in per_seed}), facts, profile)
    out: dict[str, Any] = {
        "metric": facts.primary, "normalisation": "raw" if fixed is None else NORMALISED,
        "note": note, "scale": {t: {"random": lo, "reference": hi}
                                for t, (lo, hi) in (fixed or {}).items()},
        "methods": {}}
    for method in sorted({m for _, m in per_seed}):
        tasks = sorted(t for t, m in per_seed if m == method)
        seeds = sorted(set.intersection(*(set(per_seed[(t, method)]) for t in tasks)))
        if not seeds:
            out["methods"][method] = {"tasks": tasks, "n_seeds": 0, "note": "no seed common to all tasks"}
            continue
        mat = np.array([[per_seed[(t, method)][s] for t in tasks] for s in seeds])
        row: dict[str, Any] = {"tasks": tasks, "n_seeds": len(seeds)}
        if fixed is not None:
            mat = M.reference_normalised(mat, [fixed[t][0] for t in tasks],
                                         [fixed[t][1] for t in tasks])
            # on a fixed scale: the shortfall below the reference, and each task's mean
            row["optimality_gap"] = M.stratified_bootstrap_ci(
                mat, M.optimality_gap, reps, seed=seed).as_dict()
            row["per_task"] = dict(zip(tasks, (float(v) for v in mat.mean(axis=0))))
        out["methods"][method] = {**row, **M.aggregate_table(mat, reps=reps, seed=seed)}
    return out
