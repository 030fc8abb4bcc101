"""Expand a suite into runs (task × method × seed) with their dependencies.

Sources and multi-task agents come before the targets that load them; every transfer target gets a
paired scratch baseline with the same task, seed and budget. Each run carries a content hash of
everything that determines its outcome (agent, config, envs, callbacks, budget, training settings,
seed and its sources' hashes), so a source shared by several targets is trained once and a rerun
recognises finished work.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.suite import ProfileSpec, Suite, SuiteError


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, as plain JSON-able values (it crosses process boundaries)."""
    run_id: str
    suite: str
    profile: str
    kind: str                          # "source" | "target"
    name: str                          # method or source name
    task: str                          # display label: target task, or "a+b" for sources
    tasks: list[str]
    envs: list[dict[str, Any]]         # per task: {"env": id, "options": {...}}
    agent: str
    agent_config: dict[str, Any]
    callbacks: list[dict[str, Any]]    # {"name", "source" (slot) | None, "args"}
    slots: dict[str, str]              # slot -> run_id of the source it reads
    seed: int
    source_seed: int | None
    budget: int
    training: dict[str, Any]
    accelerator: str
    config_hash: str
    is_baseline: bool = False
    baseline_run_id: str | None = None
    deps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "RunSpec":
        return RunSpec(**d)


#: training settings that change how fast a run goes, never its results: not in the run hash, so
#: turning them on reuses finished runs
SPEED_ONLY = ("env_workers",)
#: training settings added after results were committed: a run carries them (and they enter its
#: hash) only when set away from this default, so the runs before them keep their ids
HASH_WHEN_SET = {"task_sampling": "round_robin", "reward_fraction": 0.0, "segment_steps": 0}


def run_training(training: dict[str, Any]) -> dict[str, Any]:
    """The training settings that define a run (and enter its hash)."""
    return {k: v for k, v in training.items()
            if k not in SPEED_ONLY and not (k in HASH_WHEN_SET and HASH_WHEN_SET[k] == v)}


def content_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class _Builder:
    def __init__(self, suite: Suite, profile_name: str, profile: ProfileSpec) -> None:
        self.suite, self.pname, self.profile = suite, profile_name, profile
        self.runs: dict[str, RunSpec] = {}

    def _common(self, agent: str, config: dict, tasks: list[str], callbacks, budget_role: str,
                seed: int, slots: dict[str, str], task_options: dict | None = None
                ) -> dict[str, Any]:
        # profile task_options override every task's own (e.g. proprioceptive obs on a laptop),
        # a method's override both (its agent's observation format)
        envs = [{"env": self.suite.tasks[t].env,
                 "options": {**self.suite.tasks[t].options, **self.profile.task_options,
                             **(task_options or {})}} for t in tasks]
        for env, t in zip(envs, tasks):  # only where set: other suites' run ids stay as they are
            if self.suite.tasks[t].eval_options:
                env["eval_options"] = dict(self.suite.tasks[t].eval_options)
        # the profile overrides the suite, its per-agent block overrides both
        cfg = {**config, **self.profile.agent_config, **self.profile.agent_configs.get(agent, {})}
        cbs = [cb.model_dump() for cb in callbacks]
        for cb in cbs:
            cb["args"] = {**cb["args"], **self.profile.callback_args.get(cb["name"], {})}
        body = {"agent": agent, "agent_config": cfg, "envs": envs, "callbacks": cbs,
                "budget": self.profile.budgets[budget_role], "seed": seed,
                "training": run_training(self.profile.training),
                "sources": {s: self.runs[r].config_hash for s, r in slots.items()}}
        return {"envs": envs, "agent": agent, "agent_config": cfg, "callbacks": cbs,
                "budget": body["budget"], "training": body["training"],
                "config_hash": content_hash(body)}

    def source(self, name: str, seed: int) -> str:
        src = self.suite.sources[name]
        pool = source_pool(self.suite, self.profile, name)
        if pool is not None:  # a fixed pool of source seeds: map the consumer's seed onto it
            seed = pool[seed % len(pool)] if seed not in pool else seed
        slots = {slot: self.source(other, seed) for slot, other in src.uses.items()}
        c = self._common(src.agent, src.config, src.tasks, src.callbacks, src.budget, seed, slots)
        run_id = f"src-{name}-s{seed}-{c['config_hash'][:8]}"
        if run_id not in self.runs:
            self.runs[run_id] = RunSpec(
                run_id=run_id, suite=self.suite.name, profile=self.pname, kind="source",
                name=name, task="+".join(src.tasks), tasks=list(src.tasks), slots=slots,
                seed=seed, source_seed=None, accelerator=self.profile.accelerator,
                deps=sorted(set(slots.values())), **c)
        return run_id

    def target(self, tgt, method: str, seed: int, source_seed: int | None,
               baseline: str | None) -> str:
        task, m = tgt.task, self.suite.methods[method]
        sseed = seed if source_seed is None else source_seed
        slots = {slot: self.source(tgt.sources[slot], sseed) for slot in m.uses}
        config = {**m.config, **tgt.agent_config}
        role = m.budget if tgt.budget is None else tgt.budget
        c = self._common(m.agent, config, [task], m.callbacks, role, seed, slots, m.task_options)
        suffix = f"-b{source_seed}" if source_seed is not None else ""
        run_id = f"tgt-{task}-{method}-s{seed}{suffix}-{c['config_hash'][:8]}"
        self.runs[run_id] = RunSpec(
            run_id=run_id, suite=self.suite.name, profile=self.pname, kind="target", name=method,
            task=task, tasks=[task], slots=slots, seed=seed, source_seed=source_seed,
            accelerator=self.profile.accelerator, is_baseline=method == self.suite.baseline,
            baseline_run_id=baseline, deps=sorted(set(slots.values())), **c)
        return run_id


def source_pool(suite: Suite, profile: ProfileSpec, name: str) -> list[int] | None:
    """The seeds a source is trained with when it is not paired with its targets' seeds."""
    return profile.source_seeds.get(name, suite.sources[name].seeds)


def _source_seeds(suite: Suite, profile: ProfileSpec, method: str,
                  bindings: dict[str, str]) -> list[int | None]:
    pools = {tuple(p) for s in suite.methods[method].uses
             if (p := source_pool(suite, profile, bindings[s])) is not None}
    if len(pools) > 1:
        raise SuiteError(f"method '{method}': its sources have different seed pools {sorted(pools)}")
    return list(pools.pop()) if pools else [None]


def expand(suite: Suite, profile: str | None = None, tasks: list[str] | None = None,
           methods: list[str] | None = None, seeds: list[int] | None = None) -> list[RunSpec]:
    """All runs of ``suite`` under ``profile``, filtered, in dependency order."""
    pname = profile or suite.default_profile
    prof = suite.profile(pname)
    tasks = tasks or prof.tasks
    methods = methods or prof.methods
    seeds = seeds if seeds is not None else (prof.seeds or suite.seeds)
    _check_filter("--tasks", tasks, {t.task for t in suite.targets})
    _check_filter("--methods", methods, set(suite.methods))
    b = _Builder(suite, pname, prof)
    for tgt in suite.targets:
        if tasks and tgt.task not in tasks:
            continue
        chosen = [m for m in tgt.methods if not methods or m in methods]
        if any(suite.methods[m].uses for m in chosen) and suite.baseline not in chosen:
            chosen.insert(0, suite.baseline)  # a transfer run is never reported unpaired
        for seed in seeds:
            base = b.target(tgt, suite.baseline, seed, None, None) \
                if suite.baseline in chosen else None
            for m in chosen:
                if m == suite.baseline:
                    continue
                for sseed in _source_seeds(suite, prof, m, tgt.sources):
                    b.target(tgt, m, seed, sseed, base)
    return order(list(b.runs.values()))


def _check_filter(flag: str, chosen: list[str] | None, known: set[str]) -> None:
    unknown = sorted(set(chosen or []) - known)
    if unknown:
        raise SuiteError(f"{flag}: unknown {unknown} (expected some of {sorted(known)})")


def order(runs: list[RunSpec]) -> list[RunSpec]:
    """Dependencies first (Kahn's algorithm; stable in the given order)."""
    by_id = {r.run_id: r for r in runs}
    missing = {d for r in runs for d in r.deps} - set(by_id)
    if missing:
        raise SuiteError(f"runs depend on unknown runs {sorted(missing)}")
    done: set[str] = set()
    out: list[RunSpec] = []
    pending = list(runs)
    while pending:
        ready = [r for r in pending if all(d in done for d in r.deps)]
        if not ready:
            raise SuiteError(f"dependency cycle among {[r.run_id for r in pending]}")
        for r in ready:
            out.append(r)
            done.add(r.run_id)
        pending = [r for r in pending if r.run_id not in done]
    return out
