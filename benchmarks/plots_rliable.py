"""rliable-style figures of one suite/profile, drawn from its scores document (:mod:`benchmarks.scores`).

The figures and their statistics follow Agarwal et al., "Deep Reinforcement Learning at the Edge
of the Statistical Precipice", NeurIPS 2021; the numbers come from :mod:`lightning_wm.metrics`,
nothing is computed here but the (runs x tasks) matrices they take:

* aggregate intervals: mean, median, IQM and (on a normalised scale) optimality gap per method,
  each with a 95 % stratified-bootstrap CI;
* performance profiles: the fraction of (run, task) scores above tau, with CI bands;
* probability of improvement: P(a run of the method beats a run of the baseline on a task),
  averaged over the tasks both ran, with CIs;
* sample efficiency: the IQM over (runs x tasks) of the normalised return at each evaluation
  step, with pointwise CI bands.

A method's matrix is built as the leaderboard's aggregates are: the primary metric of each
completed target run, per task and seed (mean over runs of one seed), over the seeds common to all
the method's tasks, normalised per task by the group's fixed scale where it has one. Figures use
matplotlib's Agg canvas (no pyplot, no global state) and fixed bootstrap seeds, so the same
scores give the same PNG bytes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from benchmarks.plot_bands import common_grid, on_grid
from benchmarks.plots import X_LABEL, figure_filename, figure_path, save_png, steps_tick
from lightning_wm import metrics as M

REPS, SEED = 2000, 0
#: bootstrap draws per evaluation step of a sample-efficiency band: one bootstrap per point, so
#: fewer than an aggregate's; percentiles of 500 draws move by well under a line width
CURVE_REPS = 500
TAUS = 101


@dataclass(frozen=True)
class MethodScores:
    """One method's (seeds x tasks) matrix of the primary metric."""
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: np.ndarray

    def on(self, tasks: tuple[str, ...]) -> np.ndarray:
        return self.scores[:, [self.tasks.index(t) for t in tasks]]


@dataclass(frozen=True)
class GroupScores:
    """What the figures of one suite/profile draw."""
    methods: dict[str, MethodScores]
    baselines: tuple[str, ...]
    normalised: bool
    unit: str


def _scale_of(group: dict) -> dict[str, tuple[float, float]] | None:
    scale = group.get("scale")
    return {t: (v["random"], v["reference"]) for t, v in scale.items()} if scale else None


def _normalise(values: np.ndarray, tasks: tuple[str, ...], scale: dict | None) -> np.ndarray:
    """Per task (x - random) / (reference - random) of a (runs x tasks) or (runs x tasks x
    points) array; unchanged without a scale."""
    if scale is None:
        return values
    lo, hi = [scale[t][0] for t in tasks], [scale[t][1] for t in tasks]
    if values.ndim == 2:
        return M.reference_normalised(values, lo, hi)
    runs, n_tasks, points = values.shape
    flat = np.moveaxis(values, 2, 1).reshape(runs * points, n_tasks)
    return np.moveaxis(M.reference_normalised(flat, lo, hi).reshape(runs, points, n_tasks), 1, 2)


def _targets(doc: dict, suite: str, profile: str) -> list[dict]:
    return [r for r in doc["runs"] if r["suite"] == suite and r["profile"] == profile
            and r["kind"] == "target" and r["status"] == "completed" and r["metrics"]]


def group_scores(doc: dict, suite: str, profile: str) -> GroupScores:
    group = next(g for g in doc["groups"] if (g["suite"], g["profile"]) == (suite, profile))
    scale, primary = _scale_of(group), group["primary"]
    per_seed: dict = defaultdict(lambda: defaultdict(list))
    for r in _targets(doc, suite, profile):
        per_seed[(r["task"], r["method"])][r["seed"]].append(r["metrics"][primary])
    methods = {}
    for method in sorted({m for _, m in per_seed}):
        tasks = tuple(sorted(t for t, m in per_seed if m == method))
        seeds = tuple(sorted(set.intersection(*(set(per_seed[(t, method)]) for t in tasks))))
        if not seeds or (scale is not None and not set(tasks) <= set(scale)):
            continue
        mat = np.array([[np.mean(per_seed[(t, method)][s]) for t in tasks] for s in seeds])
        methods[method] = MethodScores(tasks, seeds, _normalise(mat, tasks, scale))
    baselines = tuple(sorted({r["method"] for r in _targets(doc, suite, profile)
                              if r["is_baseline"]}))
    unit = (f"{primary}, normalised (random 0, reference 1)" if scale else f"{primary}, raw")
    return GroupScores(methods, baselines, scale is not None, unit)


def curve_matrix(doc: dict, suite: str, profile: str,
                 method: MethodScores, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(grid, seeds x tasks x points) of one method's curves on the steps all of them cover;
    runs of one seed and task are averaged, as their metric is."""
    group = next(g for g in doc["groups"] if (g["suite"], g["profile"]) == (suite, profile))
    by_cell: dict = defaultdict(list)
    for r in _targets(doc, suite, profile):
        if r["method"] == name and r["seed"] in method.seeds and r["task"] in method.tasks:
            c = r["curve"]
            steps = np.asarray(c["env_steps"], float)
            keep = np.append(steps[1:] != steps[:-1], True)  # a resumed run's repeated step
            by_cell[(r["task"], r["seed"])].append((steps[keep], np.asarray(c["returns"])[keep]))
    grid = common_grid([c for cs in by_cell.values() for c in cs])
    cube = np.array([[on_grid(by_cell[(t, s)], grid).mean(axis=0) for t in method.tasks]
                     for s in method.seeds])
    return grid, _normalise(cube, method.tasks, _scale_of(group))


# -- drawing --------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _colors(names: list[str], baselines: tuple[str, ...]) -> dict[str, str]:
    # as in the learning-curve figures: the baseline black, the others the colour cycle
    others = iter(f"C{i % 10}" for i in range(len(names)))
    return {n: "black" if n in baselines else next(others) for n in names}


def _interval_rows(ax, rows: list[tuple[str, M.Interval]], colors: dict, title: str) -> None:
    for y, (name, ci) in enumerate(rows):
        ax.plot([ci.low, ci.high], [y, y], color=colors[name], linewidth=6, alpha=0.45,
                solid_capstyle="butt")
        ax.plot([ci.point], [y], marker="|", markersize=16, color=colors[name])
    ax.set_yticks(range(len(rows)), [n for n, _ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_title(title, fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))


def draw_aggregates(g: GroupScores) -> Figure:
    stats: list[tuple[str, Callable]] = [("mean", M.mean), ("median", M.median), ("IQM", M.iqm)]
    if g.normalised:  # the gap below 1 means "below the reference" only on a normalised scale
        stats.append(("optimality gap", M.optimality_gap))
    names = sorted(g.methods)
    colors = _colors(names, g.baselines)
    fig = _figure(3.2 * len(stats), 0.9 + 0.45 * len(names))
    for i, (label, fn) in enumerate(stats):
        ax = fig.add_subplot(1, len(stats), i + 1)
        rows = [(n, M.stratified_bootstrap_ci(g.methods[n].scores, fn, REPS, seed=SEED))
                for n in names]
        _interval_rows(ax, rows, colors, label)
        if i:
            ax.set_yticklabels([])
    fig.supxlabel(g.unit, fontsize="small")
    fig.tight_layout()
    return fig


def draw_profiles(g: GroupScores) -> Figure:
    names = sorted(g.methods)
    colors = _colors(names, g.baselines)
    every = np.concatenate([m.scores.ravel() for m in g.methods.values()])
    taus = np.linspace(every.min(), every.max(), TAUS) if np.ptp(every) > 0 else every[:1]
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    for n in names:
        point, low, high = M.performance_profile_ci(g.methods[n].scores, taus, REPS, seed=SEED)
        ax.plot(taus, point, color=colors[n], label=f"{n} (n={g.methods[n].scores.size})")
        ax.fill_between(taus, low, high, color=colors[n], alpha=0.2, linewidth=0)
    ax.set_xlabel(f"tau ({g.unit})")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def improvement_rows(g: GroupScores) -> list[tuple[str, str, tuple[str, ...], M.Interval]]:
    """(method, baseline, shared tasks, P(method > baseline) with CI) per non-baseline method."""
    rows = []
    for base in g.baselines:
        if base not in g.methods:
            continue
        for name in sorted(set(g.methods) - set(g.baselines)):
            shared = tuple(t for t in g.methods[name].tasks if t in g.methods[base].tasks)
            if shared:
                ci = M.probability_of_improvement_ci(g.methods[name].on(shared),
                                                     g.methods[base].on(shared), REPS, seed=SEED)
                rows.append((name, base, shared, ci))
    return rows


def draw_improvement(rows: list) -> Figure:
    fig = _figure(6.5, 1.0 + 0.45 * len(rows))
    ax = fig.add_subplot()
    labels = [f"P({n} > {b})" for n, b, _, _ in rows]
    colors = {lab: f"C{i % 10}" for i, lab in enumerate(labels)}
    _interval_rows(ax, [(lab, ci) for lab, (_, _, _, ci) in zip(labels, rows)], colors,
                   "probability of improvement over the baseline")
    ax.axvline(0.5, color="dimgrey", linestyle="--", linewidth=1)
    ax.set_xlim(-0.02, 1.02)
    fig.tight_layout()
    return fig


def draw_sample_efficiency(doc: dict, suite: str, profile: str, g: GroupScores) -> Figure:
    names = sorted(g.methods)
    colors = _colors(names, g.baselines)
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    for n in names:
        grid, cube = curve_matrix(doc, suite, profile, g.methods[n], n)
        cis = M.pointwise_ci(cube, M.iqm, CURVE_REPS, seed=SEED)
        ax.plot(grid, [c.point for c in cis], color=colors[n], label=n,
                marker="o" if grid.size == 1 else None)
        ax.fill_between(grid, [c.low for c in cis], [c.high for c in cis], color=colors[n],
                        alpha=0.2, linewidth=0)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel("IQM of " + ("normalised return" if g.normalised else "raw return"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.xaxis.set_major_formatter(FuncFormatter(steps_tick))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Drawn:
    """A written figure: its file and what it shows, for the page."""
    path: Path
    kind: str


def plot_rliable(doc: dict, suite: str, profile: str, out: Path) -> list[Drawn]:
    """The four figures of ``suite``/``profile`` that its data allow, written into ``out``:
    nothing without a completed target run; no improvement plot without a baseline beside
    another method."""
    g = group_scores(doc, suite, profile)
    if not g.methods:
        return []
    todo: list[tuple[str, Callable[[], Figure]]] = [
        ("aggregates", lambda: draw_aggregates(g)), ("profiles", lambda: draw_profiles(g))]
    rows = improvement_rows(g)
    if rows:
        todo.append(("improvement", lambda: draw_improvement(rows)))
    todo.append(("sample_efficiency", lambda: draw_sample_efficiency(doc, suite, profile, g)))
    drawn = []
    for kind, draw in todo:
        path = figure_path(out, figure_filename("rliable", suite, profile, kind))
        save_png(draw(), path)
        drawn.append(Drawn(path, kind))
    return drawn


__all__ = ["GroupScores", "MethodScores", "Drawn", "group_scores", "curve_matrix",
                      "improvement_rows", "plot_rliable"]
