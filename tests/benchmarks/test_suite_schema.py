"""Suite YAML validation at the boundary, and the CLI's exit codes for bad input.

Each bad suite starts from the valid ``suites/fake_transfer.yaml``, breaks one thing in a deep copy
and is written to ``tmp_path``; the error must name the file, the field path and the expected form,
and ``python -m benchmarks validate`` must exit 2 with ``error:`` on stderr.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from benchmarks.cli import COMMANDS, EXIT_INPUT, EXIT_OK, main
from benchmarks.suite import SuiteError, load_suite
from suite_edits import delete_key, set_key

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "suites" / "fake_transfer.yaml"
VALID = yaml.safe_load(FAKE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _mutated(mutate) -> dict:
    data = copy.deepcopy(VALID)
    mutate(data)
    return data


def _cycle(data):
    data["sources"]["a"] = {"agent": "tiny_q", "tasks": ["corridor"], "uses": {"up": "b"}}
    data["sources"]["b"] = {"agent": "tiny_q", "tasks": ["corridor"], "uses": {"up": "a"}}


# id -> (mutation, field path named in the message, fragments describing the expected form)
BAD = {
    "missing_baseline": (delete_key("baseline"), "baseline", ["field required"]),
    "missing_task_env": (delete_key("tasks.corridor.env"), "tasks.corridor.env", ["field required"]),
    "seeds_not_a_list": (set_key("seeds", "zero"), "seeds", ["valid list"]),
    "budget_not_an_int": (set_key("profiles.smoke.budgets.source", "many"),
                          "profiles.smoke.budgets.source", ["valid integer"]),
    "unknown_target_method": (set_key("targets.0.methods.2", "fractionall"), "targets.0.methods.2",
                              ["unknown method 'fractionall'", "expected one of",
                               "'finetune', 'fractional', 'scratch'"]),
    "unknown_target_task": (set_key("targets.0.task", "icy"), "targets.0.task",
                            ["unknown task 'icy'", "expected one of", "'corridor', 'slippery'"]),
    "unknown_source_task": (set_key("sources.base.tasks", ["corridor", "icy"]), "sources.base.tasks.1",
                            ["unknown task 'icy'", "expected one of", "'corridor', 'slippery'"]),
    "unknown_method_agent": (set_key("methods.finetune.agent", "huge_q"), "methods.finetune.agent",
                             ["unknown agent 'huge_q'", "expected one of", "'tiny_q'"]),
    "unknown_source_agent": (set_key("sources.base.agent", "huge_q"), "sources.base.agent",
                             ["unknown agent 'huge_q'", "expected one of", "'tiny_q'"]),
    "unknown_env": (set_key("tasks.slippery.env", "maze"), "tasks.slippery.env",
                    ["unknown env 'maze'", "expected one of", "'corridor'"]),
    "unknown_callback": (set_key("methods.fractional.callbacks.0.name", "fractionall"),
                         "methods.fractional.callbacks.0.name",
                         ["unknown callback 'fractionall'", "expected one of", "'fractional'"]),
    "callback_slot_not_in_uses": (set_key("methods.finetune.callbacks.0.source", "other"),
                                  "methods.finetune.callbacks.0.source",
                                  ["slot 'other'", "methods.finetune.uses", "expected one of ['base']"]),
    "transfer_target_without_baseline": (set_key("targets.0.methods", ["finetune", "fractional"]),
                                         "targets.0.methods", ["baseline 'scratch'"]),
    "profile_missing_budget_role": (delete_key("profiles.smoke.budgets.target"),
                                    "profiles.smoke.budgets",
                                    ["missing budget 'target'", "target: <env steps>"]),
    "unknown_top_level_field": (set_key("seed", [0, 1]), "seed", ["unknown field"]),
    "unknown_nested_field": (set_key("tasks.corridor.option", {"length": 8}), "tasks.corridor.option",
                             ["unknown field"]),
    "source_cycle": (_cycle, "sources", ["cycle"]),
    "callback_sources_slot_not_in_uses": (
        set_key("methods.finetune.callbacks.0.args", {"sources": ["base", "other"]}),
        "methods.finetune.callbacks.0.args.sources.1",
        ["slot 'other'", "methods.finetune.uses", "expected one of ['base']"]),
    "target_budget_role_missing": (set_key("targets.0.budget", "long"), "profiles.smoke.budgets",
                                   ["missing budget 'long'", "long: <env steps>"]),
    "threshold_of_unknown_task": (set_key("metrics.thresholds", {"icy": 1.0}),
                                  "metrics.thresholds.icy",
                                  ["unknown task 'icy'", "expected one of", "'corridor', 'slippery'"]),
    "learn_within_without_threshold": (set_key("metrics.learn_within", {"corridor": 500}),
                                       "metrics.learn_within.corridor",
                                       ["no threshold", "metrics.thresholds.corridor: <return>"]),
    "learn_within_not_positive": (set_key("metrics.learn_within", {"slippery": 0}),
                                  "metrics.learn_within.slippery", ["positive step count"]),
    "random_score_of_unknown_task": (
        set_key("metrics.random_scores", {"icy": 0.1}), "metrics.random_scores.icy",
        ["unknown task 'icy'", "expected one of", "'corridor', 'slippery'"]),
    "reference_score_of_unknown_task": (
        set_key("metrics.reference_scores", {"icy": 0.8}), "metrics.reference_scores.icy",
        ["unknown task 'icy'", "expected one of", "'corridor', 'slippery'"]),
    "random_score_not_finite": (set_key("metrics.random_scores", {"slippery": float("nan")}),
                                "metrics.random_scores.slippery", ["finite number"]),
    "reference_score_infinite": (set_key("metrics.reference_scores", {"slippery": float("inf")}),
                                 "metrics.reference_scores.slippery", ["finite number"]),
    "reference_score_equals_random": (
        set_key("metrics.random_scores", {"slippery": 0.8}), "metrics.reference_scores.slippery",
        ["0.8 is not above metrics.random_scores.slippery (0.8)", "above random play"]),
    "reference_score_below_random": (
        set_key("metrics.random_scores", {"slippery": 0.9}), "metrics.reference_scores.slippery",
        ["not above metrics.random_scores.slippery (0.9)"]),
    "reference_score_is_not_the_threshold": (
        set_key("metrics.reference_scores", {"slippery": 0.94}), "metrics.reference_scores.slippery",
        ["0.94 is not the task's threshold", "expected 0.8, as metrics.thresholds.slippery"]),
    "reference_score_without_threshold": (
        set_key("metrics.reference_scores", {"corridor": 0.94}), "metrics.reference_scores.corridor",
        ["no threshold", "metrics.thresholds.corridor: 0.94"]),
    "scores_hold_for_unknown_profile": (
        set_key("metrics.scores_hold_for", ["laptop", "weekly"]), "metrics.scores_hold_for.1",
        ["unknown profile 'weekly'", "expected one of", "'laptop', 'nightly'"]),
    "agent_configs_of_an_unused_agent": (
        set_key("profiles.smoke.agent_configs", {"ppo": {"lr": 0.1}}),
        "profiles.smoke.agent_configs.ppo", ["no method or source", "'tiny_q'"]),
    "callback_sources_not_a_list": (
        set_key("methods.finetune.callbacks.0.args", {"sources": "base"}),
        "methods.finetune.callbacks.0.args.sources", ["non-empty list of slots"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_suite_is_rejected_naming_file_field_and_form(case, tmp_path, capsys):
    mutate, field, forms = BAD[case]
    path = _write(tmp_path, _mutated(mutate))
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    assert f"{field}: " in msg, msg
    for form in forms:
        assert form in msg, msg

    assert main(["validate", str(path)]) == EXIT_INPUT
    out, err = capsys.readouterr()
    assert err.startswith("error: "), err
    assert str(path) in err and f"{field}: " in err
    assert "valid suite" not in out


def test_cycle_message_names_both_sources(tmp_path):
    path = _write(tmp_path, _mutated(_cycle))
    with pytest.raises(SuiteError, match="cycle") as info:
        load_suite(path)
    cycle = str(info.value).split("cycle", 1)[1]
    assert re.search(r"\ba\b", cycle) and re.search(r"\bb\b", cycle), cycle


def test_invalid_yaml_syntax(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text(FAKE.read_text(encoding="utf-8").replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2"),
                    encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "not valid YAML" in msg
    assert "line " in msg  # points at where parsing failed
    assert main(["validate", str(path)]) == EXIT_INPUT
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("text", ["- name: fake\n- seeds: [0]\n", "just a string\n", ""],
                         ids=["list", "scalar", "empty"])
def test_non_mapping_root(text, tmp_path, capsys):
    path = tmp_path / "root.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: <root>: ") and "expected a mapping" in msg
    assert main(["validate", str(path)]) == EXIT_INPUT
    assert capsys.readouterr().err.startswith("error: ")


def test_missing_suite_file(tmp_path, capsys):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(path)
    assert main(["validate", str(path)]) == EXIT_INPUT
    assert str(path) in capsys.readouterr().err


def test_unmutated_copy_loads(tmp_path):
    """Guards the fixture: the mutations above are the only thing wrong with each bad suite."""
    suite = load_suite(_write(tmp_path, copy.deepcopy(VALID)))
    assert suite.name == "fake_transfer" and suite.baseline == "scratch"


def test_valid_suite_validates(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["validate", "suites/fake_transfer.yaml"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "valid suite 'fake_transfer'" in out
    assert "error" not in err


@pytest.mark.parametrize("name", ["fake_transfer", "inverse_maze", "pybullet_ftl", "pybullet_mmtl"])
def test_shipped_suites_validate(name):
    suite = load_suite(name)
    assert suite.default_profile in suite.profiles and "smoke" in suite.profiles


def test_random_and_reference_scores_load_as_data():
    m = load_suite(FAKE).metrics
    assert (m.random_scores, m.reference_scores, m.scores_hold_for) == (
        {"slippery": 0.10}, {"slippery": 0.8}, None)
    pendulum = load_suite("pybullet_ftl").metrics
    assert pendulum.random_scores["pendulum"] == -877.0
    # a reference is a level above random play, or the scale would flip
    assert all(pendulum.random_scores[t] < pendulum.reference_scores[t]
               for t in pendulum.random_scores)
    assert pendulum.scores_hold_for == ["laptop", "nightly", "paper"]


def test_load_by_name_matches_load_by_path():
    by_name, by_path = load_suite("fake_transfer"), load_suite(FAKE)
    assert by_name == by_path
    assert set(by_name.profiles) == {"smoke", "laptop", "nightly", "paper"}
    assert by_name.profile(None) is by_name.profiles["laptop"]
    with pytest.raises(SuiteError, match="unknown profile 'huge'"):
        by_name.profile("huge")


def test_list_prints_suite_and_profiles(capsys):
    assert main(["list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "fake_transfer: " in out
    suite = load_suite("fake_transfer")
    for pname in suite.profiles:
        assert f"profile {pname}" in out
    assert f"profile {suite.default_profile} (default)" in out
    # smoke: 2 sources + 3 methods x 2 seeds = 8 runs
    assert "profile smoke: 8 runs" in out


@pytest.mark.parametrize("argv", [["--help"]] + [[cmd, "--help"] for cmd in COMMANDS],
                         ids=lambda a: " ".join(a))
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m benchmarks")


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("suite", ["no_such_suite", "missing/suite.yaml"])
def test_run_unknown_suite_is_bad_input_and_writes_nothing(suite, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(["run", suite, "--out", str(out_dir)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and suite in err
    assert not out_dir.exists()


def test_run_unknown_filter_is_bad_input_and_writes_nothing(tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(["run", "fake_transfer", "--profile", "smoke", "--tasks", "icy",
                 "--out", str(out_dir)]) == EXIT_INPUT
    assert "--tasks" in capsys.readouterr().err
    assert not out_dir.exists()


def test_run_empty_seed_selection_is_bad_input(tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(["run", "fake_transfer", "--seeds", ",", "--out", str(out_dir)]) == EXIT_INPUT
    assert capsys.readouterr().err.startswith("error: ")


# -- free-form dicts bound to their receivers ---------------------------------------------------
# id -> (mutation, field path of the dict holding the typo, the typo, an accepted key it misses)
TYPOS = {
    "method_agent_config": (set_key("methods.scratch.config", {"eps_stpes": 10}),
                            "methods.scratch.config", "eps_stpes", "eps_steps"),
    "source_agent_config": (set_key("sources.base.config", {"hiden": 8}),
                            "sources.base.config", "hiden", "hidden"),
    "profile_agent_config": (set_key("profiles.laptop.agent_config", {"lr": 0.01, "gama": 0.9}),
                             "profiles.laptop.agent_config", "gama", "gamma"),
    "target_agent_config": (set_key("targets.0.agent_config", {"latnet": 4}),
                            "targets.0.agent_config", "latnet", "latent"),
    "callback_args": (set_key("methods.fractional.callbacks.0.args.fracton", 0.3),
                      "methods.fractional.callbacks.0.args", "fracton", "fraction"),
    "profile_callback_args": (set_key("profiles.smoke.callback_args",
                                   {"fractional": {"fractoin": 0.1}}),
                              "profiles.smoke.callback_args.fractional", "fractoin", "fraction"),
    "task_options": (set_key("tasks.slippery.options.slipp", 0.2), "tasks.slippery.options", "slipp",
                     "slip"),
    "profile_task_options": (set_key("profiles.nightly.task_options", {"lenght": 4}),
                             "profiles.nightly.task_options", "lenght", "length"),
    "eval_options": (set_key("tasks.slippery.eval_options", {"slipp": 0.0}),
                     "tasks.slippery.eval_options", "slipp", "slip"),
    "method_task_options": (set_key("methods.scratch.task_options", {"lenght": 4}),
                            "methods.scratch.task_options", "lenght", "length"),
    "profile_agent_configs": (set_key("profiles.laptop.agent_configs", {"tiny_q": {"gama": 0.9}}),
                              "profiles.laptop.agent_configs.tiny_q", "gama", "gamma"),
    "training_block": (set_key("profiles.smoke.training.colect_every", 10),
                       "profiles.smoke.training", "colect_every", "collect_every"),
}


@pytest.mark.parametrize("case", list(TYPOS))
def test_misspelt_key_fails_validate_and_run_naming_field_key_and_accepted(case, tmp_path, capsys):
    mutate, field, typo, accepted = TYPOS[case]
    path = _write(tmp_path, _mutated(mutate))
    assert main(["validate", str(path)]) == EXIT_INPUT
    out, err = capsys.readouterr()
    assert "valid suite" not in out
    line = err.removeprefix("error: ").splitlines()[0]
    assert line.startswith(f"{path}: {field}: "), line
    unknown, known = line.split("accepted keys:", 1)
    assert f"'{typo}'" in unknown and f"'{accepted}'" in known and f"'{typo}'" not in known, line

    # run stops at the same check, before anything is written
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--profile", "smoke", "--out", str(out_dir)]) == EXIT_INPUT
    assert f"{field}: " in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_callback_slot_given_to_a_callback_without_source(tmp_path, capsys):
    """``source:`` is passed to the callback as an argument, so it is bound like one."""
    freeze = {"name": "freeze", "source": "base", "args": {"components": ["q"]}}
    path = _write(tmp_path, _mutated(set_key("methods.finetune.callbacks", [freeze])))
    assert main(["validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "methods.finetune.callbacks.0.source: " in err and "['source']" in err
    assert "callback 'freeze'" in err


def test_callback_arguments_are_bound_merged_with_the_profiles(tmp_path):
    """A required argument may come from every profile's ``callback_args``; missing, it fails."""
    schedule = {"name": "loss_schedule", "args": {"terms": ["q/*"]}}
    data = _mutated(set_key("methods.scratch.callbacks", [schedule]))
    path = _write(tmp_path, data)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: methods.scratch.callbacks.0.args: ")
    assert "loss_schedule" in msg and "until_step" in msg
    for prof in data["profiles"].values():
        prof["callback_args"] = {"loss_schedule": {"until_step": 100}}
    load_suite(_write(tmp_path, data))


def test_agent_config_value_rejected_by_the_agent_names_every_layer(tmp_path):
    """Values are checked where the agent's own resolution checks them (Dreamer's presets)."""
    data = copy.deepcopy(VALID)
    data["tasks"] = {"corridor": {"env": "point"},
                     "slippery": {"env": "point", "options": {"dim": 1}}}
    for entry in [*data["sources"].values(), *data["methods"].values()]:
        entry["agent"] = "dreamer"
    for prof in data["profiles"].values():
        prof["agent_config"] = {}
    data["profiles"]["smoke"]["agent_config"] = {"size": "huge"}
    with pytest.raises(SuiteError) as info:
        load_suite(_write(tmp_path, data))
    msg = str(info.value)
    assert "size must be one of" in msg and "'huge'" in msg
    assert "profiles.smoke.agent_config merged in" in msg


def test_training_block_is_the_library_training_config(tmp_path):
    """One list of fields: the profile's block binds to lightning_wm's TrainingConfig, with its
    defaults filled in and its range checks applied."""
    from dataclasses import asdict, fields

    from lightning_wm.pipeline.config import TrainingConfig

    suite = load_suite(FAKE)
    for prof in suite.profiles.values():
        assert list(prof.training) == [f.name for f in fields(TrainingConfig)]
        assert prof.training == asdict(TrainingConfig(**prof.training))
    path = _write(tmp_path, _mutated(set_key("profiles.smoke.training.collect_every", 0)))
    with pytest.raises(SuiteError, match=r"profiles\.smoke\.training: collect_every must be > 0"):
        load_suite(path)
    path = _write(tmp_path, _mutated(set_key("profiles.smoke.training.task_sampling", "random")))
    with pytest.raises(SuiteError, match="task_sampling must be one of"):
        load_suite(path)


@pytest.mark.parametrize("path", sorted((REPO / "suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_committed_suite_validates_from_the_cli(path, capsys):
    assert main(["validate", str(path)]) == EXIT_OK
    assert "valid suite" in capsys.readouterr().out


def test_checks_never_import_the_schema_module():
    """benchmarks.suite runs the checks, so checks (and the bindings) must not import it back,
    not even for types."""
    import ast

    for module in ("checks", "bindings"):
        tree = ast.parse((REPO / "benchmarks" / f"{module}.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "benchmarks.suite" not in imported, module


def test_options_of_a_diagnostics_own_env_are_bound_to_that_env(tmp_path, capsys):
    """mario_levels' reconstruction plays an unseen level: its ``options`` are env options."""
    recon = {"name": "reconstruction", "args": {"env": "corridor", "options": {"lenght": 4}}}
    path = _write(tmp_path, _mutated(set_key("methods.scratch.callbacks", [recon])))
    assert main(["validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert f"{path}: methods.scratch.callbacks.0.args.options: " in err
    assert "['lenght']" in err and "'length'" in err


def test_env_option_arguments_name_real_callback_parameters():
    import inspect

    from benchmarks.bindings import ENV_OPTION_ARGS
    from lightning_wm.callbacks import CALLBACK_REGISTRY

    for name, (env_arg, options_arg) in ENV_OPTION_ARGS.items():
        params = inspect.signature(CALLBACK_REGISTRY[name]).parameters
        assert env_arg in params and options_arg in params, name


def test_human_references_need_not_be_thresholds(tmp_path):
    data = copy.deepcopy(VALID)
    data["metrics"].update(reference="human", random_scores={"slippery": 0.0},
                           reference_scores={"slippery": 0.94})  # the threshold is 0.8
    assert load_suite(_write(tmp_path, data)).metrics.reference == "human"


def test_published_aggregates_must_say_what_they_are_over(tmp_path):
    data = copy.deepcopy(VALID)
    ref = {"name": "paper", "citation": "A and B (2020), A Paper", "metric": "final",
           "values": {"slippery": {"scratch": 0.5}}, "aggregates": {"mean": 0.4}}
    data["references"] = [ref]
    with pytest.raises(SuiteError, match="aggregates_over"):
        load_suite(_write(tmp_path, data))
    ref["aggregates_over"] = "the paper's 3 tasks, raw returns"
    loaded = load_suite(_write(tmp_path, data)).references[0]
    assert loaded.aggregates == {"mean": 0.4}
    ref["aggregates"] = {"average": 0.4}  # not one of the aggregates the report knows
    with pytest.raises(SuiteError, match="references.0.aggregates: .*'median'"):
        load_suite(_write(tmp_path, data))
