"""``validate`` of a results directory: every record, curve, figure array and score file, one
problem per bad file. Apart from :mod:`benchmarks.results` because the figure arrays' checks live with their
readers in :mod:`benchmarks.diagnostics_report`, which reads through the results module."""
from __future__ import annotations

from pathlib import Path

from benchmarks.diagnostics_report import check_figure_data
from benchmarks.results import NO_RUNS, ResultError, load_run, run_dirs
from benchmarks.scores import SCORES_CSV, SCORES_JSON, read_scores, read_scores_csv


def validate_results(root: Path) -> list[str]:
    """Check every record, curve and figure array below ``root``; return the problems, one per
    file (a folder without runs is one problem: there is nothing to vouch for)."""
    root = Path(root)
    dirs = run_dirs(root)
    if not dirs:
        return [NO_RUNS.format(root=root)]
    problems = []
    for d in dirs:
        try:
            load_run(d)
            check_figure_data(d)
        except ResultError as e:
            problems.append(str(e))
    for name, read in ((SCORES_JSON, read_scores), (SCORES_CSV, read_scores_csv)):
        for path in sorted(root.rglob(name)):  # the report's raw score files
            try:
                read(path)
            except ResultError as e:
                problems.append(str(e))
    return problems
