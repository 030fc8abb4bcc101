"""Regression check: a fresh result set (current) against a committed one (baseline).

Cells are (suite, task, method); source runs form cells too, checked for failures and speed.

* learning regression: the bootstrap CI of mean(current) - mean(baseline) of the suite's primary
  metric over seeds (AUC unless the suite says ``final``; AUC when the suite cannot be loaded)
  lies entirely below zero. Needs at least ``MIN_SEEDS`` completed runs per side, because with
  one run per side the interval collapses to the raw difference and any noise would fail.
* speed regression: mean throughput (decisions / s of completed runs) falls below
  baseline / ``speed_factor``.
* failure: a seed completed in the baseline has no completed run in current. A seed whose
  current runs were all interrupted (stopped by a signal, resumable) is pending, listed and
  not a failure; a ``running`` record left behind is (its worker died).
* cells on one side only are listed as missing, which is not a failure.
* suites are looked up by registry name only (a record naming an unknown suite is compared
  with AUC, and a note says so); an empty result set or a speed factor that is not a finite
  number >= 1 cannot be compared (exit 2).
* learning gate (``learning_gate``, also run without a baseline): in every task the suite gives a
  threshold, most seeds of the scratch baseline must reach it within their budget; where the
  suite also states ``learn_within`` N steps, most seeds of every from-scratch run of the task
  (sources included) budgeted for N steps must reach it by step N. This is how a nightly profile
  shows that an agent learns, not merely that it runs. Interrupted runs are left out of it.
  A multi-task source is gated per task: most of its seeds must reach each of its tasks'
  thresholds on their per-task curves (a transfer from a source that learned nothing measures
  nothing).
  Reaching is the held criterion of ``time_to_threshold`` (``THRESHOLD_DEFINITION``): the mean
  of ``HOLD_WINDOW`` consecutive evaluations after step 0, so neither an untrained policy's
  lucky first evaluation nor one good evaluation between bad ones passes the gate.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TextIO

import numpy as np

from benchmarks.report import SuiteFacts, as_facts, registered_suite, run_scores
from benchmarks.results import NO_RUNS, ResultError, RunResult, curve_of, load_results
from benchmarks.suite import Suite
from lightning_wm.metrics import Interval, difference_ci, mean, time_to_threshold
from lightning_wm.metrics.curves import HOLD_WINDOW

MIN_SEEDS = 2
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Row:
    cell: str
    metric: str
    baseline: float | None
    current: float | None
    diff: Interval | None
    verdict: str
    regressed: bool = False


@dataclass(frozen=True)
class Verdict:
    rows: list[Row]
    regressed: bool


def _cells(results: list[RunResult]) -> dict:
    cells = defaultdict(list)
    for r in results:
        rec = r.record
        cells[(rec.suite, rec.task, rec.method, rec.kind)].append(r)
    return cells


def _done(runs: list[RunResult]) -> list[RunResult]:
    return [r for r in runs if r.record.status == "completed"]


def _name(key: tuple) -> str:
    suite, task, method, kind = key
    return f"{suite}/{task}/{method}" + (" [source]" if kind == "source" else "")


def _failures(name: str, base: list, cur: list) -> list[Row]:
    lost = {r.record.seed for r in _done(base)} - {r.record.seed for r in _done(cur)}
    lost &= {r.record.seed for r in cur}   # seeds absent from current are "missing", not failed
    # a seed with only interrupted runs has not finished yet: pending, not failed
    pending = {s for s in lost if all(r.record.status == INTERRUPTED
                                      for r in cur if r.record.seed == s)}
    failed = lost - pending
    rows = []
    if failed:
        why = sorted({r.record.status for r in cur
                      if r.record.seed in failed and r.record.status != "completed"})
        rows.append(Row(name, "status", len(_done(base)), len(_done(cur)), None,
                        f"run failed ({'/'.join(why)}; seeds {sorted(failed)})", True))
    if pending:
        rows.append(Row(name, "status", len(_done(base)), len(_done(cur)), None,
                        f"pending: interrupted (seeds {sorted(pending)}; not a failure)"))
    return rows


def _learning(name: str, base: list, cur: list, facts: SuiteFacts, confidence: float,
              seed: int, reps: int) -> Row:
    metric = facts.primary
    b = [run_scores(r, facts)[metric] for r in _done(base) if r.curve is not None]
    c = [run_scores(r, facts)[metric] for r in _done(cur) if r.curve is not None]
    bm = float(np.mean(b)) if b else None
    cm = float(np.mean(c)) if c else None
    if min(len(b), len(c)) < MIN_SEEDS:
        return Row(name, metric, bm, cm, None, f"not compared (< {MIN_SEEDS} seeds a side)")
    ci = difference_ci(np.array(c)[:, None], np.array(b)[:, None], statistic=mean,
                       reps=reps, confidence=confidence, seed=seed)
    if ci.high < 0:
        return Row(name, metric, bm, cm, ci, "REGRESSION: learning", True)
    return Row(name, metric, bm, cm, ci, "ok")


def learning_gate(current: list[RunResult], facts: Mapping[str, SuiteFacts]) -> list[Row]:
    """One row per gated cell; regressed unless a majority of its completed seeds reach the
    task's threshold.

    A task with ``learn_within`` N gates every from-scratch cell on it (the scratch baseline, and
    a single-task source that reads no other run) over its runs budgeted for N steps or more,
    and counts a seed only if it reaches the threshold by step N. A task without it gates the
    scratch baseline, within whatever budget it ran. A seed reaches the threshold at the last
    step of the first window of evaluations after step 0 whose mean is at or above it, so "by
    step N" means the whole window lies by step N.
    """
    rows = []
    for key, runs in sorted(_cells(current).items()):
        suite, task, method, kind = key
        f = facts.get(suite, SuiteFacts())
        threshold, within = f.thresholds.get(task), f.learn_within.get(task)
        scratch = kind == "target" and method == f.baseline
        if within is not None:
            scratch |= kind == "source" and not any(r.record.provenance.sources for r in runs)
            runs = [r for r in runs if r.record.budget >= within]
        pending = sum(r.record.status == INTERRUPTED for r in runs)
        runs = [r for r in runs if r.record.status != INTERRUPTED]  # unfinished, not failed
        # a cell without a finished run long enough for the claim is not judged; one whose
        # runs all failed is (0 of 0 seeds learn)
        if threshold is None or not scratch or not runs:
            if threshold is not None and scratch and pending:
                rows.append(Row(_name(key), "threshold", None, None, None,
                                f"not judged: {pending} run(s) interrupted (pending)"))
            continue
        done = [r for r in _done(runs) if r.curve is not None]
        limit = math.inf if within is None else within
        times = [time_to_threshold(*curve_of(r), threshold) for r in done]
        hits, learns, first = _reached(times, limit)
        by = f" within {within} decisions" if within is not None else ""
        verdict = (f"{'ok' if learns else 'REGRESSION: does not learn'}: {len(hits)}/{len(times)} "
                   f"seeds reach {threshold:g} (mean of {HOLD_WINDOW} evaluations after step 0)"
                   f"{by}{first}")
        rows.append(Row(_name(key), "threshold", None, len(hits), None, verdict, not learns))
    return rows + _source_task_gate(current, facts)


def _reached(times: list[float], limit: float = math.inf) -> tuple[list[float], bool, str]:
    """The held times within ``limit``, whether most seeds got there, and the text naming the
    first: the rule both gates judge by."""
    hits = sorted(t for t in times if np.isfinite(t) and t <= limit)
    first = f", first held at {hits[0]:.0f} decisions" if hits else ""
    return hits, 2 * len(hits) > len(times), first


def _source_task_gate(current: list[RunResult], facts: Mapping[str, SuiteFacts]) -> list[Row]:
    """A multi-task source must learn each of its tasks that has a threshold (held, on its
    per-task curve, for most of its completed seeds): a transfer from a source that learned
    nothing measures nothing."""
    rows = []
    for key, runs in sorted(_cells(current).items()):
        suite, _, method, kind = key
        done = [r for r in _done(runs) if r.task_curves]
        if kind != "source" or not done:
            continue
        thresholds = facts.get(suite, SuiteFacts()).thresholds
        for task in sorted(set(done[0].task_curves) & set(thresholds)):
            times = [time_to_threshold(*curve_of(r, task), thresholds[task]) for r in done]
            hits, learns, first = _reached(times)
            verdict = (f"{'ok' if learns else 'REGRESSION: source does not learn its task'}: "
                       f"{len(hits)}/{len(times)} seeds reach {thresholds[task]:g} on {task} "
                       f"(mean of {HOLD_WINDOW} evaluations after step 0){first}")
            rows.append(Row(f"{suite}/{task}/{method} [source]", "threshold", None, len(hits),
                            None, verdict, not learns))
    return rows


def _speed(name: str, base: list, cur: list, factor: float) -> Row | None:
    b = [r.record.throughput for r in _done(base) if r.record.wall_time_s > 0]
    c = [r.record.throughput for r in _done(cur) if r.record.wall_time_s > 0]
    if not b or not c:
        return None
    bm, cm = float(np.mean(b)), float(np.mean(c))
    if cm < bm / factor:
        return Row(name, "decisions/s", bm, cm, None, f"REGRESSION: speed (> {factor}x slower)", True)
    return Row(name, "decisions/s", bm, cm, None, "ok")


def compare(baseline: list[RunResult], current: list[RunResult], speed_factor: float = 1.5,
            confidence: float = 0.95, seed: int = 0, *,
            facts: Mapping[str, SuiteFacts] | None = None, reps: int = 2000) -> Verdict:
    """Compare two result sets (pure). ``facts`` maps suite name -> settings (default: AUC)."""
    if not math.isfinite(speed_factor) or speed_factor < 1:
        raise ValueError(f"speed factor must be a finite number >= 1, got {speed_factor}")
    facts = facts or {}
    base, cur = _cells(baseline), _cells(current)
    rows: list[Row] = []
    if baseline and not current:
        rows.append(Row("(all)", "runs", len(baseline), 0, None, "no runs in current", True))
    for key in sorted(set(base) | set(cur)):
        name = _name(key)
        if key not in cur or key not in base:
            side = "current" if key not in cur else "baseline"
            rows.append(Row(name, "-", None, None, None, f"missing in {side} (not a failure)"))
            continue
        b, c = base[key], cur[key]
        rows += _failures(name, b, c)
        if key[3] == "target":
            rows.append(_learning(name, b, c, facts.get(key[0], SuiteFacts()), confidence, seed, reps))
        speed = _speed(name, b, c, speed_factor)
        rows += [speed] if speed else []
    return Verdict(rows, any(r.regressed for r in rows))


def _cell_text(x: float | int | None) -> str:
    if x is None:
        return "-"
    return str(x) if isinstance(x, int) else f"{x:.4g}"


def format_table(verdict: Verdict) -> str:
    head = ["cell", "metric", "baseline", "current", "diff CI", "verdict"]
    body = [[r.cell, r.metric, _cell_text(r.baseline), _cell_text(r.current),
             f"{r.diff.point:+.4g} [{r.diff.low:+.4g}, {r.diff.high:+.4g}]" if r.diff else "-",
             r.verdict] for r in verdict.rows]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)])


def _load_facts(names: set[str], lookup: Callable, out: TextIO) -> dict[str, SuiteFacts]:
    facts = {}
    for name in sorted(names):
        try:
            facts[name] = as_facts(lookup(name))
        except (ValueError, OSError) as e:   # SuiteError is a ValueError
            print(f"note: suite '{name}' could not be loaded ({e}); comparing AUC", file=out)
    return facts


def _load(path: Path | str, side: str) -> list[RunResult]:
    results = load_results(Path(path))
    if not results:
        raise ResultError(f"--{side}: " + NO_RUNS.format(root=path))
    return results


def main_regress(baseline_dir: Path | str | None, current_dir: Path | str, speed_factor: float = 1.5,
                 out_stream: TextIO | None = None, *,
                 suite_lookup: Callable[[str], Suite | SuiteFacts] = registered_suite) -> int:
    """Print the comparison table; 0 = no regression, 1 = regression, 2 = could not compare
    (a bad or empty result set, or a bad speed factor), with a one-line message."""
    import sys
    out = out_stream or sys.stdout
    try:
        if not math.isfinite(speed_factor) or speed_factor < 1:
            raise ValueError(f"--speed-factor must be a finite number >= 1, got {speed_factor}")
        # no baseline yet (a new suite): only the learning gate can fail
        baseline = _load(baseline_dir, "baseline") if baseline_dir is not None else []
        current = _load(current_dir, "current")
    except ValueError as e:  # ResultError is a ValueError
        print(f"error: {e}", file=out)
        return 2
    facts = _load_facts({r.record.suite for r in baseline + current}, suite_lookup, out)
    verdict = compare(baseline, current, speed_factor, facts=facts)
    gate = learning_gate(current, facts)
    verdict = Verdict(verdict.rows + gate, verdict.regressed or any(r.regressed for r in gate))
    print(format_table(verdict), file=out)
    bad = sum(r.regressed for r in verdict.rows)
    missing = sum(r.verdict.startswith("missing") for r in verdict.rows)
    note = f"; {missing} cell(s) missing on one side (not a failure)" if missing else ""
    print(f"\n{'REGRESSED: ' + str(bad) + ' row(s)' if bad else 'OK: no regression'}{note}", file=out)
    return 1 if verdict.regressed else 0
