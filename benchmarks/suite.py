"""Typed schema of ``suites/*.yaml``, validated at the boundary.

A suite names its tasks (env + options), the source trainings that targets consume, the methods
run on each target, seeds, budgets per profile, metrics and the papers' reference values. Any
error raises :class:`SuiteError` naming the file, the field path and the expected form; nothing
downstream ever sees an unvalidated dict.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchmarks.bindings import bind_training
from benchmarks.checks import cross_check

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


class SuiteError(ValueError):
    """Bad suite file; message = 'file: field path: problem (expected form)'."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskSpec(_Strict):
    env: str
    options: dict[str, Any] = Field(default_factory=dict)


class CallbackSpec(_Strict):
    name: str
    source: str | None = None          # slot whose checkpoint this callback reads
    args: dict[str, Any] = Field(default_factory=dict)


class SourceSpec(_Strict):
    """A training whose checkpoint targets consume (single- or multi-task)."""
    agent: str
    config: dict[str, Any] = Field(default_factory=dict)
    tasks: list[str] = Field(min_length=1)
    callbacks: list[CallbackSpec] = Field(default_factory=list)
    uses: dict[str, str] = Field(default_factory=dict)   # slot -> source name
    budget: str = "source"
    seeds: list[int] | None = None   # None: one source per target seed, paired


class MethodSpec(_Strict):
    description: str = ""
    agent: str
    config: dict[str, Any] = Field(default_factory=dict)
    callbacks: list[CallbackSpec] = Field(default_factory=list)
    uses: list[str] = Field(default_factory=list)         # slots bound per target
    budget: str = "target"


class TargetSpec(_Strict):
    task: str
    methods: list[str] = Field(min_length=1)
    sources: dict[str, str] = Field(default_factory=dict)  # slot -> source name
    agent_config: dict[str, Any] = Field(default_factory=dict)  # overrides for this target
    # budget role of every run on this target (default: each method's own), for a task whose
    # runs need more or fewer env steps than the suite's other targets
    budget: str | None = None


#: a profile's ``training`` block: the library's TrainingConfig fields (one list of them, bound by
#: :func:`~benchmarks.bindings.bind_training`), kept a plain dict of every field for the run graph
TrainingBlock = Annotated[dict[str, Any], AfterValidator(bind_training)]


class ProfileSpec(_Strict):
    description: str = ""
    budgets: dict[str, int]
    seeds: list[int] | None = None
    tasks: list[str] | None = None           # subset of target tasks
    methods: list[str] | None = None         # subset of methods
    training: TrainingBlock = Field(default_factory=dict, validate_default=True)
    agent_config: dict[str, Any] = Field(default_factory=dict)  # overrides for every agent
    task_options: dict[str, Any] = Field(default_factory=dict)  # overrides for every task's env
    # overrides for every callback of a name, e.g. a loss schedule's until_step at this budget
    callback_args: dict[str, dict[str, Any]] = Field(default_factory=dict)
    source_seeds: dict[str, list[int]] = Field(default_factory=dict)  # source -> its seed pool
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    estimated_minutes: float | None = None   # rough cost shown by `list`


class MetricsSpec(_Strict):
    thresholds: dict[str, float] = Field(default_factory=dict)   # task -> return
    # task -> env steps: the suite's claim "from scratch, the threshold is reached within N
    # steps", gated by `regress` on every from-scratch run of the task budgeted for N or more
    learn_within: dict[str, int] = Field(default_factory=dict)
    early_fraction: float = Field(0.1, gt=0, le=1)
    final_fraction: float = Field(0.1, gt=0, le=1)
    primary: Literal["auc", "final"] = "auc"
    success_below: dict[str, float] = Field(default_factory=dict)  # diagnostic -> success bound


class ReferenceSpec(_Strict):
    name: str
    citation: str
    metric: Literal["auc", "final", "jumpstart", "transfer_ratio"]
    # task -> method -> value: a number, or the paper's text ("1199 ± 558") where it gives a
    # spread or where digits are illegible in the source ("?49?": the '?' digits are lost)
    values: dict[str, dict[str, float | str]]


class Suite(_Strict):
    name: str
    description: str = ""
    tasks: dict[str, TaskSpec]
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    methods: dict[str, MethodSpec]
    baseline: str
    targets: list[TargetSpec] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    profiles: dict[str, ProfileSpec]
    default_profile: str
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    references: list[ReferenceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> "Suite":
        cross_check(self)
        return self

    def profile(self, name: str | None) -> ProfileSpec:
        name = name or self.default_profile
        if name not in self.profiles:
            raise SuiteError(f"{self.name}: unknown profile '{name}' (have {sorted(self.profiles)})")
        return self.profiles[name]


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if p != "__root__") or "<root>"


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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise SuiteError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: <root>: expected a mapping of suite fields")
    try:
        return Suite.model_validate(data)
    except ValidationError as e:
        # cross-field errors carry their own field path at the start of the message
        lines = [f"{path}: {_loc(err['loc']) + ': ' if err['loc'] else ''}{_describe(err)}"
                 for err in e.errors()]
        raise SuiteError("\n".join(lines)) from None


def resolve_suite_path(path_or_name: str | Path) -> Path:
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise SuiteError(f"{p}: no such suite file")
        return p
    candidate = SUITES_DIR / f"{p.name}.yaml"
    if not candidate.exists():
        known = ", ".join(suite_names()) or "none"
        raise SuiteError(f"{path_or_name}: unknown suite (known: {known})")
    return candidate


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
