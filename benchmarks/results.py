"""Run records, learning curves and their on-disk layout.

Layout under an output root (file names from :mod:`lightning_wm.artifacts`)::

    <root>/<suite>/<profile>/runs/<run_id>/record.json     the run record (this module's schema)
                                           curve.csv       env_steps,return (evaluation curve)
                                           task_curves.csv env_steps,<task>,... (multi-task runs:
                                                           each task's score behind the curve)
                                           checkpoints/    last.ckpt (kept out of git)
                                           logs/           Lightning CSV logs

Every write is atomic (write a temporary file in the same folder, fsync, rename), so a crash
leaves either the old file or the new one. Loading never skips a bad file silently: a corrupt
or truncated record raises :class:`ResultError` naming the file.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lightning_wm.artifacts import CURVE, RECORD, TASK_CURVES

SCHEMA_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)
Status = Literal["completed", "failed", "blocked", "running"]


class ResultError(ValueError):
    """A result file is missing, corrupt or truncated; the message names it."""


class SourceUse(BaseModel):
    """A source run a target consumed, and what it cost."""
    model_config = ConfigDict(extra="forbid")
    slot: str
    run_id: str
    checkpoint_sha256: str
    env_steps: int
    wall_time_s: float


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config_hash: str
    git_commit: str
    packages: dict[str, str]
    python: str
    platform: str
    sources: list[SourceUse] = Field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    resumed_from_step: int = 0


class RunRecord(BaseModel):
    """One run of one agent (a source or a target) under one seed."""
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    run_id: str
    suite: str
    profile: str
    kind: Literal["source", "target"]
    task: str                    # target task name, or "+".join(tasks) for a source
    tasks: list[str]
    method: str                  # method name (targets) or source name (sources)
    seed: int
    source_seed: int | None = None
    baseline_run_id: str | None = None   # the paired scratch run of a transfer target
    is_baseline: bool = False
    status: Status
    error: str | None = None
    budget: int
    env_steps: int = 0
    updates: int = 0
    wall_time_s: float = 0.0
    device: str = "cpu"
    provenance: Provenance
    diagnostics: dict[str, float] = Field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Env steps per wall-clock second (0 when nothing ran)."""
        return self.env_steps / self.wall_time_s if self.wall_time_s > 0 else 0.0


@dataclass(frozen=True)
class Curve:
    steps: np.ndarray    # int64, ascending
    returns: np.ndarray  # float64


@dataclass(frozen=True)
class RunResult:
    record: RunRecord
    curve: Curve | None  # None for runs that did not complete
    path: Path
    #: per task of a completed multi-task run (None for single-task runs)
    task_curves: dict[str, Curve] | None = None


# -- atomic writes --------------------------------------------------------------------------------
def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(run_dir: Path, record: RunRecord) -> None:
    atomic_write_text(Path(run_dir) / RECORD, record.model_dump_json(indent=2) + "\n")


def write_curve(run_dir: Path, steps: Iterable[int], returns: Iterable[float]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["env_steps", "return"])
    for s, r in zip(steps, returns):
        writer.writerow([int(s), repr(float(r))])
    atomic_write_text(Path(run_dir) / CURVE, buf.getvalue())


def write_task_curves(run_dir: Path, tasks: list[str], steps: Iterable[int],
                      per_task: Iterable[Iterable[float]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["env_steps", *tasks])
    for s, scores in zip(steps, per_task):
        scores = [repr(float(x)) for x in scores]
        if len(scores) != len(tasks):
            raise ValueError(f"{len(scores)} task scores for {len(tasks)} tasks at step {s}")
        writer.writerow([int(s), *scores])
    atomic_write_text(Path(run_dir) / TASK_CURVES, buf.getvalue())


# -- reading --------------------------------------------------------------------------------------
def read_record(path: Path) -> RunRecord:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultError(f"{path}: record file is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultError(f"{path}: corrupt or truncated JSON ({e})") from None
    try:
        return RunRecord.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise ResultError(f"{path}: field '{where}': {first['msg']}") from None


def _read_table(path: Path, header: list[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and a ``[rows, len(header) - 1]`` array of scores from a CSV whose first column is
    ascending ``env_steps`` and whose header must be exactly ``header``."""
    path = Path(path)
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    except FileNotFoundError:
        raise ResultError(f"{path}: {what} file is missing") from None
    if not rows or rows[0] != header:
        raise ResultError(f"{path}: expected header {','.join(header)!r}")
    width = len(header)
    try:
        if any(len(r) != width for r in rows[1:]):
            raise ValueError(f"expected {width} columns on every row")
        steps = np.array([int(r[0]) for r in rows[1:]], dtype=np.int64)
        scores = np.array([[float(x) for x in r[1:]] for r in rows[1:]], dtype=np.float64)
    except ValueError as e:
        raise ResultError(f"{path}: malformed row ({e})") from None
    if len(steps) == 0:
        raise ResultError(f"{path}: {what} has no rows")
    if np.any(np.diff(steps) < 0):
        raise ResultError(f"{path}: env_steps are not ascending")
    return steps, scores.reshape(len(steps), width - 1)


def read_curve(path: Path) -> Curve:
    steps, scores = _read_table(path, ["env_steps", "return"], "curve")
    return Curve(steps, scores[:, 0])


def curve_of(r: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """The run's curve, a repeated step kept once (its last value): a resumed run may evaluate
    its resume step twice, and the metrics need strictly ascending steps."""
    s, y = r.curve.steps, r.curve.returns
    keep = np.append(s[1:] != s[:-1], True)
    return s[keep], y[keep]


def read_task_curves(path: Path, tasks: list[str]) -> dict[str, Curve]:
    """``{task: Curve}`` from a task-curves file whose columns must be ``tasks``."""
    steps, scores = _read_table(path, ["env_steps", *tasks], "task-curves")
    return {t: Curve(steps, scores[:, i]) for i, t in enumerate(tasks)}


def load_run(run_dir: Path) -> RunResult:
    run_dir = Path(run_dir)
    record = read_record(run_dir / RECORD)
    if record.status != "completed":
        return RunResult(record, None, run_dir)
    per_task = None  # runs from before per-task curves were recorded have none
    if (run_dir / TASK_CURVES).exists():
        per_task = read_task_curves(run_dir / TASK_CURVES, record.tasks)
    return RunResult(record, read_curve(run_dir / CURVE), run_dir, per_task)


def run_dirs(root: Path) -> list[Path]:
    """Every run folder below ``root`` (folders that hold a record file), sorted."""
    return sorted(p.parent for p in Path(root).rglob(RECORD))


def load_results(root: Path) -> list[RunResult]:
    """Load every run below ``root``; raise on the first bad file, naming it."""
    root = Path(root)
    if not root.exists():
        raise ResultError(f"{root}: no such results directory")
    return [load_run(d) for d in run_dirs(root)]


def validate_results(root: Path) -> list[str]:
    """Check every record and curve below ``root``; return the problems, one per file."""
    problems = []
    for d in run_dirs(root):
        try:
            load_run(d)
        except ResultError as e:
            problems.append(str(e))
    return problems


def as_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays and NaN/inf to JSON-safe values (NaN/inf become None)."""
    if isinstance(obj, dict):
        return {str(k): as_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return as_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
