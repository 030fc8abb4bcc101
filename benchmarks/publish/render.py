"""HTML of the site: Jinja2 templates (package data beside this module), autoescape on.

Every string on a page comes from result files written on someone else's machine: a task or
method name, an error message, a git commit field. Autoescaping makes each of them text, never
markup; no template marks anything ``|safe``. Numbers are formatted by the leaderboard's own
formatters (:mod:`benchmarks.report_md`), so the site and leaderboard.md print the same digits.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from benchmarks import report as R
# the leaderboard.md formatters: one way of printing a number or an interval across both outputs
from benchmarks.report_md import (PAIRED_COLUMNS, PAIRED_HEADINGS, _aggregate_name, _charged_text,
                                  _fmt, _num, _thr, baseline_words, paired_row)
from lightning_wm.metrics.curves import THRESHOLD_DEFINITION

HERE = Path(__file__).resolve().parent
TEMPLATES, STATIC = HERE / "templates", HERE / "static"

#: what each figure of a page shows; stated under the figure and in the definitions
FIGURES = {
    "aggregates": ("Aggregate metrics with 95 % CIs",
                   "Per method, over its (seeds x tasks) matrix of the primary metric: mean, "
                   "median of the per-task means, IQM (mean of the middle 50 % of all runs) and, "
                   "on a normalised scale, optimality gap (mean shortfall below the reference "
                   "1; lower is better). Bars: 95 % percentile intervals of a stratified "
                   "bootstrap (seeds resampled within each task); ticks: point estimates."),
    "profiles": ("Performance profiles",
                 "Fraction of (seed, task) scores above each threshold tau, with 95 % "
                 "stratified-bootstrap bands. A curve that lies above another everywhere "
                 "dominates it stochastically."),
    "improvement": ("Probability of improvement",
                    "P(X > Y): the probability that a run of method X scores higher than a run "
                    "of the baseline Y on the same task (ties count half; the Mann-Whitney U "
                    "statistic over n x m), averaged over the tasks both ran, with 95 % "
                    "bootstrap CIs. 0.5 (dashed) is no difference."),
    "sample_efficiency": ("Sample efficiency",
                          "IQM over the (seeds x tasks) matrix of the evaluation return at each "
                          "evaluation step (normalised per task where the suite fixes a scale), "
                          "with 95 % stratified-bootstrap bands per step."),
    "curves": ("Learning curves",
               "Mean evaluation return over seeds with a 95 % bootstrap band of that mean; "
               "dashed: the task's threshold."),
    "embedding": ("Embedding agreement", "As drawn by the report from the run's saved arrays."),
    "reconstruction": ("Reconstructions", "As drawn by the report from the run's saved frames."),
}
CITATION = ('Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical '
            'Precipice", NeurIPS 2021')


def definitions() -> list[str]:
    """The leaderboard's definitions (benchmarks.report's docstring, as leaderboard.md prints
    them), the threshold rule, then the figures'; one paragraph each."""
    text = R.__doc__.split("\n\n", 1)[1]
    # the docstring is reStructuredText-ish: its ``code`` and **bold** marks would show literally
    text = text.replace("``", "").replace("**", "")
    bullets = [re.sub(r"\s+", " ", b).strip() for b in re.split(r"^\* ", text, flags=re.M)]
    figures = [f"{title}: {what}" for title, what in
               (FIGURES[k] for k in ("aggregates", "profiles", "improvement", "sample_efficiency"))]
    return ([b for b in bullets if b] + [THRESHOLD_DEFINITION]
            + [f"{f} Following {CITATION}." for f in figures])


def _short(text: Any, n: int = 12) -> str:
    return "—" if not text else str(text)[:n]


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(num=_num, ci=_fmt, thr=_thr, charged=_charged_text, short=_short,
                       aggregate=_aggregate_name)
    # the paired table's headings, columns and cells are the markdown report's, not a copy
    env.globals.update(paired_headings=PAIRED_HEADINGS, paired_columns=PAIRED_COLUMNS,
                       paired_row=paired_row, baseline_words=baseline_words)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def stylesheet() -> str:
    return (STATIC / "style.css").read_text(encoding="utf-8")
