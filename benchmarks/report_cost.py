"""What pre-training costs, and comparisons that charge it (Voskuil, "Pre-training World Models to
efficiently learn related tasks", Master's thesis, Leiden University, 2022, §4.1-4.2).

Pure functions over loaded runs; :mod:`benchmarks.report` calls them and renders their rows.

* Cost-charged pair: a transfer curve shifted right by the env steps its sources consumed, against
  its scratch run over the total-step window both cover. ``shares`` divides a source's cost
  among the target tasks that reuse it (the thesis's "fine-tuning at t against baselines at
  t + T/M" for a source reused by M targets); without it the full cost is charged.
* Equal compute: a multi-task source trained for T steps on N tasks is compared, per task, with
  the scratch baselines of that task at T/N steps (N baselines of T/N steps cost one source
  run) and at T (equal steps per agent). It reads the per-task evaluation curves that
  multi-task runs record.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np

from benchmarks.results import RunResult, curve_of
from lightning_wm import metrics as M


def ci(values, reps: int, seed: int) -> dict | None:
    """Mean with a 95% bootstrap CI over runs; None when there is nothing finite to show."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return None
    return M.stratified_bootstrap_ci(v[:, None], M.mean, reps=reps, seed=seed).as_dict()


def source_cost(r: RunResult, shares: Mapping[str, int] | None = None) -> tuple[float, float]:
    """(env steps, wall seconds) of the sources ``r`` consumed, each divided by its share."""
    used = r.record.provenance.sources
    share = [max(1, (shares or {}).get(u.run_id, 1)) for u in used]
    return (sum(u.env_steps / k for u, k in zip(used, share)),
            sum(u.wall_time_s / k for u, k in zip(used, share)))


def source_shares(targets: list[RunResult]) -> dict[str, int]:
    """Source run id -> number of distinct target tasks whose completed runs consumed it (M)."""
    tasks: dict[str, set] = defaultdict(set)
    for r in targets:
        if r.record.status == "completed":
            for u in r.record.provenance.sources:
                tasks[u.run_id].add(r.record.task)
    return {run_id: len(ts) for run_id, ts in tasks.items()}


def _window_auc(steps, returns, lo: float, hi: float) -> float:
    s = np.asarray(steps, dtype=float)
    grid = np.concatenate(([lo], s[(s > lo) & (s < hi)], [hi]))
    return M.area_under_curve(grid, M.resample(steps, returns, grid))


def charged_pair(t: RunResult, s: RunResult,
                 shares: Mapping[str, int] | None = None) -> tuple[float, float] | None:
    """(target AUC, scratch AUC) on the common total-step window; None if they do not overlap."""
    ts, tr = M.shift_curve(*curve_of(t), float(source_cost(t, shares)[0]))
    lo = max(ts[0], float(s.curve.steps[0]))
    hi = min(ts[-1], float(s.curve.steps[-1]))
    if hi <= lo:
        return None
    return _window_auc(ts, tr, lo, hi), _window_auc(*curve_of(s), lo, hi)


def charged(pairs: list, reps: int, seed: int, shares: Mapping[str, int] | None = None) -> dict:
    """The cost-charged comparison of (transfer, scratch) pairs, CIs over pairs."""
    cost, wall = zip(*(source_cost(t, shares) for t, _ in pairs))
    both = [c for c in (charged_pair(t, s, shares) for t, s in pairs) if c is not None]
    ta, sa = (list(col) for col in zip(*both)) if both else ([], [])
    return {"n_pairs": len(both), "source_env_steps": float(np.mean(cost)),
            "source_wall_time_s": float(np.mean(wall)),
            "target_auc": ci(ta, reps, seed), "scratch_auc": ci(sa, reps, seed),
            "difference": ci(np.subtract(ta, sa), reps, seed)}


def _scratch_at(runs: list[RunResult], step: float) -> list[float]:
    """Each scratch run's (interpolated) return at ``step``; runs that stop short are left out."""
    return [float(M.resample(*curve_of(r), [step])[0]) for r in runs
            if r.curve is not None and r.curve.steps[-1] >= step]


def equal_compute(results: list[RunResult], baseline: str, reps: int, seed: int) -> list[dict]:
    """Rows per (multi-task source, task): the source's final per-task return after T steps
    against that task's scratch baselines at T/N and at T."""
    scratch: dict[str, list[RunResult]] = defaultdict(list)
    for r in results:
        if (r.record.kind == "target" and r.record.status == "completed"
                and r.record.method == baseline):
            scratch[r.record.task].append(r)
    groups: dict = defaultdict(list)
    for r in results:
        if r.record.kind == "source" and r.record.status == "completed" and r.task_curves:
            for task in r.record.tasks:
                if task in scratch:
                    groups[(r.record.method, task)].append(r)
    rows = []
    for (source, task), runs in sorted(groups.items()):
        n = len(runs[0].record.tasks)
        steps = float(np.mean([r.record.env_steps for r in runs]))
        finals = [float(r.task_curves[task].returns[-1]) for r in runs]
        at_tn, at_t = _scratch_at(scratch[task], steps / n), _scratch_at(scratch[task], steps)
        rows.append({"source": source, "task": task, "n_tasks": n, "source_steps": steps,
                     "n_source_runs": len(runs), "source_final": ci(finals, reps, seed),
                     "n_scratch_at_t_over_n": len(at_tn), "scratch_at_t_over_n": ci(at_tn, reps, seed),
                     "n_scratch_at_t": len(at_t), "scratch_at_t": ci(at_t, reps, seed)})
    return rows
