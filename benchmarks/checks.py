"""Cross-field checks of a suite: names that must exist, slots that must be bound, no cycles,
and every free-form dict bound to its receiver (:mod:`benchmarks.bindings`).

Raised errors are plain ``ValueError`` with a dotted field path first; pydantic turns them into
validation errors and :func:`benchmarks.suite.load_suite` prefixes the file name. The suite is
passed in, never imported: :mod:`benchmarks.suite` runs these checks from its validator.
"""
from __future__ import annotations

from functools import cache
from typing import Any, Mapping

from benchmarks.bindings import check_bindings
from lightning_wm.pipeline.config import MAX_STEPS

#: env steps a budget (or a learn_within claim) may ask for: 400x the longest budget committed
#: (mario_levels' paper profile, 2.5M decisions) and 20x Atari's 200M frames, yet a typo of a few
#: extra digits fails here instead of starting a run that would take years. The library's own
#: bound on a run's budget
MAX_ENV_STEPS = MAX_STEPS
#: the pad options every env takes (:data:`lightning_wm.envs.PAD_OPTIONS`): widths, or none
PAD_TYPES = {"pad_obs": int | None, "pad_action": int | None}


def _need(name: str, known, where: str, what: str) -> None:
    if name not in known:
        raise ValueError(f"{where}: unknown {what} {name!r} (expected one of {sorted(known)})")


def _steps(steps: int, where: str) -> None:
    if not 0 < steps <= MAX_ENV_STEPS:
        shown = f"{steps:,}" if abs(steps) < 10 ** 15 else f"a {len(str(abs(steps)))}-digit number"
        raise ValueError(f"{where}: expected a positive step count of at most {MAX_ENV_STEPS:,}, "
                         f"got {shown}")


def check_env(env_id: str, options: Mapping[str, Any]) -> None:
    """The library's check of option names, then their values against the types the env's
    constructor declares, so ``length: "8"`` fails at validate rather than inside a run."""
    from lightning_wm.envs import check_env_options
    from lightning_wm.options import check_option_types

    check_env_options(env_id, options)
    check_option_types(f"env '{env_id}'", _env_types(env_id), options)


@cache
def _env_types(env_id: str) -> dict[str, Any]:
    from lightning_wm.envs import env_receiver
    from lightning_wm.options import declared_types

    # the lazy adapters take **options; their real receivers are importable without simulators
    return {**declared_types(env_receiver(env_id)), **PAD_TYPES}


def cross_check(suite) -> None:
    """Check a :class:`benchmarks.suite.Suite` whose fields are individually valid."""
    # imported here: the env registry imports gymnasium and the envs, which `import
    # benchmarks.suite` (report, regress) need not pay for. Agents and callbacks are checked
    # against their light tables: the classes import torch and Lightning (seconds of CPU)
    from lightning_wm.agents import AGENTS, check_agent_config
    from lightning_wm.callback_args import CALLBACK_RECEIVERS as CALLBACKS
    from lightning_wm.envs import ENVS

    for tname, task in suite.tasks.items():
        _need(task.env, ENVS, f"tasks.{tname}.env", "env")
    for sname, src in suite.sources.items():
        _need(src.agent, AGENTS, f"sources.{sname}.agent", "agent")
        for i, t in enumerate(src.tasks):
            _need(t, suite.tasks, f"sources.{sname}.tasks.{i}", "task")
        for slot, other in src.uses.items():
            _need(other, suite.sources, f"sources.{sname}.uses.{slot}", "source")
        _check_callbacks(src.callbacks, set(src.uses), f"sources.{sname}", CALLBACKS)
    for mname, m in suite.methods.items():
        _need(m.agent, AGENTS, f"methods.{mname}.agent", "agent")
        _check_callbacks(m.callbacks, set(m.uses), f"methods.{mname}", CALLBACKS)
    _need(suite.baseline, suite.methods, "baseline", "method")
    if suite.methods[suite.baseline].uses:
        raise ValueError(f"baseline: method '{suite.baseline}' consumes sources; a scratch baseline must not")
    for i, tgt in enumerate(suite.targets):
        _check_target(suite, i, tgt)
    _check_profiles(suite, CALLBACKS)
    _check_metrics(suite)
    check_no_cycle(suite)
    check_bindings(suite, check_agent_config, check_env, CALLBACKS)


def _check_callbacks(callbacks, slots: set[str], where: str, registry) -> None:
    for j, cb in enumerate(callbacks):
        _need(cb.name, registry, f"{where}.callbacks.{j}.name", "callback")
        if cb.source is not None and cb.source not in slots:
            raise ValueError(f"{where}.callbacks.{j}.source: slot '{cb.source}' is not declared "
                             f"in {where}.uses (expected one of {sorted(slots)})")
        many = cb.args.get("sources")  # callbacks that read several checkpoints (meta_model)
        if many is not None:
            if isinstance(many, str) or not isinstance(many, list) or not many:
                raise ValueError(f"{where}.callbacks.{j}.args.sources: expected a non-empty list "
                                 "of slots")
            for k, slot in enumerate(many):
                if slot not in slots:
                    raise ValueError(f"{where}.callbacks.{j}.args.sources.{k}: slot '{slot}' is "
                                     f"not declared in {where}.uses (expected one of {sorted(slots)})")


def _check_target(suite, i: int, tgt) -> None:
    where = f"targets.{i}"
    _need(tgt.task, suite.tasks, f"{where}.task", "task")
    for slot, src in tgt.sources.items():
        _need(src, suite.sources, f"{where}.sources.{slot}", "source")
    transfer = False
    for j, mname in enumerate(tgt.methods):
        _need(mname, suite.methods, f"{where}.methods.{j}", "method")
        for slot in suite.methods[mname].uses:
            if slot not in tgt.sources:
                raise ValueError(f"{where}.sources: method '{mname}' needs slot '{slot}'; "
                                 f"bind it as '{slot}: <source name>'")
        transfer |= bool(suite.methods[mname].uses)
    if transfer and suite.baseline not in tgt.methods:
        raise ValueError(f"{where}.methods: a transfer target must also run the baseline "
                         f"'{suite.baseline}' (paired scratch run)")


def _check_profiles(suite, callbacks) -> None:
    _need(suite.default_profile, suite.profiles, "default_profile", "profile")
    roles = ({s.budget for s in suite.sources.values()} | {m.budget for m in suite.methods.values()}
             | {t.budget for t in suite.targets if t.budget is not None})
    target_tasks = {t.task for t in suite.targets}
    for pname, prof in suite.profiles.items():
        for role in sorted(roles):
            if role not in prof.budgets:
                raise ValueError(f"profiles.{pname}.budgets: missing budget '{role}' "
                                 f"(expected '{role}: <env steps>')")
        for role, steps in prof.budgets.items():
            _steps(steps, f"profiles.{pname}.budgets.{role}")
        for j, t in enumerate(prof.tasks or []):
            _need(t, target_tasks, f"profiles.{pname}.tasks.{j}", "target task")
        for name in prof.source_seeds:
            _need(name, suite.sources, f"profiles.{pname}.source_seeds.{name}", "source")
        for name in prof.callback_args:
            _need(name, callbacks, f"profiles.{pname}.callback_args.{name}", "callback")
        for j, m in enumerate(prof.methods or []):
            _need(m, suite.methods, f"profiles.{pname}.methods.{j}", "method")


def _check_metrics(suite) -> None:
    m = suite.metrics
    for task in m.thresholds:
        _need(task, suite.tasks, f"metrics.thresholds.{task}", "task")
    for task, steps in m.learn_within.items():
        _need(task, suite.tasks, f"metrics.learn_within.{task}", "task")
        if task not in m.thresholds:
            raise ValueError(f"metrics.learn_within.{task}: the task has no threshold to reach "
                             f"(expected 'metrics.thresholds.{task}: <return>')")
        _steps(steps, f"metrics.learn_within.{task}")


def check_no_cycle(suite) -> None:
    """Sources may consume other sources; a cycle among them can never run."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join(path[path.index(name):] + [name])
            raise ValueError(f"sources: dependency cycle {cycle}")
        state[name] = 1
        for other in suite.sources[name].uses.values():
            visit(other, path + [name])
        state[name] = 2

    for name in suite.sources:
        visit(name, [])
