"""The reconstruction figure: frames of a fixed trajectory, and the world model's reconstructions
of them when training started (after transfer) and when it ended (Voskuil, "Pre-training World
Models to efficiently learn related tasks", Master's thesis, Leiden University, 2022, Figure 8)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.diagnostics_report import read_reconstruction
from benchmarks.plots import figure_filename, figure_path, save_png
from benchmarks.results import RunResult
from lightning_wm.artifacts import RECONSTRUCTION

#: frames drawn at most: the figure grows with each, so a long trajectory would make it huge
MAX_FRAMES = 16
ROWS = (("observed", "observed"), ("start", "model at start"), ("end", "model at end"))


def _image(frame: np.ndarray) -> tuple[np.ndarray, str | None]:
    """[C, H, W] uint8 -> what imshow takes: [H, W] with a grey colour map, or [H, W, 3]."""
    if frame.shape[0] == 1:
        return frame[0], "gray"
    return np.moveaxis(frame[:3], 0, -1), None


def _draw(data, title: str) -> Figure:
    k = min(len(data["observed"]), MAX_FRAMES)
    fig = Figure(figsize=(1.6 * k + 0.8, 5.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ROWS), k, squeeze=False)
    for i, (key, label) in enumerate(ROWS):
        for j in range(k):
            img, cmap = _image(data[key][j])
            ax = axes[i][j]
            ax.imshow(img, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_reconstructions(results: list[RunResult], out: Path) -> list[Path]:
    """One PNG per (run kind, task, method): the lowest-seed run that saved reconstructions."""
    chosen: dict = defaultdict(list)
    for r in results:
        if r.record.status == "completed" and (r.path / RECONSTRUCTION).exists():
            rec = r.record
            chosen[(rec.suite, rec.profile, rec.task, rec.method)].append(r)
    paths = []
    for (suite, profile, task, method), runs in sorted(chosen.items()):
        r = min(runs, key=lambda x: (x.record.source_seed or 0, x.record.seed))
        data = read_reconstruction(r.path / RECONSTRUCTION)
        d = r.record.diagnostics
        title = (f"{task} / {method} (seed {r.record.seed}): reconstruction MSE "
                 f"{d.get('recon_mse_start', float('nan')):.4f} at start, "
                 f"{d.get('recon_mse_end', float('nan')):.4f} at end")
        name = figure_filename("reconstruction", suite, profile, task.replace("+", "_"), method)
        path = figure_path(out, name)
        save_png(_draw(data, title), path)
        paths.append(path)
    return paths
