"""Learning-curve PNGs: one per suite/profile/target task with each method's mean over seeds and
a 95 % bootstrap CI band of that mean (:mod:`benchmarks.plot_bands` says how seeds are aligned
and resampled); one per task with a threshold that single-task sources learn from scratch
(``..._<task>-sources.png``); and one companion figure of every source run's own curves on its
tasks (``..._sources.png``, :func:`plot_source_curves`). Thresholds are dashed lines.

Steps on the x axis are the curve's ``env_steps``: the evaluator's count of agent decisions
summed over vectorised envs and ranks (an env's action repeat happens inside one decision).

Uses matplotlib's Agg canvas directly (no pyplot), so no global backend state is touched and
plots work on machines without a display. Every other number lives in :mod:`benchmarks.report`.

File names are built from the names in records, which come from other people's machines: every
figure path is made by :func:`figure_path`, which keeps it inside the output folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from benchmarks.names import PathEscape, under
from benchmarks.plot_bands import Curve, common_grid, mean_ci_band, on_grid
from benchmarks.results import ResultError, RunResult, atomic_write_bytes, curve_of

#: bootstrap draws per band and the generator's seed: fixed, so a PNG is byte-for-byte the same
#: on every report of the same runs
BAND_REPS = 2000
BAND_SEED = 0
#: curves with more points than this are drawn without markers, which would hide the line
MARKER_LIMIT = 40
X_LABEL = "decisions (agent steps; x action repeat = simulator steps)"
LEGEND_TITLE = "mean, 95 % bootstrap CI (n = runs)"
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


@dataclasses.dataclass(frozen=True)
class Band:
    """What one line of a figure draws: the mean over ``runs`` curves and its CI band."""
    grid: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int


def band_of(curves: list[Curve]) -> Band | None:
    """The band of ``curves`` (one per seed); None without curves."""
    if not curves:
        return None
    grid = common_grid(curves)
    # a fresh generator per band, so a band does not depend on which were drawn before it
    mean, low, high = mean_ci_band(on_grid(curves, grid), BAND_REPS,
                                   np.random.default_rng(BAND_SEED))
    return Band(grid, mean, low, high, len(curves))


def method_band(runs: list[RunResult]) -> Band | None:
    """The band of the completed runs among ``runs``."""
    return band_of([curve_of(r) for r in runs if r.curve is not None])


def return_label(episodes: int | None, task_mean: bool = False) -> str:
    """The y label: what one curve point averages, as far as it is known."""
    what = (f"mean of {episodes} evaluation episode{'s' if episodes != 1 else ''}"
            if episodes else "evaluation episodes")
    return f"return ({what}{', mean over tasks' if task_mean else ''})"


def _draw_bands(ax: Axes, bands: Mapping[str, Band], colors: Mapping[str, str]) -> None:
    for name, band in bands.items():
        marker = "o" if band.grid.size <= MARKER_LIMIT else None
        line, = ax.plot(band.grid, band.mean, marker=marker, markersize=3, color=colors[name],
                        label=f"{name} (n={band.runs})")
        ax.fill_between(band.grid, band.low, band.high, color=line.get_color(), alpha=0.2,
                        linewidth=0)


def _draw_threshold(ax: Axes, threshold: float | None) -> None:
    if threshold is None:
        return
    label = f"threshold {threshold:g}"
    ax.axhline(threshold, color="dimgrey", linestyle="--", linewidth=1.2, label=label)
    # named on the line too, so the figure reads without the legend
    ax.text(0.01, threshold, label, transform=blended_transform_factory(ax.transAxes, ax.transData),
            va="bottom", fontsize="x-small", color="dimgrey")


def steps_tick(steps: float, _pos: object = None) -> str:
    """A step count as a short tick label: 250000 -> "250k", 1500000 -> "1.5M"."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(steps) >= scale:
            return f"{steps / scale:g}{suffix}"
    return f"{steps:g}"


def _finish(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(ylabel, fontsize="small")
    # long step counts in full would run into each other
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.xaxis.set_major_formatter(FuncFormatter(steps_tick))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize="small", title=LEGEND_TITLE, title_fontsize="x-small")


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _draw(task: str, suite: str, profile: str, by_method: dict, baselines: set,
          threshold: float | None = None, episodes: int | None = None) -> Figure:
    fig = _new_figure(7, 4.5)
    ax = fig.add_subplot()
    order = sorted(by_method, key=lambda m: (m not in baselines, m))
    bands = {m: b for m in order if (b := method_band(by_method[m])) is not None}
    # the baseline is black so transfer methods stand out against it; the others take the cycle
    others = iter(f"C{i}" for i in range(len(order)))
    colors = {m: "black" if m in baselines else next(others) for m in bands}
    _draw_bands(ax, bands, colors)
    _draw_threshold(ax, threshold)
    _finish(ax, f"{task}  ({suite} / {profile})", return_label(episodes))
    fig.tight_layout()
    return fig


def save_png(fig: Figure, path: Path) -> None:
    # Rendered in memory, then written beside the target and renamed, so a crash never leaves
    # a half-written PNG.
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def plot_learning_curves(results: list[RunResult], suite: str, profile: str, out: Path,
                         thresholds: Mapping[str, float] | None = None,
                         episodes: int | None = None) -> list[Path]:
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
        save_png(_draw(label, suite, profile, by_method, baselines, thresholds.get(task),
                       episodes), path)
        paths.append(path)
    return paths


# -- the sources' own curves ----------------------------------------------------------------------
def source_panels(results: list[RunResult], suite: str,
                  profile: str) -> dict[str, dict[str, list[Curve]]]:
    """``{panel: {source: [curve per seed]}}`` of the completed source runs of ``suite``/
    ``profile``. A panel is a task, read from a multi-task run's per-task curves; a multi-task run
    recorded before those existed has only its mean over tasks, in the panel ``"a+b"``."""
    panels: dict = defaultdict(lambda: defaultdict(list))
    for r in results:
        rec = r.record
        if rec.suite != suite or rec.profile != profile or rec.kind != "source" or r.curve is None:
            continue
        if r.task_curves:
            for task, curve in r.task_curves.items():
                # through curve_of, so a resumed run's repeated step counts once here too
                panels[task][rec.method].append(curve_of(dataclasses.replace(r, curve=curve)))
        else:
            panels[rec.task][rec.method].append(curve_of(r))
    return {p: dict(sorted(by_source.items())) for p, by_source in sorted(panels.items())}


def draw_sources(panels: Mapping[str, Mapping[str, list[Curve]]], suite: str, profile: str,
                 thresholds: Mapping[str, float] | None = None,
                 episodes: int | None = None) -> tuple[Figure, dict[str, dict[str, Band]]]:
    """One subplot per panel; returns the figure and the bands drawn, by panel and source."""
    thresholds = thresholds or {}
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _new_figure(max(6.0, 5.2 * cols), 3.8 * rows + 0.5)
    # one colour per source across all panels, so a source is found again at a glance
    names = sorted({s for by_source in panels.values() for s in by_source})
    colors = {s: f"C{i % 10}" for i, s in enumerate(names)}
    drawn = {}
    for i, (panel, by_source) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        bands = {s: b for s, curves in by_source.items() if (b := band_of(curves)) is not None}
        _draw_bands(ax, bands, colors)
        task_mean = "+" in panel  # task names never hold '+'; joined ones are a run's task mean
        # a joined name has no threshold of its own: only a single task's is drawn
        _draw_threshold(ax, None if task_mean else thresholds.get(panel))
        _finish(ax, f"{panel} (mean over tasks)" if task_mean else panel,
                return_label(episodes, task_mean))
        drawn[panel] = bands
    fig.suptitle(f"sources on their own tasks  ({suite} / {profile})")
    fig.tight_layout()
    return fig, drawn


def plot_source_curves(results: list[RunResult], suite: str, profile: str, out: Path,
                       thresholds: Mapping[str, float] | None = None,
                       episodes: int | None = None) -> list[Path]:
    """``curves_<suite>_<profile>_sources.png`` when ``suite``/``profile`` has completed source
    runs (its path in a list), else nothing (an empty list)."""
    panels = source_panels(results, suite, profile)
    if not panels:
        return []
    path = figure_path(out, figure_filename("curves", suite, profile, "sources"))
    save_png(draw_sources(panels, suite, profile, thresholds, episodes)[0], path)
    return [path]
