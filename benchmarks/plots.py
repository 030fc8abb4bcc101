"""Learning-curve PNGs: one per suite/profile/target task, mean +- standard error per method, and
one per task with a threshold that single-task sources learn from scratch
(``..._<task>-sources.png``, the threshold drawn).

Uses matplotlib's Agg canvas directly (no pyplot), so no global backend state is touched and
plots work on machines without a display. Only mean/stderr curves are computed here; every
other number lives in :mod:`benchmarks.report`.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.results import RunResult, curve_of
from lightning_wm.metrics import mean_and_stderr, resample

GRID_POINTS = 200


def curve_filename(suite: str, profile: str, task: str) -> str:
    """``curves_<suite>_<profile>_<task>.png`` with characters unsafe in file names replaced."""
    safe = [re.sub(r"[^A-Za-z0-9._+-]+", "-", part) for part in (suite, profile, task)]
    return "curves_{}_{}_{}.png".format(*safe)


def method_band(runs: list[RunResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(grid, mean, stderr) over the step range every run covers; None without curves."""
    curves = [curve_of(r) for r in runs if r.curve is not None]
    if not curves:
        return None
    # The common range avoids flat extrapolated tails when runs stopped at different steps.
    lo = max(float(steps[0]) for steps, _ in curves)
    hi = min(float(steps[-1]) for steps, _ in curves)
    if hi <= lo:
        grid = np.array([hi])
    else:
        grid = np.linspace(lo, hi, GRID_POINTS)
    mean, err = mean_and_stderr(np.stack([resample(steps, returns, grid) for steps, returns in curves]))
    return grid, mean, err


def _draw(task: str, suite: str, profile: str, by_method: dict, baselines: set,
          threshold: float | None = None) -> Figure:
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for method in sorted(by_method, key=lambda m: (m not in baselines, m)):
        band = method_band(by_method[method])
        if band is None:
            continue
        grid, mean, err = band
        n = sum(r.curve is not None for r in by_method[method])
        style = {"color": "black", "linestyle": "--"} if method in baselines else {}
        line, = ax.plot(grid, mean, marker="o" if grid.size == 1 else None,
                        label=f"{method} (n={n})", **style)
        ax.fill_between(grid, mean - err, mean + err, color=line.get_color(), alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", label=f"threshold {threshold:g}")
    ax.set_title(f"{task}  ({suite} / {profile})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: Path) -> None:
    # Write beside the target and rename, so a crash never leaves a half-written PNG.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_learning_curves(results: list[RunResult], suite: str, profile: str, out: Path,
                         thresholds: Mapping[str, float] | None = None) -> list[Path]:
    """One PNG per target task of ``suite``/``profile`` with completed runs, and one per task of
    its single-task sources that has a threshold; returns the paths."""
    thresholds = thresholds or {}
    groups: dict = defaultdict(lambda: defaultdict(list))
    baselines = set()
    for r in results:
        rec = r.record
        if rec.suite != suite or rec.profile != profile or r.curve is None:
            continue
        if rec.kind == "target":
            groups[rec.task][rec.method].append(r)
            if rec.is_baseline:
                baselines.add(rec.method)
        elif len(rec.tasks) == 1 and rec.task in thresholds:
            groups[f"{rec.task}-sources"][rec.method].append(r)
    paths = []
    for label, by_method in sorted(groups.items()):
        path = Path(out) / curve_filename(suite, profile, label)
        task = label.removesuffix("-sources")
        save_png(_draw(label, suite, profile, by_method, baselines, thresholds.get(task)), path)
        paths.append(path)
    return paths
