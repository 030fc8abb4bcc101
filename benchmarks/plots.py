"""Learning-curve PNGs: one per suite/profile/target task, mean +- standard error per method, and
one per task with a threshold that single-task sources learn from scratch
(``..._<task>-sources.png``, the threshold drawn).

Uses matplotlib's Agg canvas directly (no pyplot), so no global backend state is touched and
plots work on machines without a display. Only mean/stderr curves are computed here; every
other number lives in :mod:`benchmarks.report`.

File names are built from the names in records, which come from other people's machines: every
figure path is made by :func:`figure_path`, which keeps it inside the output folder.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.names import PathEscape, under
from benchmarks.results import ResultError, RunResult, atomic_write_bytes, curve_of
from lightning_wm.metrics import mean_and_stderr, resample

GRID_POINTS = 200
#: file names stay well below the 255 bytes most file systems allow; longer ones are cut and
#: end in a digest of the full name, so two long names still get two files
MAX_FILENAME = 160


def figure_filename(prefix: str, *parts: str) -> str:
    """``<prefix>_<part>_..._<part>.png`` with characters unsafe in file names replaced."""
    safe = [re.sub(r"[^A-Za-z0-9._+-]+", "-", part) for part in parts]
    stem = "_".join([prefix, *safe])
    if len(stem) + 4 > MAX_FILENAME:
        digest = hashlib.sha256(stem.encode("utf-8")).hexdigest()[:12]
        stem = f"{stem[:MAX_FILENAME - 4 - 13]}-{digest}"
    return f"{stem}.png"


def curve_filename(suite: str, profile: str, task: str) -> str:
    """``curves_<suite>_<profile>_<task>.png``."""
    return figure_filename("curves", suite, profile, task)


def figure_path(out: Path, filename: str) -> Path:
    """``out/filename``, refused (ResultError) if it would resolve outside ``out``."""
    try:
        return under(Path(out), filename)
    except PathEscape as e:
        raise ResultError(str(e)) from None


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
    # Rendered in memory, then written beside the target and renamed, so a crash never leaves
    # a half-written PNG.
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


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
        path = figure_path(out, curve_filename(suite, profile, label))
        task = label.removesuffix("-sources")
        save_png(_draw(label, suite, profile, by_method, baselines, thresholds.get(task)), path)
        paths.append(path)
    return paths
