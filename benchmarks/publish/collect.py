"""Gather the runs of one or more results directories for the site, keeping the bad ones apart.

Results directories come from other machines and other people. Everything here reads through
:mod:`benchmarks.results` (pydantic records, bounded CSV curves) or checks a PNG's signature:
JSON, CSV and PNG only. Nothing is unpickled and no checkpoint is opened; the figure arrays
(``.npz``) are not read either: the site draws its figures from the curves.

A record that fails validation is not dropped: it becomes a :class:`Rejected` entry the site lists
with its reason. So does a record whose run id or suite/profile disagrees with the folder it sits
in (a moved or edited record), and a run id already published from another directory with other
content. The same run found twice with the same content is merged once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.results import NO_RUNS, ResultError, RunResult, load_run, read_bytes, run_dirs
from benchmarks.scores import SCORES_CSV, SCORES_JSON, read_scores, read_scores_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_MAX_BYTES = 16 << 20
#: the per-run figures ``report`` draws from arrays the site does not read; copied as drawn
COPIED_FIGURE = re.compile(r"(embedding|reconstruction)_[A-Za-z0-9._+-]{1,200}\.png")


@dataclass(frozen=True)
class Rejected:
    origin: str          # the results directory's label
    path: str            # the file or folder, relative to that directory
    reason: str
    group: tuple[str, str] | None   # (suite, profile) from the folder layout, when it has one


@dataclass(frozen=True)
class Origin:
    label: str
    root: Path


@dataclass
class Collected:
    """The merged runs, by (suite, profile), and what was left out."""
    groups: dict[tuple[str, str], list[RunResult]] = field(default_factory=dict)
    #: (suite, profile, run id) -> origin label; run ids are unique within a suite/profile only
    origin_of: dict[tuple[str, str, str], str] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    figures: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    origins: list[Origin] = field(default_factory=list)


def labels(roots: list[Path]) -> list[Origin]:
    """A short label per directory (its name, numbered when two share one): the site shows
    these rather than absolute paths, which say nothing to a reader and leak local folders."""
    seen: dict[str, int] = {}
    out = []
    for root in roots:
        name = root.resolve().name or "results"
        seen[name] = seen.get(name, 0) + 1
        out.append(Origin(name if seen[name] == 1 else f"{name}#{seen[name]}", root))
    return out


def _layout_group(run_dir: Path) -> tuple[str, str] | None:
    if run_dir.parent.name != "runs":
        return None
    return run_dir.parent.parent.parent.name, run_dir.parent.parent.name


def run_key(r: RunResult) -> tuple[str, str, str]:
    return r.record.suite, r.record.profile, r.record.run_id


def _mislaid(r: RunResult, run_dir: Path) -> str | None:
    """Why a valid record does not belong where it lies, or None."""
    rec = r.record
    if rec.run_id != run_dir.name:
        return f"record's run_id '{rec.run_id}' does not match its folder '{run_dir.name}'"
    if _layout_group(run_dir) != (rec.suite, rec.profile):
        return (f"record says {rec.suite}/{rec.profile} but lies outside "
                f"<results>/{rec.suite}/{rec.profile}/runs/")
    return None


def _same(a: RunResult, b: RunResult) -> bool:
    if a.record != b.record or (a.curve is None) != (b.curve is None):
        return False
    return a.curve is None or (np.array_equal(a.curve.steps, b.curve.steps)
                               and np.array_equal(a.curve.returns, b.curve.returns))


def _rel(path: Path, origin: Origin) -> str:
    try:
        return str(path.relative_to(origin.root))
    except ValueError:
        return path.name


def _reason(err: Exception, origin: Origin) -> str:
    # messages name files by absolute path: shown relative to the labelled directory
    return str(err).replace(str(origin.root.resolve()), origin.label).replace(
        str(origin.root), origin.label)


def _add_run(c: Collected, origin: Origin, run_dir: Path, by_id: dict) -> None:
    rel, group = _rel(run_dir, origin), _layout_group(run_dir)
    try:
        r = load_run(run_dir)
    except ResultError as e:
        c.rejected.append(Rejected(origin.label, rel, _reason(e, origin), group))
        return
    why, key = _mislaid(r, run_dir), run_key(r)
    first = by_id.get(key)
    if why is None and first is not None and not _same(first, r):
        why = (f"run id '{r.record.run_id}' of {key[0]}/{key[1]} was already taken from "
               f"{c.origin_of[key]} with different content")
    if why is not None:
        c.rejected.append(Rejected(origin.label, rel, why, group))
        return
    if first is None:  # an identical copy from a later directory adds nothing
        by_id[key] = r
        c.origin_of[key] = origin.label
        c.groups.setdefault((r.record.suite, r.record.profile), []).append(r)


def _check_scores_files(c: Collected, origin: Origin) -> None:
    """Score files a directory ships are checked, and listed as rejected when bad; the site's
    own are rebuilt from the records either way, so they always match the runs shown."""
    for name, read in ((SCORES_JSON, read_scores), (SCORES_CSV, read_scores_csv)):
        for path in sorted(origin.root.rglob(name)):
            try:
                read(path)
            except ResultError as e:
                c.rejected.append(Rejected(origin.label, _rel(path, origin),
                                           _reason(e, origin), None))


def _copy_figures(c: Collected, origin: Origin, group_dir: Path, group: tuple[str, str]) -> None:
    have = c.figures.setdefault(group, {})
    for path in sorted(group_dir.iterdir()):
        if not COPIED_FIGURE.fullmatch(path.name) or path.name in have or path.is_symlink():
            continue
        try:
            data = read_bytes(path, PNG_MAX_BYTES, "figure")
        except ResultError as e:
            c.rejected.append(Rejected(origin.label, _rel(path, origin), _reason(e, origin), group))
            continue
        if not data.startswith(PNG_MAGIC):
            c.rejected.append(Rejected(origin.label, _rel(path, origin),
                                       "not a PNG image (bad signature)", group))
            continue
        have[path.name] = data


def collect(roots: list[Path]) -> Collected:
    """Every run below ``roots``, merged; ResultError when a root is missing or holds no run."""
    c = Collected(origins=labels([Path(r) for r in roots]))
    by_id: dict[tuple[str, str, str], RunResult] = {}
    for origin in c.origins:
        if not origin.root.is_dir():
            raise ResultError(f"{origin.root}: not a results directory (no such folder)")
        dirs = run_dirs(origin.root)
        if not dirs:
            raise ResultError(NO_RUNS.format(root=origin.root))
        for d in dirs:
            _add_run(c, origin, d, by_id)
        _check_scores_files(c, origin)
        for d in sorted({d.parent.parent for d in dirs if d.parent.name == "runs"}):
            group = _layout_group(d / "runs" / "x")
            if group in c.groups:
                _copy_figures(c, origin, d, group)
    if not c.groups:
        raise ResultError(f"no valid runs under {', '.join(str(o.root) for o in c.origins)}: "
                          f"all {len(c.rejected)} records were rejected, first: "
                          f"{c.rejected[0].reason if c.rejected else '-'}")
    for runs in c.groups.values():
        runs.sort(key=lambda r: r.record.run_id)
    return c
