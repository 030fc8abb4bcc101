"""Typed schema of ``suites/*.yaml``, validated at the boundary.

A suite names its tasks (env + options), the source trainings that targets consume, the methods
run on each target, seeds, budgets per profile, metrics and the papers' reference values. Any
error raises :class:`SuiteError` naming the file, the field path and the expected form; nothing
downstream ever sees an unvalidated dict.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError,
                      model_validator)

from benchmarks.bindings import bind_training
from benchmarks.checks import cross_check
from benchmarks.names import NAME_FORM, check_name, is_name
from benchmarks.yaml_load import YamlLoadError, load_file

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


class SuiteError(ValueError):
    """Bad suite file; message = 'file: field path: problem (expected form)'."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: seeds are handed to numpy and torch, whose seeds are unsigned 32-bit
SEED_LIMIT = 2 ** 32


def _name(text: str) -> str:
    return check_name(text, "name")


def _seed(value: int) -> int:
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"seed {value} out of range (expected an integer in [0, 2**32))")
    return value


#: a suite, profile, task, method, source or slot name: it becomes part of paths and run ids
Name = Annotated[str, AfterValidator(_name)]
#: strict: YAML's ``true`` is not seed 1, nor ``"3"`` seed 3
Seed = Annotated[StrictInt, AfterValidator(_seed)]
#: a score the report divides by: NaN or infinity would turn every normalised value into NaN
FiniteScore = Annotated[float, Field(allow_inf_nan=False)]


class TaskSpec(_Strict):
    env: str
    options: dict[str, Any] = Field(default_factory=dict)
    # options the learning curve's evaluation envs take on top (Atari: whole games, raw score)
    eval_options: dict[str, Any] = Field(default_factory=dict)


class CallbackSpec(_Strict):
    name: str
    source: Name | None = None          # slot whose checkpoint this callback reads
    args: dict[str, Any] = Field(default_factory=dict)


class SourceSpec(_Strict):
    """A training whose checkpoint targets consume (single- or multi-task)."""
    agent: str
    config: dict[str, Any] = Field(default_factory=dict)
    tasks: list[Name] = Field(min_length=1)
    callbacks: list[CallbackSpec] = Field(default_factory=list)
    uses: dict[Name, Name] = Field(default_factory=dict)   # slot -> source name
    budget: str = "source"
    seeds: list[Seed] | None = None   # None: one source per target seed, paired


class MethodSpec(_Strict):
    description: str = ""
    agent: str
    config: dict[str, Any] = Field(default_factory=dict)
    # env options of this method's runs, over the task's and the profile's (an agent family's
    # observation format: Atari frames for EfficientZero, 64x64 grayscale for DreamerV2)
    task_options: dict[str, Any] = Field(default_factory=dict)
    callbacks: list[CallbackSpec] = Field(default_factory=list)
    uses: list[Name] = Field(default_factory=list)         # slots bound per target
    budget: str = "target"


class TargetSpec(_Strict):
    task: Name
    methods: list[Name] = Field(min_length=1)
    sources: dict[Name, Name] = Field(default_factory=dict)  # slot -> source name
    agent_config: dict[str, Any] = Field(default_factory=dict)  # overrides for this target
    # budget role of every run on this target (default: each method's own), for a task whose
    # runs need more or fewer env steps than the suite's other targets
    budget: str | None = None


#: a profile's ``training`` block: the library's TrainingConfig fields (one list of them, bound by
#: :func:`~benchmarks.bindings.bind_training`), kept a plain dict of every field for the run graph
TrainingBlock = Annotated[dict[str, Any], AfterValidator(bind_training)]


class ProfileSpec(_Strict):
    description: str = ""
    # env steps per budget role; bounded in :func:`benchmarks.checks.cross_check`
    budgets: dict[str, StrictInt]
    seeds: list[Seed] | None = None
    tasks: list[Name] | None = None           # subset of target tasks
    methods: list[Name] | None = None         # subset of methods
    training: TrainingBlock = Field(default_factory=dict, validate_default=True)
    agent_config: dict[str, Any] = Field(default_factory=dict)  # overrides for every agent
    # agent -> overrides for that agent's runs only, after agent_config (a suite whose methods
    # use several agents, each with options of its own)
    agent_configs: dict[Name, dict[str, Any]] = Field(default_factory=dict)
    task_options: dict[str, Any] = Field(default_factory=dict)  # overrides for every task's env
    # overrides for every callback of a name, e.g. a loss schedule's until_step at this budget
    callback_args: dict[str, dict[str, Any]] = Field(default_factory=dict)
    source_seeds: dict[Name, list[Seed]] = Field(default_factory=dict)  # source -> its seed pool
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    estimated_minutes: float | None = None   # rough cost shown by `list`


class MetricsSpec(_Strict):
    thresholds: dict[str, float] = Field(default_factory=dict)   # task -> return
    # task -> env steps: the suite's claim "from scratch, the threshold is reached within N
    # steps", gated by `regress` on every from-scratch run of the task budgeted for N or more
    learn_within: dict[str, StrictInt] = Field(default_factory=dict)
    early_fraction: float = Field(0.1, gt=0, le=1)
    final_fraction: float = Field(0.1, gt=0, le=1)
    primary: Literal["auc", "final"] = "auc"
    success_below: dict[str, float] = Field(default_factory=dict)  # diagnostic -> success bound
    # task -> a uniformly random policy's return and task -> a fixed reference return, stated in
    # the YAML with where each number comes from; the aggregates score every run per task as
    # (x - random) / (reference - random), a scale no method in the run can move
    random_scores: dict[str, FiniteScore] = Field(default_factory=dict)
    reference_scores: dict[str, FiniteScore] = Field(default_factory=dict)
    # the profiles whose episode settings those scores were measured at (None: every profile): a
    # profile with shorter episodes has another random return, and its aggregates stay raw
    scores_hold_for: list[Name] | None = None
    # what reference_scores are: each task's threshold (the suite's "solved" level, the rule of
    # the suites without a published reference), or published human scores (Atari's
    # human-normalised score), which need not equal a threshold
    reference: Literal["threshold", "human"] = "threshold"

    def check_scores(self, tasks, profiles) -> None:
        """Cross-field checks of the random and reference scores, given the suite's task and
        profile names; raises ValueError starting with the field path."""
        for key in ("random_scores", "reference_scores"):
            for task in getattr(self, key):
                if task not in tasks:
                    raise ValueError(f"metrics.{key}.{task}: unknown task {task!r} "
                                     f"(expected one of {sorted(tasks)})")
        for task, ref in self.reference_scores.items():
            # the report's definitions state the rule for the reference, the task's threshold
            # unless the suite says its references are human scores: a suite choosing otherwise
            # would make that definition false for its leaderboard
            thr = ref if self.reference == "human" else self.thresholds.get(task)
            if thr is None:
                raise ValueError(f"metrics.reference_scores.{task}: the task has no threshold to "
                                 f"be its reference (expected 'metrics.thresholds.{task}: {ref}')")
            if thr != ref:
                raise ValueError(f"metrics.reference_scores.{task}: {ref} is not the task's "
                                 f"threshold (expected {thr}, as metrics.thresholds.{task})")
            rnd = self.random_scores.get(task)
            # returns: higher is better, so a reference at or below random play would give a
            # zero or upside-down scale
            if rnd is not None and not ref > rnd:
                raise ValueError(f"metrics.reference_scores.{task}: {ref} is not above "
                                 f"metrics.random_scores.{task} ({rnd}) (expected a return "
                                 "above random play)")
        for i, name in enumerate(self.scores_hold_for or []):
            if name not in profiles:
                raise ValueError(f"metrics.scores_hold_for.{i}: unknown profile {name!r} "
                                 f"(expected one of {sorted(profiles)})")


class ReferenceSpec(_Strict):
    name: str
    citation: str
    # threshold_reduction: % fewer decisions to the task's threshold than scratch; best: the
    # best evaluation return a run reached
    metric: Literal["auc", "final", "jumpstart", "transfer_ratio", "threshold_reduction", "best"]
    # task -> method -> value: a number, or the paper's text ("1199 ± 558") where it gives a
    # spread or where digits are illegible in the source ("?49?": the '?' digits are lost)
    values: dict[str, dict[str, float | str]]
    # the setting the paper's values hold at, so the report can say when ours differs: env steps
    # per target run as the paper counts them (simulator steps, action repeat included) and the
    # observation ("64x64 pixels", "state"); left out where the paper does not state them
    budget_env_steps: Annotated[StrictInt, Field(gt=0)] | None = None
    observation: str | None = None
    # task -> a random policy's value of this metric, in the paper's setting and in ours (the
    # suite's default episode settings); with both, the report also shows each side normalised
    # to its own random policy and scratch baseline
    random_return: dict[str, float] = Field(default_factory=dict)
    our_random_return: dict[str, float] = Field(default_factory=dict)
    # the paper's own aggregates (e.g. mean and median human-normalised score) and the games and
    # scale they are over, in words: shown as published, beside our aggregates, never recomputed
    aggregates: dict[Literal["mean", "median", "iqm", "optimality_gap"], float] = Field(
        default_factory=dict)
    aggregates_over: str | None = None

    @model_validator(mode="after")
    def _aggregates_say_what_they_are_over(self) -> "ReferenceSpec":
        if self.aggregates and not self.aggregates_over:
            raise ValueError(f"references.{self.name}.aggregates_over: missing (expected the "
                             "games and scale the published aggregates are over, in words)")
        return self


class Suite(_Strict):
    name: Name
    description: str = ""
    tasks: dict[Name, TaskSpec]
    sources: dict[Name, SourceSpec] = Field(default_factory=dict)
    methods: dict[Name, MethodSpec]
    baseline: Name
    targets: list[TargetSpec] = Field(min_length=1)
    seeds: list[Seed] = Field(min_length=1)
    profiles: dict[Name, ProfileSpec]
    default_profile: Name
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    references: list[ReferenceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> "Suite":
        cross_check(self)
        self.metrics.check_scores(self.tasks, self.profiles)
        return self

    def profile(self, name: str | None) -> ProfileSpec:
        name = name or self.default_profile
        if name not in self.profiles:
            raise SuiteError(f"{self.name}: unknown profile '{name}' (have {sorted(self.profiles)})")
        return self.profiles[name]


def _loc(loc: tuple) -> str:
    # '[key]' marks an error in a mapping's key: name the mapping, the message quotes the key
    if loc and loc[-1] == "[key]":
        loc = loc[:-2]
    return ".".join(str(p) for p in loc if p != "__root__") or "<root>"


def _one_line(text: str) -> str:
    """``text`` with control characters escaped: a name holding a newline (or a NUL) cannot split
    or truncate the one error line it is quoted in."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)


def _walk(loc: tuple) -> tuple[Any, type[BaseModel] | None]:
    """The declared type at ``loc`` in the schema, and the model whose fields a key under it
    would name (None below a plain dict or list)."""
    model, annotation = Suite, None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue  # a list index or a dict key: the declared type is the container's item
        field = model.model_fields.get(str(part))
        if field is None:
            continue
        annotation = field.annotation
        inner = [a for a in get_args(annotation) if isinstance(a, type)]
        model = next((a for a in [annotation, *inner]
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return annotation, model


def _expected(loc: tuple) -> str:
    """The declared type at ``loc`` in the schema, written for a person (e.g. 'list[str]')."""
    annotation, _ = _walk(loc)
    if annotation is None:
        return "a value"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping with fields {sorted(annotation.model_fields)}"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _describe(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "missing":
        return f"field required (expected {_expected(err['loc'])})"
    if err["type"] == "extra_forbidden":
        _, model = _walk(err["loc"][:-1])
        if model is None:
            return "unknown field (not part of the suite schema)"
        return f"unknown field (expected one of {sorted(model.model_fields)})"
    return msg.removeprefix("Value error, ")


def load_suite(path_or_name: str | Path) -> Suite:
    """Load ``suites/<name>.yaml`` or a path; raise :class:`SuiteError` on any problem."""
    path = resolve_suite_path(path_or_name)
    try:
        data = load_file(path)
    except YamlLoadError as e:
        raise SuiteError(_one_line(f"{path}: {e}")) from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: <root>: expected a mapping of suite fields")
    try:
        return Suite.model_validate(data)
    except ValidationError as e:
        # cross-field errors carry their own field path at the start of the message. One line,
        # the first problem: a bad key fails everywhere it is used; the first is where to fix it
        errors = e.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SuiteError(_one_line(f"{path}: {_loc(first['loc']) + ': ' if first['loc'] else ''}"
                                   f"{_describe(first)}{more}")) from None


def resolve_suite_path(path_or_name: str | Path) -> Path:
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SuiteError(_one_line(f"{p}: no such suite file"))
        return p
    if not is_name(str(path_or_name)):  # a name is looked up in suites/, never used as a path
        raise SuiteError(_one_line(f"{path_or_name!r}: not a suite name ({NAME_FORM}) nor a "
                                   "path ending in .yaml"))
    candidate = SUITES_DIR / f"{p.name}.yaml"
    if not candidate.exists():
        known = ", ".join(suite_names()) or "none"
        raise SuiteError(f"{path_or_name}: unknown suite (known: {known})")
    return candidate


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
