"""Suite files as untrusted input: names that would leave ``--out``, YAML built to exhaust memory,
time or the stack, and values past any sane bound. Each must be refused at ``validate`` (and
``run``, before anything is written) with exit 2 and one line naming the file and the field."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.cli import EXIT_INPUT, main
from benchmarks.suite import SuiteError, load_suite
from benchmarks.yaml_load import MAX_BYTES, MAX_DEPTH, load_text
from suite_edits import set_key

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "suites" / "fake_transfer.yaml"
VALID = yaml.safe_load(FAKE.read_text(encoding="utf-8"))
ESCAPES = ["../../../../escape", "x/../../../../escape", "/tmp/escape", "nul\x00byte",
           "n" * 300, ".hidden", "two\nlines", ""]


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _rename_key(mapping: dict, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


def _name_task(data, bad):  # a task key, and every reference to it
    _rename_key(data["tasks"], "slippery", bad)
    data["targets"][0]["task"] = bad


def _name_method(data, bad):
    _rename_key(data["methods"], "fractional", bad)
    data["targets"][0]["methods"][2] = bad


def _name_source(data, bad):
    _rename_key(data["sources"], "base", bad)
    data["targets"][0]["sources"]["base"] = bad


def _name_slot(data, bad):
    _rename_key(data["targets"][0]["sources"], "base", bad)
    for name in ("finetune", "fractional"):
        data["methods"][name]["uses"] = [bad]
        data["methods"][name]["callbacks"][0]["source"] = bad


def _name_profile(data, bad):
    _rename_key(data["profiles"], "laptop", bad)
    data["default_profile"] = bad


# id -> (mutation taking the bad name, the field path the message names)
NAMES = {
    "suite": (lambda d, bad: d.__setitem__("name", bad), "name"),
    "task": (_name_task, "tasks"),
    "method": (_name_method, "methods"),
    "source": (_name_source, "sources"),
    "slot": (_name_slot, "methods.finetune."),  # its first use in the file
    "profile": (_name_profile, "profiles"),
}


def _validate_exit(path: Path, capsys, tmp_path: Path) -> str:
    """Exit 2 from validate and from run (nothing written); the single error line."""
    assert main(["validate", str(path)]) == EXIT_INPUT
    out, err = capsys.readouterr()
    assert "valid suite" not in out
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), err
    out_dir = tmp_path / "out"
    assert main(["run", str(path), "--profile", "smoke", "--out", str(out_dir)]) == EXIT_INPUT
    capsys.readouterr()
    assert not out_dir.exists()
    return lines[0]


@pytest.mark.parametrize("bad", ESCAPES, ids=["dotdot", "inner_dotdot", "absolute", "nul",
                                              "long", "leading_dot", "newline", "empty"])
@pytest.mark.parametrize("kind", list(NAMES))
def test_a_name_that_is_no_identifier_is_refused(kind, bad, tmp_path, capsys):
    mutate, field = NAMES[kind]
    data = copy.deepcopy(VALID)
    mutate(data, bad)
    line = _validate_exit(_write(tmp_path, data), capsys, tmp_path)
    assert f": {field}" in line and "not a valid name" in line, line


def test_suite_by_name_is_looked_up_never_used_as_a_path(capsys):
    assert main(["validate", "../../../etc/passwd.yaml"]) == EXIT_INPUT
    with pytest.raises(SuiteError, match="not a suite name"):
        load_suite("../suites/fake_transfer")


# -- the YAML itself -----------------------------------------------------------------------------
def _bomb(levels: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(), encoding="utf-8")  # 9**9 = 387M values once expanded
    start = time.process_time()
    with pytest.raises(SuiteError, match="expands to more than"):
        load_suite(path)
    assert time.process_time() - start < 1.0
    assert main(["validate", str(path)]) == EXIT_INPUT
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize("text, problem", [
    ("name: a\nname: b\n", "duplicate key 'name'"),
    ("tasks: {corridor: {env: corridor}, corridor: {env: point}}\n", "duplicate key 'corridor'"),
    ("a: " + "[" * 2000 + "]" * 2000 + "\n", f"more than {MAX_DEPTH} levels"),
    ("a: &a [1, *a]\n", "contains it"),
    ("a: !!python/object/apply:os.system [echo]\n", "not valid YAML"),
    ("a: [1, 2\n", "not valid YAML"),
    ("a: " + "1" * 5000 + "\n", "unreadable value"),
], ids=["duplicate", "duplicate_flow", "deep", "recursive_alias", "python_tag", "syntax",
        "int_too_long"])
def test_unsafe_yaml_is_refused_naming_the_file(text, problem, tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}: ") and problem in str(info.value)
    assert "\n" not in str(info.value)
    assert main(["validate", str(path)]) == EXIT_INPUT
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_duplicate_key_in_a_real_suite_names_its_line(tmp_path):
    text = FAKE.read_text(encoding="utf-8").replace("baseline: scratch\n",
                                                    "baseline: scratch\nbaseline: finetune\n")
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError, match=r"line \d+, column 1: duplicate key 'baseline'"):
        load_suite(path)


def test_merge_keys_may_override_what_they_merge():
    assert load_text("b: &b {x: 1, y: 2}\nc: {<<: *b, x: 3}\n")["c"] == {"x": 3, "y": 2}


@pytest.mark.parametrize("case", ["too_large", "not_utf8", "directory", "missing"])
def test_unreadable_files_are_refused_naming_the_file(case, tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    if case == "too_large":
        path.write_text("#" * (MAX_BYTES + 1), encoding="utf-8")
    elif case == "not_utf8":
        path.write_bytes(b"name: caf\xe9\n")
    elif case == "directory":
        path.mkdir()
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}: ")
    assert main(["validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(path) in err


# -- bounds --------------------------------------------------------------------------------------
# id -> (mutation, field path named, a fragment of the expected form)
BOUNDS = {
    "budget_huge": (set_key("profiles.smoke.budgets.source", 10 ** 30), "profiles.smoke.budgets.source",
                    "at most 1,000,000,000"),
    "budget_4000_digits": (set_key("profiles.smoke.budgets.target", 10 ** 3999),
                           "profiles.smoke.budgets.target", "got a 4000-digit number"),
    "budget_bool": (set_key("profiles.smoke.budgets.source", True), "profiles.smoke.budgets.source",
                    "valid integer"),
    "learn_within_huge": (lambda d: d["metrics"].update(learn_within={"slippery": 10 ** 12}),
                          "metrics.learn_within.slippery", "at most 1,000,000,000"),
    "seed_bool": (set_key("seeds", [True]), "seeds.0", "valid integer"),
    "seed_negative": (set_key("seeds", [0, -1]), "seeds.1", "[0, 2**32)"),
    "seed_too_large": (set_key("profiles.smoke.seeds", [2 ** 32]), "profiles.smoke.seeds.0", "[0, 2**32)"),
    "seed_string": (set_key("seeds", ["3"]), "seeds.0", "valid integer"),
    "source_seed_pool": (set_key("profiles.smoke.source_seeds", {"base": [2 ** 40]}),
                         "profiles.smoke.source_seeds.base.0", "[0, 2**32)"),
    "batch_size_huge": (set_key("profiles.smoke.training.batch_size", 10 ** 12),
                        "profiles.smoke.training", "batch_size must be <= 4,096"),
    "batch_size_bool": (set_key("profiles.smoke.training.batch_size", True),
                        "profiles.smoke.training", "'batch_size' expects int"),
    "batch_size_string": (set_key("profiles.smoke.training.batch_size", "64"),
                          "profiles.smoke.training", "'batch_size' expects int"),
    "replay_huge": (set_key("profiles.smoke.training.replay_capacity", 10 ** 10),
                    "profiles.smoke.training", "replay_capacity must be <="),
    "num_envs_huge": (set_key("profiles.smoke.training.num_envs", 10 ** 6),
                      "profiles.smoke.training", "num_envs must be <="),
    "env_option_string": (set_key("tasks.corridor.options.length", "8"), "tasks.corridor.options",
                          "option 'length' expects int"),
    "env_option_bool": (set_key("tasks.slippery.options.slip", True), "tasks.slippery.options",
                        "option 'slip' expects float"),
    "profile_task_option": (set_key("profiles.smoke.task_options", {"invert": "yes"}),
                            "tasks.corridor.options", "option 'invert' expects bool"),
    "pad_option": (set_key("tasks.corridor.options.pad_obs", 1.5), "tasks.corridor.options",
                   "option 'pad_obs' expects int | None"),
}


@pytest.mark.parametrize("case", list(BOUNDS))
def test_values_past_their_bounds_are_refused(case, tmp_path, capsys):
    mutate, field, form = BOUNDS[case]
    data = copy.deepcopy(VALID)
    mutate(data)
    line = _validate_exit(_write(tmp_path, data), capsys, tmp_path)
    assert f": {field}: " in line and form in line, line


def test_env_options_of_the_lazy_adapters_are_typed(tmp_path, capsys):
    """pybullet and mario envs take ``**options`` at the registry; their classes are checked."""
    data = copy.deepcopy(VALID)
    data["tasks"]["corridor"] = {"env": "hopper", "options": {"action_repeat": "2"}}
    data["tasks"]["slippery"] = {"env": "mario", "options": {"levels": "1-1"}}
    line = _validate_exit(_write(tmp_path, data), capsys, tmp_path)
    assert "tasks.corridor.options: " in line and "'action_repeat' expects int" in line, line


def test_typed_env_options_accept_what_yaml_writes():
    from benchmarks.checks import check_env

    check_env("point", {"goal": [0.5, 1], "speed": 1, "image": False, "pad_obs": None})
    check_env("mario", {"levels": ["1-1", "1-2"], "clip": None, "sticky": 0})
    check_env("hopper", {"obs": "proprio", "max_steps": 1000})
    with pytest.raises(TypeError, match="'levels' expects"):
        check_env("mario", {"levels": [1, 2]})


@pytest.mark.parametrize("env_id", ["corridor", "simple_maze", "point", "hopper", "mario"])
def test_every_env_option_has_a_declared_type(env_id):
    from benchmarks.checks import PAD_TYPES, _env_types
    from lightning_wm.envs import ENV_OPTIONS, PAD_OPTIONS

    assert set(PAD_TYPES) == set(PAD_OPTIONS)
    assert ENV_OPTIONS[env_id] <= set(_env_types(env_id))


def test_budget_bound_is_the_training_configs():
    from benchmarks.checks import MAX_ENV_STEPS
    from lightning_wm.pipeline.config import MAX_STEPS

    assert MAX_ENV_STEPS == MAX_STEPS
