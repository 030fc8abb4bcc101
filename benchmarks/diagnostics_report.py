"""Diagnostics per base model: the inverse-maze protocol trains several base models and several
transfer seeds per base model, and transfer success depends on the base model (van Driessel and
François-Lavet, "Component Transfer Learning for Deep RL Based on Abstract Representations",
2021, §5.2.1). Pure functions over records; the report renders their rows.

Also the readers of the arrays a run saves for the report's figures (``embedding.npz``,
``reconstruction.npz``): like every result file they may come from someone else's machine, so
they are loaded without pickles, bounded in size and checked for the keys, dtypes and shapes the
figures draw, any problem a :class:`~benchmarks.results.ResultError` naming the file.
"""
from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from benchmarks.results import ARRAYS_MAX_BYTES, ResultError, RunResult, read_bytes
from lightning_wm.artifacts import EMBEDDING, RECONSTRUCTION

#: key -> (dtype kinds, ndim) of what each figure reads
EMBEDDING_ARRAYS = {"base": ("f", 2), "transferred": ("f", 2), "next_index": ("iu", 2)}
RECONSTRUCTION_ARRAYS = {"observed": ("u", 4), "start": ("u", 4), "end": ("u", 4)}


def read_arrays(path: Path, spec: dict[str, tuple[str, int]],
                optional: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file that ``spec`` names (key -> (dtype kinds, ndim), kinds as
    numpy's ``dtype.kind``: 'f' float, 'i'/'u' integer); keys in ``optional`` may be absent and
    other keys are not read. Never unpickles: an object array is a ResultError naming the file,
    as is an archive that would unpack to more than ``ARRAYS_MAX_BYTES``."""
    path = Path(path)
    raw = read_bytes(path, ARRAYS_MAX_BYTES, "array")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ResultError(f"{path}: expected an .npz archive of arrays")
            # a compressed member can unpack to far more than the file's size
            if sum(i.file_size for i in data.zip.infolist()) > ARRAYS_MAX_BYTES:
                raise ResultError(f"{path}: arrays unpack to more than {ARRAYS_MAX_BYTES} bytes")
            missing = sorted(set(spec) - set(data.files) - set(optional))
            if missing:
                raise ResultError(f"{path}: missing array(s) {missing} (expected {sorted(spec)})")
            arrays = {k: data[k] for k in spec if k in data.files}
    except ResultError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # pickles land here
        raise ResultError(f"{path}: unreadable array archive ({e})") from None
    for key, value in arrays.items():
        kinds, ndim = spec[key]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds or value.ndim != ndim:
            got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else "raw bytes"
            raise ResultError(f"{path}: array '{key}': expected {ndim}-d of dtype kind "
                              f"'{kinds}', got {got}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ResultError(f"{path}: array '{key}': expected finite values")
    return arrays


def read_embedding(path: Path) -> dict[str, np.ndarray]:
    """``base`` and ``transferred`` [states, dims] embeddings of the same shape, and optionally
    ``next_index`` [states, k]: indices of each base state's successors."""
    a = read_arrays(path, EMBEDDING_ARRAYS, optional=("next_index",))
    base = a["base"]
    if base.shape != a["transferred"].shape or base.shape[0] == 0:
        raise ResultError(f"{path}: arrays 'base' and 'transferred': expected the same non-empty "
                          f"[states, dims] shape, got {base.shape} and {a['transferred'].shape}")
    nxt = a.get("next_index")
    if nxt is not None and (len(nxt) != len(base) or
                            (nxt.size and (nxt.min() < 0 or nxt.max() >= len(base)))):
        raise ResultError(f"{path}: array 'next_index': expected {len(base)} rows of state "
                          f"indices in [0, {len(base)})")
    return a


def read_reconstruction(path: Path) -> dict[str, np.ndarray]:
    """``observed``, ``start`` and ``end`` frames, [frames, channels, H, W] uint8, one shape."""
    a = read_arrays(path, RECONSTRUCTION_ARRAYS)
    shapes = {k: v.shape for k, v in a.items()}
    shape = shapes["observed"]
    if len(set(shapes.values())) != 1 or 0 in shape or shape[1] == 2:
        raise ResultError(f"{path}: arrays {sorted(shapes)}: expected one non-empty shape "
                          f"[frames, 1 or >= 3 channels, H, W], got {shapes}")
    return a


def check_figure_data(run_dir: Path) -> None:
    """Read the figure arrays a run folder holds, raising ResultError on the first bad one."""
    for name, read in ((EMBEDDING, read_embedding), (RECONSTRUCTION, read_reconstruction)):
        if (Path(run_dir) / name).exists():
            read(Path(run_dir) / name)




def means(targets: list[RunResult]) -> list[dict]:
    """Mean of each named diagnostic per (task, method) over completed runs."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in targets:
        if r.record.status == "completed":
            for name, v in r.record.diagnostics.items():
                acc[(r.record.task, r.record.method)][name].append(v)
    return [{"task": t, "method": m, "values": {n: float(np.mean(v)) for n, v in sorted(d.items())}}
            for (t, m), d in sorted(acc.items())]


def per_base_model(targets: list[RunResult], success_below: Mapping[str, float]) -> list[dict]:
    """Rows per (task, method, source seed): mean of each diagnostic and, for diagnostics with a
    success bound, the fraction of runs below it (the transfer success rate)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in targets:
        rec = r.record
        if rec.status == "completed" and rec.diagnostics and rec.source_seed is not None:
            for name, value in rec.diagnostics.items():
                acc[(rec.task, rec.method, rec.source_seed)][name].append(value)
    rows = []
    for (task, method, base), values in sorted(acc.items()):
        row = {"task": task, "method": method, "base_model": base,
               "n": max(len(v) for v in values.values()),
               "mean": {k: float(np.mean(v)) for k, v in sorted(values.items())},
               "success_rate": {k: float(np.mean(np.asarray(values[k]) < bound))
                                for k, bound in success_below.items() if k in values}}
        rows.append(row)
    return rows


def markdown(rows: list[dict], success_below: Mapping[str, float]) -> list[str]:
    if not rows:
        return []
    names = sorted({k for r in rows for k in r["mean"]})
    rated = sorted({k for r in rows for k in r["success_rate"]})
    head = ["task", "method", "base model", "runs", *names,
            *(f"success ({k} < {success_below[k]:g})" for k in rated)]
    lines = ["## Diagnostics per base model", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["task"], r["method"], str(r["base_model"]), str(r["n"]),
                 *(f"{r['mean'][k]:.3g}" if k in r["mean"] else "–" for k in names),
                 *(f"{100 * r['success_rate'][k]:.0f} %" if k in r["success_rate"] else "–"
                   for k in rated)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]
