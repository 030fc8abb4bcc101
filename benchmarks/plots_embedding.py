"""The inverse-maze figure: a 2-d abstract state space, base model (normal visuals) against the
transferred model (inverse visuals), with the maze's transitions drawn between base states."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.diagnostics_report import read_embedding
from benchmarks.plots import figure_filename, figure_path, save_png
from benchmarks.results import RunResult
from lightning_wm.artifacts import EMBEDDING

#: states drawn at most: each gets its own line artists, so a huge array would stall the report
MAX_STATES = 2048


def _draw(data, title: str) -> Figure:
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    base, moved = data["base"][:MAX_STATES], data["transferred"][:MAX_STATES]
    if "next_index" in data:  # transitions of the base model's embedding, as in the paper's figures
        for i, nxt in enumerate(data["next_index"][:MAX_STATES]):
            for j in set(int(n) for n in nxt) - {i}:
                if j >= len(base):  # a successor beyond the drawn states has no point to join
                    continue
                ax.plot(*zip(base[i], base[j]), color="0.8", lw=0.6, zorder=1)
    ax.scatter(base[:, 0], base[:, 1], s=18, c="tab:blue", label="base model, normal", zorder=2)
    ax.scatter(moved[:, 0], moved[:, 1], s=18, marker="x", c="tab:red",
               label="transferred, inverse", zorder=3)
    for a, b in zip(base, moved):
        ax.plot(*zip(a, b), color="tab:red", lw=0.4, alpha=0.4, zorder=1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_embeddings(results: list[RunResult], out: Path) -> list[Path]:
    """One PNG per (task, method): the lowest-seed run with a 2-d embedding file."""
    chosen: dict = defaultdict(list)
    for r in results:
        f = r.path / EMBEDDING
        if r.record.status == "completed" and f.exists():
            chosen[(r.record.suite, r.record.profile, r.record.task, r.record.method)].append(r)
    paths = []
    for (suite, profile, task, method), runs in sorted(chosen.items()):
        r = min(runs, key=lambda x: (x.record.source_seed or 0, x.record.seed))
        data = read_embedding(r.path / EMBEDDING)
        if data["base"].shape[-1] != 2:
            continue
        title = (f"{task} / {method} (base {r.record.source_seed}, seed {r.record.seed}): "
                 f"distance {r.record.diagnostics.get('embedding_distance', float('nan')):.2f}")
        path = figure_path(out, figure_filename("embedding", suite, profile, task, method))
        save_png(_draw(data, title), path)
        paths.append(path)
    return paths
