"""Expanding a suite into runs: dependencies, shared sources, paired baselines, filters, hashes."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from benchmarks.graph import RunSpec, expand, order
from benchmarks.suite import SuiteError, load_suite

FAKE = Path(__file__).resolve().parents[2] / "suites" / "fake_transfer.yaml"
VALID = yaml.safe_load(FAKE.read_text(encoding="utf-8"))


def _suite(tmp_path, mutate=None, name="variant.yaml"):
    data = copy.deepcopy(VALID)
    if mutate is not None:
        mutate(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_suite(path)


def _key(r: RunSpec):
    return (r.kind, r.name, r.task, r.seed, r.source_seed)


def _hashes(runs):
    return {_key(r): r.config_hash for r in runs}


def _assert_dependency_order(runs):
    seen = set()
    for r in runs:
        assert set(r.deps) <= seen, f"{r.run_id} comes before its deps {r.deps}"
        assert set(r.slots.values()) == set(r.deps)
        seen.add(r.run_id)


@pytest.fixture(scope="module")
def suite():
    return load_suite("fake_transfer")


@pytest.fixture(scope="module")
def smoke(suite):
    return expand(suite, "smoke")


def _env(suite, task: str) -> dict:
    spec = suite.tasks[task]
    return {"env": spec.env, "options": dict(spec.options)}


def test_smoke_expansion(suite, smoke):
    # the expected values come from the parsed suite: this checks how a suite expands, not what
    # the YAML happens to say
    prof, target = suite.profiles["smoke"], suite.targets[0]
    (slot, source_name), = target.sources.items()
    source = suite.sources[source_name]
    ids = [r.run_id for r in smoke]
    assert len(ids) == len(set(ids)) == len(prof.seeds) * (1 + len(target.methods))
    _assert_dependency_order(smoke)
    assert {(r.kind, r.name, r.seed) for r in smoke} == {
        *{("source", source_name, s) for s in prof.seeds},
        *{("target", m, s) for m in target.methods for s in prof.seeds}}
    assert all(r.suite == suite.name and r.profile == "smoke" for r in smoke)

    sources = {r.seed: r for r in smoke if r.kind == "source"}
    for src in sources.values():
        assert src.tasks == source.tasks and src.task == "+".join(source.tasks)
        assert src.envs == [_env(suite, t) for t in source.tasks]
        assert src.budget == prof.budgets[source.budget] and src.deps == [] and src.slots == {}
        assert not src.is_baseline and src.baseline_run_id is None
        assert src.run_id.startswith(f"src-{source_name}-s{src.seed}-")

    by_id = {r.run_id: r for r in smoke}
    targets = [r for r in smoke if r.kind == "target"]
    for t in targets:
        assert t.task == target.task and t.tasks == [target.task]
        assert t.budget == prof.budgets[suite.methods[t.name].budget]
        assert t.envs == [_env(suite, target.task)]
        # profile overrides reach the agent
        assert all(t.agent_config[k] == v for k, v in prof.agent_config.items())
        if t.name == "scratch":
            assert t.is_baseline and t.baseline_run_id is None
            assert t.deps == [] and t.slots == {} and t.callbacks == []
        else:
            assert not t.is_baseline
            # the shared source of the same seed, trained once
            assert t.slots == {slot: sources[t.seed].run_id}
            assert t.deps == [sources[t.seed].run_id]
            assert t.callbacks[0]["source"] == slot
            base = by_id[t.baseline_run_id]
            assert base.name == "scratch" and base.is_baseline
            assert (base.task, base.seed, base.budget) == (t.task, t.seed, t.budget)


def test_source_shared_by_both_transfer_methods(smoke):
    for seed in (0, 1):
        src_ids = [r.run_id for r in smoke if r.kind == "source" and r.seed == seed]
        assert len(src_ids) == 1
        users = [r for r in smoke if r.kind == "target" and r.seed == seed and r.slots]
        assert sorted(u.name for u in users) == ["finetune", "fractional"]
        assert {u.slots["base"] for u in users} == set(src_ids)


def test_default_profile_uses_suite_seeds(suite):
    default = suite.profiles[suite.default_profile]
    assert default.seeds is None  # the case under test: a profile without a seed list
    runs = expand(suite)
    assert {r.profile for r in runs} == {suite.default_profile}
    assert {r.seed for r in runs} == set(suite.seeds)
    assert {r.budget for r in runs if r.kind == "source"} == {default.budgets["source"]}
    assert len(runs) == len(suite.seeds) * (1 + len(suite.targets[0].methods))


def test_methods_filter_keeps_the_paired_baseline(smoke):
    runs = expand(load_suite("fake_transfer"), "smoke", methods=["finetune"])
    _assert_dependency_order(runs)
    assert {(r.kind, r.name) for r in runs} == {("source", "base"), ("target", "scratch"),
                                                 ("target", "finetune")}
    by_id = {r.run_id: r for r in runs}
    for t in runs:
        if t.name == "finetune":
            assert by_id[t.baseline_run_id].name == "scratch"
            assert by_id[t.baseline_run_id].seed == t.seed
    # the same runs as in the full expansion, not look-alikes
    assert set(by_id) <= {r.run_id for r in smoke}


def test_baseline_only_filter_trains_no_source():
    runs = expand(load_suite("fake_transfer"), "smoke", methods=["scratch"])
    assert {(r.kind, r.name) for r in runs} == {("target", "scratch")}
    assert len(runs) == 2


def test_seeds_filter(smoke):
    runs = expand(load_suite("fake_transfer"), "smoke", seeds=[1])
    assert {r.seed for r in runs} == {1}
    assert {r.run_id for r in runs} == {r.run_id for r in smoke if r.seed == 1}
    runs = expand(load_suite("fake_transfer"), "laptop", seeds=[2, 0])
    assert {r.seed for r in runs} == {0, 2}


def test_tasks_filter(tmp_path):
    def two_targets(d):
        d["targets"].append({"task": "corridor", "methods": ["scratch"]})
    suite = _suite(tmp_path, two_targets)
    everything = expand(suite, "smoke")
    assert {r.task for r in everything if r.kind == "target"} == {"slippery", "corridor"}

    only_corridor = expand(suite, "smoke", tasks=["corridor"])
    assert {(r.kind, r.name, r.task) for r in only_corridor} == {("target", "scratch", "corridor")}
    assert len(only_corridor) == 2

    only_slippery = expand(suite, "smoke", tasks=["slippery"])
    assert {r.task for r in only_slippery if r.kind == "target"} == {"slippery"}
    assert {r.run_id for r in only_slippery} == \
        {r.run_id for r in everything if r.kind == "source" or r.task == "slippery"}


def test_profile_task_and_method_subsets(tmp_path):
    def subset(d):
        d["targets"].append({"task": "corridor", "methods": ["scratch"]})
        d["profiles"]["smoke"]["tasks"] = ["slippery"]
        d["profiles"]["smoke"]["methods"] = ["fractional"]
    runs = expand(_suite(tmp_path, subset), "smoke")
    assert {(r.kind, r.name, r.task) for r in runs} == {
        ("source", "base", "corridor"), ("target", "scratch", "slippery"),
        ("target", "fractional", "slippery")}


@pytest.mark.parametrize("kwargs, flag, value", [
    ({"tasks": ["icy"]}, "--tasks", "icy"),
    ({"tasks": ["corridor"]}, "--tasks", "corridor"),   # a task, but no target runs on it
    ({"tasks": ["slippery", "icy"]}, "--tasks", "icy"),
    ({"methods": ["transfer"]}, "--methods", "transfer"),
])
def test_unknown_filter_value(kwargs, flag, value):
    with pytest.raises(SuiteError, match=flag) as info:
        expand(load_suite("fake_transfer"), "smoke", **kwargs)
    assert f"'{value}'" in str(info.value)
    assert "expected some of" in str(info.value)


def test_unknown_profile():
    with pytest.raises(SuiteError, match="unknown profile 'huge'"):
        expand(load_suite("fake_transfer"), "huge")


# -- content hashes -------------------------------------------------------------------------------
def test_hashes_stable_across_calls(smoke, tmp_path):
    again = expand(load_suite("fake_transfer"), "smoke")
    assert [r.run_id for r in again] == [r.run_id for r in smoke]
    assert _hashes(again) == _hashes(smoke)
    # an identical copy of the file hashes identically (the hash is content, not location)
    assert _hashes(expand(_suite(tmp_path), "smoke")) == _hashes(smoke)
    for r in smoke:
        assert r.run_id.endswith(r.config_hash[:8])
        assert len(r.config_hash) == 64
        assert RunSpec.from_dict(r.to_dict()) == r


def test_hash_differs_by_seed(smoke):
    for kind, name in [("source", "base"), ("target", "scratch"), ("target", "finetune")]:
        h = {r.seed: r.config_hash for r in smoke if (r.kind, r.name) == (kind, name)}
        assert h[0] != h[1]


def _changed(before, after):
    hb, ha = _hashes(before), _hashes(after)
    assert hb.keys() == ha.keys()
    return {(k[0], k[1]) for k in hb if hb[k] != ha[k]}


SRC, SCRATCH, FINETUNE, FRACTIONAL = (("source", "base"), ("target", "scratch"),
                                      ("target", "finetune"), ("target", "fractional"))
TRANSFER = {FINETUNE, FRACTIONAL}


def _budgets(role, steps):
    return lambda d: d["profiles"]["smoke"]["budgets"].__setitem__(role, steps)


@pytest.mark.parametrize("mutate, changed", [
    (_budgets("target", 401), {SCRATCH} | TRANSFER),
    # the source's hash changes, and so do the targets that load it; scratch is untouched
    (_budgets("source", 601), {SRC} | TRANSFER),
    (lambda d: d["profiles"]["smoke"]["agent_config"].__setitem__("eps_steps", 301),
     {SRC, SCRATCH} | TRANSFER),
    (lambda d: d["methods"]["finetune"].__setitem__("config", {"lr": 0.01}), {FINETUNE}),
    (lambda d: d["methods"]["scratch"].__setitem__("config", {"lr": 0.01}), {SCRATCH}),
    (lambda d: d["sources"]["base"].__setitem__("config", {"lr": 0.01}), {SRC} | TRANSFER),
    (lambda d: d["methods"]["fractional"]["callbacks"][0]["args"].__setitem__("fraction", 0.25),
     {FRACTIONAL}),
    (lambda d: d["methods"]["finetune"]["callbacks"][0]["args"].__setitem__("components", ["q"]),
     {FINETUNE}),
    (lambda d: d["tasks"]["slippery"]["options"].__setitem__("slip", 0.2), {SCRATCH} | TRANSFER),
    (lambda d: d["tasks"]["corridor"]["options"].__setitem__("length", 9), {SRC} | TRANSFER),
    (lambda d: d["profiles"]["smoke"]["training"].__setitem__("batch_size", 16),
     {SRC, SCRATCH} | TRANSFER),
    (lambda d: d["profiles"]["smoke"].__setitem__("description", "reworded"), set()),
    # settings added later enter the hash only when set away from their default
    (lambda d: d["profiles"]["smoke"]["training"].__setitem__("reward_fraction", 0.0), set()),
    (lambda d: d["profiles"]["smoke"]["training"].__setitem__("reward_fraction", 0.25),
     {SRC, SCRATCH} | TRANSFER),
    (lambda d: d["profiles"]["smoke"]["training"].__setitem__("segment_steps", 0), set()),
    (lambda d: d["profiles"]["smoke"]["training"].__setitem__("segment_steps", 50),
     {SRC, SCRATCH} | TRANSFER),
], ids=["target-budget", "source-budget", "profile-agent-config", "method-config",
        "baseline-config", "source-config", "callback-arg", "callback-components",
        "target-env-options", "source-env-options", "training", "description-only",
        "later-setting-at-default", "later-setting-set", "segments-at-default", "segments-set"])
def test_hash_tracks_what_determines_the_outcome(mutate, changed, smoke, tmp_path):
    after = expand(_suite(tmp_path, mutate), "smoke")
    assert _changed(smoke, after) == changed


def test_target_budget_role_applies_to_every_method_on_it(suite, smoke, tmp_path):
    def longer(d):
        d["targets"][0]["budget"] = "long"
        for prof in d["profiles"].values():
            prof["budgets"]["long"] = 900
    after = expand(_suite(tmp_path, longer), "smoke")
    source_budget = suite.profiles["smoke"].budgets["source"]
    assert {(r.kind, r.budget) for r in after} == {("source", source_budget), ("target", 900)}
    assert _changed(smoke, after) == {SCRATCH} | TRANSFER  # a new budget, so new hashes


def test_target_hash_follows_its_source(smoke, tmp_path):
    """Only the source differs, so the target's own settings are equal but its hash is not."""
    source_config = lambda d: d["sources"]["base"].__setitem__("config", {"gamma": 0.9})
    after = expand(_suite(tmp_path, source_config), "smoke")
    old = {_key(r): r for r in smoke}
    for r in after:
        if r.name == "finetune":
            o = old[_key(r)]
            assert (r.agent_config, r.callbacks, r.budget, r.envs, r.training) == \
                (o.agent_config, o.callbacks, o.budget, o.envs, o.training)
            assert r.slots["base"] != o.slots["base"]
            assert r.config_hash != o.config_hash and r.run_id != o.run_id


# -- fixed source seed pools ----------------------------------------------------------------------
def test_source_seed_pool_crossed_with_target_seeds(tmp_path):
    suite = _suite(tmp_path, lambda d: d["sources"]["base"].__setitem__("seeds", [0, 1]))
    runs = expand(suite, "smoke", seeds=[0, 1, 2])
    _assert_dependency_order(runs)
    ids = [r.run_id for r in runs]
    assert len(ids) == len(set(ids))
    by_id = {r.run_id: r for r in runs}

    sources = {r.seed: r for r in runs if r.kind == "source"}
    assert sorted(sources) == [0, 1] and len([r for r in runs if r.kind == "source"]) == 2

    scratch = {r.seed: r for r in runs if r.name == "scratch"}
    assert sorted(scratch) == [0, 1, 2]
    assert all("-b" not in r.run_id and r.source_seed is None for r in scratch.values())

    for method in ("finetune", "fractional"):
        for seed in (0, 1, 2):
            mine = sorted((r for r in runs if r.name == method and r.seed == seed),
                          key=lambda r: r.source_seed)
            assert [r.source_seed for r in mine] == [0, 1]
            for r in mine:
                assert r.run_id.startswith(f"tgt-slippery-{method}-s{seed}-b{r.source_seed}-")
                assert r.slots == {"base": sources[r.source_seed].run_id}
                assert r.baseline_run_id == scratch[seed].run_id
                assert by_id[r.baseline_run_id].budget == r.budget
    assert len(runs) == 2 + 3 + 2 * 3 * 2


# -- order() --------------------------------------------------------------------------------------
def test_order_puts_dependencies_first(smoke):
    shuffled = list(reversed(smoke))
    ordered = order(shuffled)
    assert sorted(r.run_id for r in ordered) == sorted(r.run_id for r in smoke)
    _assert_dependency_order(ordered)


def test_order_raises_on_a_cycle(smoke):
    a, b, c = smoke[0], smoke[1], smoke[2]
    a2 = dataclasses.replace(a, deps=[b.run_id])
    b2 = dataclasses.replace(b, deps=[a.run_id])
    with pytest.raises(SuiteError, match="cycle") as info:
        order([c, a2, b2])
    msg = str(info.value)
    assert a.run_id in msg and b.run_id in msg
    assert c.run_id not in msg  # c is not part of the cycle


def test_order_raises_on_a_self_loop(smoke):
    a = dataclasses.replace(smoke[0], deps=[smoke[0].run_id])
    with pytest.raises(SuiteError, match="cycle"):
        order([a])


def test_order_names_unknown_dependencies(smoke):
    a = dataclasses.replace(smoke[0], deps=["ghost-run"])
    with pytest.raises(SuiteError, match=r"unknown runs \['ghost-run'\]"):
        order([a])


def test_evaluation_options_and_a_methods_env_options_reach_its_runs_only(tmp_path):
    def mutate(data):
        data["tasks"]["slippery"]["eval_options"] = {"slip": 0.0}
        data["methods"]["finetune"]["task_options"] = {"length": 9}
        data["profiles"]["smoke"]["agent_configs"] = {"tiny_q": {"hidden": 8}}

    runs = {(r.name, r.task): r for r in expand(_suite(tmp_path, mutate), "smoke")}
    scratch, finetune = runs[("scratch", "slippery")], runs[("finetune", "slippery")]
    assert scratch.envs[0]["eval_options"] == {"slip": 0.0}
    assert finetune.envs[0]["options"]["length"] == 9 != scratch.envs[0]["options"]["length"]
    assert scratch.agent_config["hidden"] == 8
    source = next(r for r in runs.values() if r.kind == "source")
    assert "eval_options" not in source.envs[0]  # its task declares none: its id is unchanged
    plain = {(r.name, r.task): r.config_hash for r in expand(_suite(tmp_path), "smoke")}
    assert plain[("scratch", "slippery")] != scratch.config_hash
