"""The few settings of a suite that the report and the regression check read, as plain frozen
values (:class:`SuiteFacts`), so neither needs the whole typed suite, and results of a suite that
is no longer registered still report with defaults."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from benchmarks import report_refs
from benchmarks.suite import Suite


@dataclass(frozen=True)
class Reference:
    """A paper's values for one metric: task -> method -> value."""
    name: str
    citation: str
    metric: str
    values: Mapping[str, Mapping[str, float | str]]
    budget_env_steps: int | None = None
    observation: str | None = None
    random_return: Mapping[str, float] = field(default_factory=dict)
    our_random_return: Mapping[str, float] = field(default_factory=dict)
    aggregates: Mapping[str, float] = field(default_factory=dict)
    aggregates_over: str | None = None


@dataclass(frozen=True)
class SuiteFacts:
    """The few suite settings the report and the regression check need, as plain values."""
    baseline: str = "scratch"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    learn_within: Mapping[str, int] = field(default_factory=dict)
    early_fraction: float = 0.1
    final_fraction: float = 0.1
    primary: str = "auc"
    references: tuple[Reference, ...] = ()
    success_below: Mapping[str, float] = field(default_factory=dict)
    #: profile -> target task -> action repeat and observation, for the budget and the papers
    setups: Mapping[str, Mapping[str, report_refs.TaskSetup]] = field(default_factory=dict)
    #: task -> random policy's return and task -> reference return: the aggregates' fixed scale
    random_scores: Mapping[str, float] = field(default_factory=dict)
    reference_scores: Mapping[str, float] = field(default_factory=dict)
    #: profiles those scores hold at; None: every profile
    scores_hold_for: tuple[str, ...] | None = None
    #: what the reference scores are: the tasks' thresholds, or published human scores
    reference: str = "threshold"
    #: methods that transfer (a callback or a source slot); None: unknown, all taken to transfer.
    #: A suite whose paired methods all learn from scratch compares agents, not transfer.
    transfer_methods: tuple[str, ...] | None = None


def facts_from_suite(suite: Suite) -> SuiteFacts:
    m = suite.metrics
    refs = tuple(Reference(r.name, r.citation, r.metric, r.values, r.budget_env_steps,
                           r.observation, dict(r.random_return), dict(r.our_random_return),
                           dict(r.aggregates), r.aggregates_over)
                 for r in suite.references)
    held = None if m.scores_hold_for is None else tuple(m.scores_hold_for)
    return SuiteFacts(suite.baseline, dict(m.thresholds), dict(m.learn_within), m.early_fraction,
                      m.final_fraction, m.primary, refs, dict(m.success_below),
                      report_refs.suite_setups(suite), dict(m.random_scores),
                      dict(m.reference_scores), held, m.reference,
                      tuple(n for n, spec in suite.methods.items() if spec.callbacks or spec.uses))


def as_facts(suite: Suite | SuiteFacts | None) -> SuiteFacts | None:
    return facts_from_suite(suite) if isinstance(suite, Suite) else suite
