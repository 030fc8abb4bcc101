"""Run records, learning curves and their on-disk layout.

Layout under an output root (file names from :mod:`lightning_wm.artifacts`)::

    <root>/<suite>/<profile>/runs/<run_id>/record.json     the run record (this module's schema)
                                           curve.csv       env_steps,return (evaluation curve)
                                           task_curves.csv env_steps,<task>,... (multi-task runs:
                                                           each task's score behind the curve)
                                           checkpoints/    last.ckpt (kept out of git)
                                           logs/           Lightning CSV logs

Every write is atomic (write a temporary file in the same folder, fsync, rename, fsync the
folder), so a crash leaves either the old file or the new one. Loading never skips a bad file
silently: a corrupt or truncated record raises :class:`ResultError` naming the file.

Results directories travel between machines and the leaderboard accepts them from other people,
so everything read here is untrusted: reads are bounded in size, only regular files are read,
names in a record must be identifiers (:mod:`benchmarks.names`; they become file names of the
report), numbers must be finite and arrays are loaded without pickles.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from benchmarks.names import NAME_FORM, is_name, is_run_id
from lightning_wm.artifacts import CURVE, RECORD, TASK_CURVES
from lightning_wm.fileio import fsync_dir

SCHEMA_VERSION = 1
_UMASK = os.umask(0)
os.umask(_UMASK)
#: ``interrupted``: stopped by SIGINT/SIGTERM; a rerun resumes it from its last checkpoint
Status = Literal["completed", "failed", "blocked", "running", "interrupted"]
#: upper bounds on what one file may hold: a record is a few kB, a curve a few MB at most, so
#: anything far larger is refused before it is parsed rather than filling memory
RECORD_MAX_BYTES = 1 << 20
TABLE_MAX_BYTES = 256 << 20
ARRAYS_MAX_BYTES = 256 << 20
RUN_ID_FORM = NAME_FORM.replace("1-64", "1-200")
NO_RUNS = "no runs under {root} (expected <suite>/<profile>/runs/<run_id>/" + RECORD + " in it)"


class ResultError(ValueError):
    """A result file is missing, corrupt or truncated; the message names it."""


def _name(text: str) -> str:
    if not is_name(text):
        raise ValueError(f"{text!r} is not a valid name (expected {NAME_FORM})")
    return text


def _run_id(text: str) -> str:
    if not is_run_id(text):
        raise ValueError(f"{text!r} is not a valid run id (expected {RUN_ID_FORM})")
    return text


def _task(text: str) -> str:
    # a multi-task source's task is its tasks joined by '+'
    if not all(is_name(part) for part in text.split("+")):
        raise ValueError(f"{text!r} is not a valid task name (expected names joined by '+', each "
                         f"{NAME_FORM})")
    return text


Name = Annotated[str, AfterValidator(_name)]
RunId = Annotated[str, AfterValidator(_run_id)]
TaskName = Annotated[str, AfterValidator(_task)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]


class SourceUse(BaseModel):
    """A source run a target consumed, and what it cost."""
    model_config = ConfigDict(extra="forbid")
    slot: Name
    run_id: RunId
    checkpoint_sha256: Sha256
    env_steps: Count
    wall_time_s: Annotated[float, Field(ge=0)]


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config_hash: str
    git_commit: str
    packages: dict[str, str]
    python: str
    platform: str
    # processor / instruction set (provenance.cpu): where float rounding, hence the last digits of
    # every number, may differ; absent in records written before it was kept
    cpu: str | None = None
    sources: list[SourceUse] = Field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    resumed_from_step: int = 0


class RunRecord(BaseModel):
    """One run of one agent (a source or a target) under one seed."""
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    run_id: RunId
    suite: Name                  # a registry name (suites/<suite>.yaml), never a path
    profile: Name
    kind: Literal["source", "target"]
    task: TaskName               # target task name, or "+".join(tasks) for a source
    tasks: list[Name] = Field(min_length=1)
    method: Name                 # method name (targets) or source name (sources)
    seed: int
    source_seed: int | None = None
    baseline_run_id: RunId | None = None   # the paired scratch run of a transfer target
    is_baseline: bool = False
    status: Status
    error: str | None = None
    budget: Count
    env_steps: Count = 0
    updates: Count = 0
    wall_time_s: Annotated[float, Field(ge=0)] = 0.0
    device: str = "cpu"
    provenance: Provenance
    diagnostics: dict[Name, float] = Field(default_factory=dict)   # names become table columns
    #: sha256 of ``checkpoints/model.ckpt`` as the run wrote it; a target reading this run as a
    #: source checks the file against it and refuses a file that differs
    #: (records written before it existed have none)
    model_sha256: Sha256 | None = None

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
def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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
def read_bytes(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is a ResultError."""
    path = Path(path)
    try:
        if not path.is_file():  # a folder, a FIFO (would block) or a device (endless)
            raise ResultError(f"{path}: {what} is not a regular file" if path.exists() or
                              path.is_symlink() else f"{path}: {what} file is missing")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise ResultError(f"{path}: {what} file cannot be read ({e.strerror or e})") from None
    if len(data) > limit:
        raise ResultError(f"{path}: {what} file is larger than {limit} bytes")
    return data


def _read_text(path: Path, limit: int, what: str) -> str:
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultError(f"{path}: corrupt or truncated {what} (not UTF-8 at byte {e.start})") \
            from None


def _finite(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"non-finite number {text}")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name}")


def read_record(path: Path) -> RunRecord:
    path = Path(path)
    text = _read_text(path, RECORD_MAX_BYTES, "record")
    try:
        data = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: corrupt or truncated JSON ({e})") from None
    except (ValueError, RecursionError) as e:  # NaN/Infinity, or nesting too deep to parse
        raise ResultError(f"{path}: corrupt JSON ({str(e) or 'nested too deeply'})") from None
    try:
        return RunRecord.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        msg = first["msg"].removeprefix("Value error, ")
        raise ResultError(f"{path}: field '{where}': {msg}") from None


def _read_table(path: Path, header: list[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and a ``[rows, len(header) - 1]`` array of scores from a CSV whose first column is
    ascending non-negative ``env_steps``, whose scores are finite and whose header must be
    exactly ``header``."""
    path = Path(path)
    text = _read_text(path, TABLE_MAX_BYTES, what)
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as e:
        raise ResultError(f"{path}: malformed {what} ({e})") from None
    if not rows or rows[0] != header:
        raise ResultError(f"{path}: expected header {','.join(header)!r}")
    width = len(header)
    try:
        if any(len(r) != width for r in rows[1:]):
            raise ValueError(f"expected {width} columns on every row")
        steps = np.array([int(r[0]) for r in rows[1:]], dtype=np.int64)
        scores = np.array([[_finite(x) for x in r[1:]] for r in rows[1:]], dtype=np.float64)
    except (ValueError, OverflowError) as e:
        raise ResultError(f"{path}: malformed row ({e}; expected integer steps and finite "
                          "scores)") from None
    if len(steps) == 0:
        raise ResultError(f"{path}: {what} has no rows")
    if np.any(steps < 0):
        raise ResultError(f"{path}: env_steps must not be negative")
    if np.any(np.diff(steps) < 0):
        raise ResultError(f"{path}: env_steps are not ascending")
    return steps, scores.reshape(len(steps), width - 1)


def read_curve(path: Path) -> Curve:
    steps, scores = _read_table(path, ["env_steps", "return"], "curve")
    return Curve(steps, scores[:, 0])


def curve_of(r: RunResult, task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The run's curve (or, with ``task``, a multi-task run's curve on that task), a repeated
    step kept once (its last value): a resumed run may evaluate its resume step twice, and the
    metrics need strictly ascending steps."""
    curve = r.curve if task is None else r.task_curves[task]
    s, y = curve.steps, curve.returns
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
