"""Build the static leaderboard site from results directories (``python -m benchmarks publish``).

Layout of the site (relative links only, so it works from ``file://`` and on GitHub Pages)::

    index.html                      every suite/profile found, rejected files, where runs came from
    style.css
    <suite>/<profile>/index.html    verdicts, tables with CIs, figures, provenance, definitions
                     /leaderboard.json, scores.json, scores.csv   (downloads)
                     /*.png

Each page's numbers are recomputed from the validated records (:func:`benchmarks.report.
build_report`), not read from a leaderboard.json found beside them: the runs of several
directories merge into one page, and a hand-edited leaderboard cannot put a claim on the site
that its records do not support. The site is built in a temporary folder next to ``--site`` and
moved into place, so a reader never sees half a site; an existing ``--site`` folder is replaced
only if an earlier build left its marker file in it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from benchmarks import plots, plots_rliable
from benchmarks.names import under
from benchmarks.publish import render as H
from benchmarks.publish.collect import Collected, collect, run_key
from benchmarks.report import suite_facts, build_report, registered_suite
from benchmarks.results import ResultError, RunResult, atomic_write_bytes
from benchmarks.scores import scores_document, write_scores

MARKER = ".lightning-wm-site"
DOWNLOADS = ("scores.json", "scores.csv", "leaderboard.json")
_UMASK = os.umask(0)
os.umask(_UMASK)


def _check_target(site: Path) -> None:
    if site.exists() and not site.is_dir():
        raise ResultError(f"{site}: --site exists and is not a folder")
    if site.is_dir() and any(site.iterdir()) and not (site / MARKER).exists():
        raise ResultError(f"{site}: refusing to replace a non-empty folder that publish did not "
                          f"build (no {MARKER} in it); remove it or choose another --site")


def _swap(tmp: Path, site: Path) -> None:
    """Move the finished build into place: one rename when ``site`` is new, else two renames
    with the old site kept aside until the new one is in."""
    if not site.exists():
        os.rename(tmp, site)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{site.name}.old-", dir=site.parent))
    os.rename(site, old / "site")
    os.rename(tmp, site)
    shutil.rmtree(old, ignore_errors=True)


def _provenance(runs: list[RunResult], c: Collected) -> list[dict]:
    rows = []
    for r in sorted(runs, key=lambda r: (r.record.kind, r.record.task, r.record.method,
                                         r.record.seed, r.record.run_id)):
        rec = r.record
        rows.append({"run_id": rec.run_id, "kind": rec.kind, "task": rec.task,
                     "method": rec.method, "seed": rec.seed, "status": rec.status,
                     "env_steps": rec.env_steps, "config_hash": rec.provenance.config_hash,
                     "model_sha256": rec.model_sha256, "git_commit": rec.provenance.git_commit,
                     "sources": [s.run_id for s in rec.provenance.sources],
                     "origin": c.origin_of[run_key(r)],
                     "error": (rec.error or "").splitlines()[0] if rec.error else ""})
    return rows


def _figures(page: Path, runs: list[RunResult], doc: dict, key: tuple[str, str], facts,
             c: Collected) -> list[dict]:
    suite, profile = key
    thresholds = facts.thresholds if facts else None
    drawn = [(d.path, d.kind) for d in plots_rliable.plot_rliable(doc, suite, profile, page)]
    drawn += [(p, "curves") for p in plots.plot_learning_curves(runs, suite, profile, page,
                                                                thresholds)]
    drawn += [(p, "curves") for p in plots.plot_source_curves(runs, suite, profile, page,
                                                              thresholds)]
    for name, data in sorted(c.figures.get(key, {}).items()):
        path = plots.figure_path(page, name)
        atomic_write_bytes(path, data)
        drawn.append((path, name.split("_", 1)[0]))
    return [{"file": p.name, "title": H.FIGURES[k][0], "caption": H.FIGURES[k][1]}
            for p, k in drawn]


def _verdict_counts(report: dict) -> str:
    counts = Counter(v["verdict"] for v in report["verdicts"])
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "—"


def _group(site: Path, key: tuple[str, str], c: Collected, lookup: Callable, reps: int,
           generated: str) -> dict:
    """Write one suite/profile page and its files; return its row of the index."""
    suite, profile = key
    runs = c.groups[key]
    page = under(site, suite, profile)  # names are identifiers: checked again, as paths
    page.mkdir(parents=True)
    facts, notes = suite_facts(suite, lookup)
    report = build_report(runs, facts, reps=reps, generated=generated, notes=notes)
    doc = scores_document(runs, [report])
    write_scores(page, doc)
    (page / "leaderboard.json").write_text(
        json.dumps({"reports": [report]}, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    rejected = [r for r in c.rejected if r.group == key]
    html = H.render("group.html.j2", report=report, root="../../", generated=generated,
                    figures=_figures(page, runs, doc, key, facts, c), downloads=DOWNLOADS,
                    provenance=_provenance(runs, c), rejected=rejected,
                    origins=sorted({c.origin_of[run_key(r)] for r in runs}),
                    definitions=H.definitions(),
                    diag_names=sorted({n for d in report["diagnostics"] for n in d["values"]}))
    (page / "index.html").write_text(html, encoding="utf-8")
    targets = [r for r in runs if r.record.kind == "target"]
    return {"suite": suite, "profile": profile, "href": f"{suite}/{profile}/index.html",
            "n_runs": len(runs), "status": dict(sorted(report["status"].items())),
            "tasks": sorted({r.record.task for r in targets}),
            "methods": sorted({r.record.method for r in targets}),
            "verdicts": _verdict_counts(report), "n_rejected": len(rejected)}


def build(tmp: Path, c: Collected, lookup: Callable, reps: int, generated: str) -> None:
    rows = [_group(tmp, key, c, lookup, reps, generated) for key in sorted(c.groups)]
    counts = Counter(c.origin_of.values())
    origins = [{"label": o.label, "runs": counts[o.label],
                "rejected": sum(r.origin == o.label for r in c.rejected)} for o in c.origins]
    (tmp / "index.html").write_text(
        H.render("index.html.j2", groups=rows, rejected=c.rejected, origins=origins, root="",
                 generated=generated), encoding="utf-8")
    (tmp / "style.css").write_text(H.stylesheet(), encoding="utf-8")
    (tmp / MARKER).write_text("built by python -m benchmarks publish\n", encoding="utf-8")


def publish(roots: list[Path], site: Path, *, reps: int = 2000, generated: str | None = None,
            suite_lookup: Callable = registered_suite) -> Collected:
    """Build the site of ``roots`` into ``site``; ResultError (nothing written) on a bad root,
    a root without runs, or a ``site`` that is not ours to replace."""
    site = Path(site)
    _check_target(site)
    c = collect([Path(r) for r in roots])
    generated = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    site.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{site.name}.new-", dir=site.parent))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; a site is meant to be served
        build(tmp, c, suite_lookup, reps, generated)
        _swap(tmp, site)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return c
