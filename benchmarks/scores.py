"""Raw score files: every run's curve, final metrics and provenance, without the checkpoints.

``scores.json`` (schema ``lightning-wm-scores``, version :data:`SCORES_VERSION`)::

    {"schema": "lightning-wm-scores", "schema_version": 1,
     "groups": [{"suite", "profile", "primary", "final_fraction",
                 "scale": {task: {"random", "reference"}} | null}],
     "runs": [{"suite", "profile", "task", "method", "seed", "run_id", "kind", "tasks",
               "source_seed", "baseline_run_id", "is_baseline", "status", "budget",
               "env_steps", "wall_time_s",
               "metrics": {"auc", "final"} | null,
               "curve": {"env_steps": [...], "returns": [...]} | null,
               "provenance": {"config_hash", "git_commit", "model_sha256", "source_run_ids"}}]}

Runs are sorted by suite, profile, task, method, seed and run id (the run id is unique: one seed
of a method may run against several base models). ``scale`` is the group's fixed per-task
normalisation, (x - random) / (reference - random), or null where the leaderboard's aggregates
are raw. ``scores.csv`` holds the same runs in long form, one row per curve point (a run without
a curve has one row with empty step and return), metrics and provenance repeated on each row.

The files travel to other people, who check them with ``python -m benchmarks validate``; the
reader here is that check: bounded size, finite numbers, no unknown fields, and an error names
the file and the field.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchmarks.results import (TABLE_MAX_BYTES, Count, Name, ResultError, RunId,
                                RunResult, Sha256, Status, TaskName, atomic_write_text, curve_of,
                                read_bytes)
from lightning_wm import metrics as M

SCHEMA = "lightning-wm-scores"
SCORES_VERSION = 1
SCORES_JSON, SCORES_CSV = "scores.json", "scores.csv"
#: a scores file holds every run's curve: far larger than one record, bounded like a curve table
SCORES_MAX_BYTES = TABLE_MAX_BYTES
CSV_HEADER = ["suite", "profile", "kind", "task", "method", "seed", "run_id", "status", "auc",
              "final", "config_hash", "git_commit", "model_sha256", "env_steps", "return"]
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScoreCurve(BaseModel):
    model_config = _STRICT
    env_steps: list[Count]
    returns: list[float]

    @model_validator(mode="after")
    def _aligned(self) -> "ScoreCurve":
        if len(self.env_steps) != len(self.returns) or not self.env_steps:
            raise ValueError("env_steps and returns need the same, non-zero length")
        if any(b < a for a, b in zip(self.env_steps, self.env_steps[1:])):
            raise ValueError("env_steps are not ascending")
        return self


class ScoreMetrics(BaseModel):
    model_config = _STRICT
    auc: float
    final: float


class ScoreProvenance(BaseModel):
    model_config = _STRICT
    config_hash: str
    git_commit: str
    model_sha256: Sha256 | None = None
    source_run_ids: list[RunId] = Field(default_factory=list)


class ScoreRun(BaseModel):
    model_config = _STRICT
    suite: Name
    profile: Name
    task: TaskName
    method: Name
    seed: int
    run_id: RunId
    kind: Literal["source", "target"]
    tasks: list[Name] = Field(min_length=1)
    source_seed: int | None = None
    baseline_run_id: RunId | None = None
    is_baseline: bool = False
    status: Status
    budget: Count
    env_steps: Count
    wall_time_s: Annotated[float, Field(ge=0)]
    metrics: ScoreMetrics | None
    curve: ScoreCurve | None
    provenance: ScoreProvenance


class ScaleEntry(BaseModel):
    model_config = _STRICT
    random: float
    reference: float


class ScoreGroup(BaseModel):
    model_config = _STRICT
    suite: Name
    profile: Name
    primary: Name
    final_fraction: Annotated[float, Field(ge=0, le=1)]
    scale: dict[Name, ScaleEntry] | None = None


class ScoresFile(BaseModel):
    model_config = _STRICT
    schema_: Literal["lightning-wm-scores"] = Field(alias="schema")
    schema_version: int
    groups: list[ScoreGroup]
    runs: list[ScoreRun]

    @model_validator(mode="after")
    def _consistent(self) -> "ScoresFile":
        # run ids are unique within a suite/profile only (two suites' smoke runs can share one)
        ids = Counter((r.suite, r.profile, r.run_id) for r in self.runs)
        dup = sorted("/".join(k) for k, n in ids.items() if n > 1)
        if dup:
            raise ValueError(f"run ids appear more than once in one suite/profile: {dup[:3]}")
        known = {(g.suite, g.profile) for g in self.groups}
        stray = sorted({(r.suite, r.profile) for r in self.runs} - known)
        if stray:
            raise ValueError(f"runs of {stray[0][0]}/{stray[0][1]} have no entry in 'groups'")
        return self


# -- building -------------------------------------------------------------------------------------
def _run_entry(r: RunResult, final_fraction: float) -> dict[str, Any]:
    rec = r.record
    metrics = curve = None
    if r.curve is not None:
        steps, returns = curve_of(r)
        metrics = {"auc": M.area_under_curve(steps, returns),
                   "final": M.final_performance(steps, returns, final_fraction)}
        curve = {"env_steps": [int(s) for s in steps], "returns": [float(y) for y in returns]}
    prov = rec.provenance
    return {"suite": rec.suite, "profile": rec.profile, "task": rec.task, "method": rec.method,
            "seed": rec.seed, "run_id": rec.run_id, "kind": rec.kind, "tasks": list(rec.tasks),
            "source_seed": rec.source_seed, "baseline_run_id": rec.baseline_run_id,
            "is_baseline": rec.is_baseline, "status": rec.status, "budget": rec.budget,
            "env_steps": rec.env_steps, "wall_time_s": rec.wall_time_s, "metrics": metrics,
            "curve": curve,
            "provenance": {"config_hash": prov.config_hash, "git_commit": prov.git_commit,
                           "model_sha256": rec.model_sha256,
                           "source_run_ids": [s.run_id for s in prov.sources]}}


def _group_entry(report: dict) -> dict[str, Any]:
    agg, settings = report["aggregates"], report["settings"]
    return {"suite": report["suite"], "profile": report["profile"],
            "primary": settings["primary"], "final_fraction": settings["final_fraction"],
            "scale": dict(agg["scale"]) if agg.get("scale") else None}


def run_key(run: dict) -> tuple:
    return (run["suite"], run["profile"], run["task"], run["method"], run["seed"], run["run_id"])


def scores_document(results: Iterable[RunResult], reports: list[dict]) -> dict[str, Any]:
    """The scores.json content of ``results``, grouped as the leaderboard ``reports`` (the dicts
    :func:`benchmarks.report.build_report` returns) are: their settings fix the metrics and the
    normalisation. Runs of a suite/profile without a report are left out."""
    groups = sorted((_group_entry(rep) for rep in reports if rep["suite"]),
                    key=lambda g: (g["suite"], g["profile"]))
    fraction = {(g["suite"], g["profile"]): g["final_fraction"] for g in groups}
    runs = [_run_entry(r, fraction[(r.record.suite, r.record.profile)]) for r in results
            if (r.record.suite, r.record.profile) in fraction]
    doc = {"schema": SCHEMA, "schema_version": SCORES_VERSION, "groups": groups,
           "runs": sorted(runs, key=run_key)}
    ScoresFile.model_validate(doc)  # what this writes, the reader must accept
    return doc


def _cell(x: Any) -> str:
    return "" if x is None else repr(x) if isinstance(x, float) else str(x)


def scores_csv(doc: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for r in doc["runs"]:
        m, p = r["metrics"] or {}, r["provenance"]
        head = [r["suite"], r["profile"], r["kind"], r["task"], r["method"], r["seed"],
                r["run_id"], r["status"], m.get("auc"), m.get("final"), p["config_hash"],
                p["git_commit"], p["model_sha256"]]
        points = zip(r["curve"]["env_steps"], r["curve"]["returns"]) if r["curve"] else [(None, None)]
        for step, ret in points:
            w.writerow([_cell(x) for x in (*head, step, ret)])
    return buf.getvalue()


def write_scores(out: Path, doc: dict[str, Any]) -> list[Path]:
    """scores.json and scores.csv of ``doc`` in ``out``, each written atomically."""
    js, cs = Path(out) / SCORES_JSON, Path(out) / SCORES_CSV
    atomic_write_text(js, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    atomic_write_text(cs, scores_csv(doc))
    return [js, cs]


# -- reading (the validate command) ---------------------------------------------------------------
def _where(e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "<root>"
    return f"field '{loc}': {first['msg'].removeprefix('Value error, ')}"


def read_scores(path: Path) -> ScoresFile:
    """A validated scores.json; any problem is a ResultError naming the file and the field."""
    path = Path(path)
    raw = read_bytes(path, SCORES_MAX_BYTES, "scores")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ResultError(f"{path}: corrupt or truncated scores JSON ({e})") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: field '<root>': expected a JSON object")
    version = data.get("schema_version")
    if version != SCORES_VERSION:
        raise ResultError(f"{path}: field 'schema_version': unsupported scores schema version "
                          f"{version!r} (this reader knows {SCORES_VERSION})")
    try:
        return ScoresFile.model_validate(data)
    except ValidationError as e:
        raise ResultError(f"{path}: {_where(e)}") from None


def _csv_row(row: list[str]) -> None:
    """Raise ValueError naming the column of the first value of the wrong type."""
    fields = dict(zip(CSV_HEADER, row))
    for name, kind in (("seed", int), ("env_steps", int), ("auc", float), ("final", float),
                       ("return", float)):
        text = fields[name]
        if text == "" and name != "seed":
            continue
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"column '{name}': expected {kind.__name__}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise ValueError(f"column '{name}': expected a finite number, got {text!r}")


def read_scores_csv(path: Path) -> int:
    """Check a scores.csv (header, column count, numeric columns); return its data row count."""
    path = Path(path)
    raw = read_bytes(path, SCORES_MAX_BYTES, "scores")
    try:
        rows = list(csv.reader(raw.decode("utf-8").splitlines()))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ResultError(f"{path}: malformed scores CSV ({e})") from None
    if not rows or rows[0] != CSV_HEADER:
        raise ResultError(f"{path}: expected header {','.join(CSV_HEADER)!r}")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(CSV_HEADER):
            raise ResultError(f"{path}: line {line}: expected {len(CSV_HEADER)} columns")
        try:
            _csv_row(row)
        except ValueError as e:
            raise ResultError(f"{path}: line {line}: {e}") from None
    return len(rows) - 1


__all__ = ["SCHEMA", "SCORES_VERSION", "SCORES_JSON", "SCORES_CSV", "ScoresFile", "read_scores",
           "read_scores_csv", "scores_csv", "scores_document", "write_scores"]
