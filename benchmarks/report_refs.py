"""The leaderboard's verdicts and its paper reference tables, with the settings each side holds at.

* Our setting per target task: agent decisions per run (the runs' records), the env's action
  repeat and observation type (the task's options under the profile, else the env's defaults).
* :mod:`benchmarks.verdict` decides; this module only gathers its inputs from the report cells.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from benchmarks import verdict as V
from lightning_wm import metrics as M


@dataclass(frozen=True)
class TaskSetup:
    """What one target task's runs see under a profile; None where the env does not say."""
    action_repeat: int | None = None
    observation: str | None = None


def _env_defaults(env: str) -> dict[str, Any] | None:
    """Keyword defaults of an env's constructor; None for an env the registry does not know."""
    from lightning_wm.envs import ENVS, env_receiver
    if env not in ENVS:
        return None
    factory = env_receiver(env)  # behind a **options factory: the adapter itself
    return {n: p.default for n, p in inspect.signature(factory).parameters.items()
            if p.default is not inspect.Parameter.empty}


def task_setup(env: str, options: Mapping[str, Any]) -> TaskSetup:
    defaults = _env_defaults(env)
    if defaults is None:
        return TaskSetup()
    opts = {**defaults, **options}
    # an env without the option acts once per decision (ALE's adapter calls it frame_skip)
    repeat = int(opts.get("action_repeat", opts.get("frame_skip", 1)))
    obs, size = opts.get("obs"), opts.get("size")
    if obs == "proprio":
        observation = "state (proprioceptive)"
    elif env == "atari" and size:  # the Atari papers state colour and stack depth too
        stack = int(opts.get("frame_stack", 1))
        observation = (f"{size}x{size} {'grayscale' if opts.get('grayscale') else 'RGB'}, "
                       f"{stack} frame{'s' if stack > 1 else ''}")
    elif (obs == "pixels" or env == "mario") and size:
        observation = f"{size}x{size} pixels"
    else:
        observation = None
    return TaskSetup(repeat, observation)


def suite_setups(suite) -> dict[str, dict[str, TaskSetup]]:
    """profile -> task -> :class:`TaskSetup` for a loaded :class:`~benchmarks.suite.Suite`."""
    return {p: {t: task_setup(spec.env, {**spec.options, **prof.task_options})
                for t, spec in suite.tasks.items()}
            for p, prof in suite.profiles.items()}


def paired_difference(pairs_scores: list[tuple[float, float]], reps: int, seed: int) -> dict | None:
    """Mean (transfer - scratch) over pairs with its 95% paired bootstrap CI; None if empty or
    not finite."""
    a = np.asarray(pairs_scores, dtype=float).reshape(-1, 2)
    if a.size == 0 or not np.all(np.isfinite(a)):
        return None
    return M.paired_difference_ci(a[:, :1], a[:, 1:], reps=reps, seed=seed).as_dict()


def verdicts(cells: list[dict], baseline: str, metric: str,
             setups: Mapping[str, TaskSetup]) -> list[dict]:
    """One verdict row per transfer cell (a method paired with scratch runs)."""
    out = []
    for c in cells:
        t = c.get("transfer")
        if not t:
            continue
        setup = setups.get(c["task"], TaskSetup())
        diff = t.get("paired_difference")
        row = {"task": c["task"], "method": c["method"], "baseline": baseline, "metric": metric,
               "n_pairs": t["n_pairs"], "difference": diff,
               "probability_of_improvement": t.get("probability_of_improvement"),
               "verdict": V.decide(diff and diff["low"], diff and diff["high"], t["n_pairs"]),
               "decisions_per_run": t.get("decisions_per_run"),
               "action_repeat": setup.action_repeat,
               "env_steps_per_run": _env_steps(t.get("decisions_per_run"), setup)}
        row["text"] = V.verdict_line(row)
        out.append(row)
    return out


def _env_steps(decisions: float | None, setup: TaskSetup) -> float | None:
    if decisions is None or setup.action_repeat is None:
        return None
    return decisions * setup.action_repeat


def _our_setting(tasks: list[str], index: Mapping, setups: Mapping[str, TaskSetup]) -> dict:
    """Our env steps per target run and observation over ``tasks``; None where tasks differ."""
    steps = {_env_steps(max((c.get("env_steps") or 0 for (t, _), c in index.items() if t == task),
                            default=None), setups.get(task, TaskSetup())) for task in tasks}
    obs = {setups.get(task, TaskSetup()).observation for task in tasks}
    return {"env_steps": steps.pop() if len(steps) == 1 else None,
            "observation": obs.pop() if len(obs) == 1 else None}


def reference_tables(cells: list[dict], refs, paths: Mapping[str, tuple], baseline: str,
                     setups: Mapping[str, TaskSetup]) -> list[dict]:
    """The paper tables for the tasks this report ran, each with both sides' settings, whether
    they are comparable and, given random-policy values for both, normalised values."""
    index = {(c["task"], c["method"]): c for c in cells}
    ran = {c["task"] for c in cells}
    out = []
    for ref in refs:
        # only the tasks this report has runs for: a laptop profile runs one target of six
        rows = [{"task": t, "method": m, "paper": v,
                 "ours": _dig(index.get((t, m)), paths.get(ref.metric, ()))}
                for t, per in sorted(ref.values.items()) if t in ran for m, v in sorted(per.items())]
        if not rows:
            continue
        tasks = sorted({r["task"] for r in rows})
        ours = _our_setting(tasks, index, setups)
        paper = {"env_steps": ref.budget_env_steps, "observation": ref.observation}
        comparable, reasons = V.comparability(ours, paper)
        _normalise_rows(rows, ref, baseline)
        table = {"name": ref.name, "citation": ref.citation, "metric": ref.metric,
                 "ours_setting": ours, "paper_setting": paper, "comparable": comparable,
                 "not_comparable_because": reasons, "rows": rows}
        if ref.aggregates:  # as published: over the paper's games, not this report's
            table["paper_aggregates"] = {"over": ref.aggregates_over, **ref.aggregates}
        out.append(table)
    return out


def _normalise_rows(rows: list[dict], ref, baseline: str) -> None:
    """Adds (x - random) / (scratch - random) per side where both sides give a random value."""
    scratch = {(r["task"], side): r[side] for r in rows if r["method"] == baseline
               for side in ("ours", "paper")}
    for r in rows:
        t = r["task"]
        if t not in ref.random_return or t not in ref.our_random_return:
            continue
        r["ours_normalised"] = V.normalised(r["ours"], ref.our_random_return[t],
                                            scratch.get((t, "ours")))
        r["paper_normalised"] = V.normalised(V.paper_number(r["paper"]), ref.random_return[t],
                                             V.paper_number(scratch.get((t, "paper"))))


def _dig(d: Any, path: tuple) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def transfer_ratio_block(auc_target: float, auc_scratch: float,
                         scale: tuple[float, float] | None) -> dict[str, Any]:
    """The transfer ratio of two mean AUCs, on the task's fixed scale when there is one, with
    its basis, and the reason where it is undefined (``None``)."""
    basis = "raw"
    if scale is not None:
        lo, hi = scale
        auc_target, auc_scratch = (auc_target - lo) / (hi - lo), (auc_scratch - lo) / (hi - lo)
        basis = "normalised"
    ratio, note = M.transfer_ratio(auc_target, auc_scratch), None
    if not np.isfinite(ratio):
        who, area = (("scratch", auc_scratch) if not auc_scratch > 0 else ("transfer", auc_target))
        note = f"undefined: {who}'s {basis} AUC is {area:.3g}"
        if scale is None:
            note += " (no fixed random/reference scores for this task and profile)"
    return {"transfer_ratio": ratio if note is None else None,
            "transfer_ratio_basis": basis, "transfer_ratio_note": note}
