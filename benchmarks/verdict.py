"""The leaderboard's answer: per target task and transfer method, better, worse or no detectable
difference than the scratch baseline; and whether a paper's reference values can be compared
with ours at all.

Pure functions on plain numbers and dicts; :mod:`benchmarks.report` gathers their inputs from
the runs and :mod:`benchmarks.report_md` prints the lines they return.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

BETTER = "better"
WORSE = "worse"
NO_DIFFERENCE = "no detectable difference"
TOO_FEW = "too few pairs to judge"
#: below 5 pairs a percentile bootstrap interval is about the range of the pairs, and the range
#: of n draws holds their median with probability 1 - 2 * 0.5**n: 50 % for 2 pairs, 75 % for 3,
#: 94 % for 5. A "95 %" interval from fewer pairs would claim more certainty than it has.
MIN_PAIRS = 5
METRIC_LABELS = {"auc": "AUC", "final": "final"}


def decide(low: float | None, high: float | None, n_pairs: int) -> str:
    """The verdict word from the 95% CI [low, high] of the mean paired difference (transfer minus
    scratch): better when the whole CI is above 0, worse when below, else no detectable
    difference; too few pairs below :data:`MIN_PAIRS` or without a finite CI."""
    if n_pairs < MIN_PAIRS or low is None or high is None:
        return TOO_FEW
    if not (math.isfinite(low) and math.isfinite(high)):
        return TOO_FEW
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return NO_DIFFERENCE


def number(x: float | None) -> str:
    """A value as the verdict line prints it: one decimal from 10, two below, '—' if missing."""
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{x:,.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return "0.00" if text in ("-0.00", "-0.0") else text.replace("-", "−")


def interval(ci: Mapping[str, float] | None) -> str:
    if not ci:
        return "—"
    return f"{number(ci['point'])} [{number(ci['low'])}, {number(ci['high'])}]"


def budget_text(decisions: float | None, action_repeat: int | None) -> str:
    """Target env steps per run: agent decisions x action repeat, with both named where they
    differ (the suites' budgets count decisions, papers count env steps)."""
    if decisions is None:
        return "an unknown budget"
    if action_repeat is None:
        return f"{decisions:,.0f} agent steps (action repeat unknown)"
    steps = f"{decisions * action_repeat:,.0f} env steps"
    if action_repeat == 1:
        return steps
    return f"{steps} ({decisions:,.0f} decisions, action repeat {action_repeat})"


def verdict_line(v: Mapping[str, Any]) -> str:
    """One sentence from a verdict row (see :func:`benchmarks.report` ``verdicts``)."""
    label = METRIC_LABELS.get(v["metric"], v["metric"])
    pairs = f"{v['n_pairs']} pair" + ("" if v["n_pairs"] == 1 else "s")
    return (f"{v['task']}, {v['method']} vs {v['baseline']}: {label} diff "
            f"{interval(v.get('difference'))}, P(improve) "
            f"{interval(v.get('probability_of_improvement'))} → {v['verdict']} at "
            f"{budget_text(v.get('decisions_per_run'), v.get('action_repeat'))}, {pairs}")


def paper_number(value: float | str | None) -> float | None:
    """The mean of a paper value: a number, or the leading number of "667 ± 121"; None when a
    digit of the mean is illegible ("76? ± 68") or there is no number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:±.*)?", value)
    return float(m.group(1)) if m else None


def normalised(x: float | None, random: float | None, scratch: float | None) -> float | None:
    """(x - random) / (scratch - random): 0 at a random policy, 1 at the side's own scratch
    baseline; None when a value is missing or scratch equals random (no range)."""
    if x is None or random is None or scratch is None or scratch == random:
        return None
    return (x - random) / (scratch - random)


def comparability(ours: Mapping[str, Any], paper: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """(comparable, reasons) for two sides with ``env_steps`` per target run and ``observation``.

    Comparable only when both are stated and equal on both sides; each reason names a
    difference ("budgets differ 50x: ...") or a side that does not state its setting."""
    reasons = []
    a, b = ours.get("env_steps"), paper.get("env_steps")
    if a is None or b is None:
        reasons.append("a budget is not stated")
    elif a != b:
        ratio = max(a, b) / min(a, b) if min(a, b) > 0 else math.inf
        times = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"
        reasons.append(f"budgets differ {times}x: {a:,.0f} vs {b:,.0f} env steps per target run")
    oa, ob = ours.get("observation"), paper.get("observation")
    if oa is None or ob is None:
        reasons.append("an observation type is not stated")
    elif oa != ob:
        reasons.append(f"observations differ: {oa} vs {ob}")
    return not reasons, reasons
