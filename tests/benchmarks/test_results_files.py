"""Result files on disk: record/curve round trips, corrupt files named, atomic writes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks import results
from benchmarks.cli import EXIT_INPUT, EXIT_OK, main
from benchmarks.results import (CURVE, RECORD, Provenance, ResultError, RunRecord, SourceUse,
                                atomic_write_text, load_results, read_curve, read_record,
                                write_curve, write_record)
from benchmarks.validate import validate_results

STEPS = [0, 100, 200, 300]
RETURNS = [0.0, 0.25, 0.5, 0.94]


def _record(run_id="tgt-slippery-finetune-s0-abcdef12", **kw) -> RunRecord:
    base = dict(
        run_id=run_id, suite="fake_transfer", profile="smoke", kind="target", task="slippery",
        tasks=["slippery"], method="finetune", seed=0, source_seed=None,
        baseline_run_id="tgt-slippery-scratch-s0-12345678", status="completed", budget=400,
        env_steps=400, updates=70, wall_time_s=3.5, diagnostics={"grad_norm": 0.5},
        provenance=Provenance(
            config_hash="f" * 64, git_commit="deadbeef", packages={"torch": "2.3.0"},
            python="3.11.7", platform="linux", started_at="2024-01-01T00:00:00",
            sources=[SourceUse(slot="base", run_id="src-base-s0-e6cbdac2", checkpoint_sha256="a" * 64,
                               env_steps=600, wall_time_s=4.0)]))
    return RunRecord(**{**base, **kw})


def _run(root: Path, run_id: str, curve=True, **kw) -> Path:
    run_dir = root / "fake_transfer" / "smoke" / "runs" / run_id
    write_record(run_dir, _record(run_id, **kw))
    if curve:
        write_curve(run_dir, STEPS, RETURNS)
    return run_dir


def _dir_listing(path: Path) -> list[str]:
    return sorted(os.listdir(path))  # os.listdir shows dotfiles, e.g. '.record.json.XXXX.tmp'


# -- records --------------------------------------------------------------------------------------
def test_record_round_trip(tmp_path):
    rec = _record()
    write_record(tmp_path / "run", rec)
    path = tmp_path / "run" / RECORD
    back = read_record(path)
    assert back == rec
    assert back.provenance.sources[0].checkpoint_sha256 == "a" * 64
    assert back.throughput == pytest.approx(400 / 3.5)
    assert json.loads(path.read_text())["schema_version"] == results.SCHEMA_VERSION
    assert _dir_listing(tmp_path / "run") == [RECORD]


def test_record_overwrite_replaces_content(tmp_path):
    write_record(tmp_path, _record(status="running", env_steps=100))
    write_record(tmp_path, _record(status="completed", env_steps=400))
    assert read_record(tmp_path / RECORD).env_steps == 400
    assert _dir_listing(tmp_path) == [RECORD]


def test_truncated_record_names_the_file(tmp_path, capsys):
    write_record(tmp_path, _record())
    path = tmp_path / RECORD
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ResultError) as info:
        read_record(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "truncated" in str(info.value)

    assert main(["validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage", b"[1, 2"],
                         ids=["empty", "not-utf8", "cut-list"])
def test_unreadable_record_bytes(content, tmp_path):
    path = tmp_path / RECORD
    path.write_bytes(content)
    with pytest.raises(ResultError, match="corrupt or truncated") as info:
        read_record(path)
    assert str(path) in str(info.value)


def test_missing_record_names_the_file(tmp_path):
    with pytest.raises(ResultError, match="missing") as info:
        read_record(tmp_path / RECORD)
    assert str(tmp_path / RECORD) in str(info.value)


@pytest.mark.parametrize("field, value, where", [
    ("seed", "zero", "seed"),
    ("budget", [400], "budget"),
    ("status", "done", "status"),
    ("kind", "sauce", "kind"),
    ("provenance.config_hash", 7, "provenance.config_hash"),
    ("provenance.sources.0.env_steps", "many", "provenance.sources.0.env_steps"),
    ("extra_field", 1, "extra_field"),
    ("run_id", None, "run_id"),
])
def test_record_with_bad_field_names_it(field, value, where, tmp_path):
    write_record(tmp_path, _record())
    path = tmp_path / RECORD
    data = json.loads(path.read_text())
    *parents, last = [int(k) if k.isdigit() else k for k in field.split(".")]
    node = data
    for k in parents:
        node = node[k]
    node[last] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError) as info:
        read_record(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and f"field '{where}'" in msg, msg


def test_record_missing_required_field_names_it(tmp_path):
    write_record(tmp_path, _record())
    path = tmp_path / RECORD
    data = json.loads(path.read_text())
    del data["provenance"]
    path.write_text(json.dumps(data))
    with pytest.raises(ResultError, match="field 'provenance'"):
        read_record(path)


def test_record_json_not_an_object(tmp_path):
    path = tmp_path / RECORD
    path.write_text("[1, 2, 3]")
    with pytest.raises(ResultError) as info:
        read_record(path)
    assert str(info.value).startswith(f"{path}: ")


# -- curves ---------------------------------------------------------------------------------------
def test_curve_round_trip(tmp_path):
    write_curve(tmp_path, np.array(STEPS), np.array(RETURNS, dtype=np.float32))
    curve = read_curve(tmp_path / CURVE)
    assert curve.steps.dtype == np.int64 and curve.returns.dtype == np.float64
    np.testing.assert_array_equal(curve.steps, STEPS)
    np.testing.assert_allclose(curve.returns, RETURNS, rtol=1e-6)
    assert (tmp_path / CURVE).read_text().splitlines()[0] == "env_steps,return"
    assert _dir_listing(tmp_path) == [CURVE]


def test_curve_float_returns_survive_exactly(tmp_path):
    returns = [0.1, 1 / 3, -2.5e-7, 123456.789]
    write_curve(tmp_path, [1, 2, 3, 4], returns)
    assert read_curve(tmp_path / CURVE).returns.tolist() == returns


@pytest.mark.parametrize("text, problem", [
    ("step,ret\n0,0.1\n", "expected header 'env_steps,return'"),
    ("0,0.1\n100,0.2\n", "expected header 'env_steps,return'"),
    ("", "expected header 'env_steps,return'"),
    ("env_steps,return\n", "no rows"),
    ("env_steps,return\n0,0.1\n200,0.2\n100,0.3\n", "not ascending"),
    ("env_steps,return\n0,0.1\n100\n", "malformed row"),
    ("env_steps,return\n0,0.1\nabc,0.2\n", "malformed row"),
    ("env_steps,return\n0,0.1\n100,high\n", "malformed row"),
], ids=["bad-header", "no-header", "empty", "no-rows", "descending", "short-row", "bad-step",
        "bad-return"])
def test_bad_curve_names_the_file(text, problem, tmp_path, capsys):
    path = tmp_path / CURVE
    path.write_text(text)
    with pytest.raises(ResultError) as info:
        read_curve(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and problem in msg, msg
    assert main(["validate", str(path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err


def test_missing_curve_names_the_file(tmp_path):
    with pytest.raises(ResultError, match="missing") as info:
        read_curve(tmp_path / CURVE)
    assert str(tmp_path / CURVE) in str(info.value)


def test_valid_files_validate(tmp_path, capsys):
    run_dir = _run(tmp_path, "r1")
    assert main(["validate", str(run_dir / RECORD)]) == EXIT_OK
    assert main(["validate", str(run_dir / CURVE)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "valid record" in out and "valid curve" in out


# -- results directories --------------------------------------------------------------------------
def test_validate_results_lists_exactly_the_bad_files(tmp_path):
    _run(tmp_path, "good")
    _run(tmp_path, "failed-run-needs-no-curve", curve=False, status="failed", error="boom")
    trunc = _run(tmp_path, "truncated-record") / RECORD
    trunc.write_text(trunc.read_text()[:40])
    bad_field = _run(tmp_path, "bad-field") / RECORD
    data = json.loads(bad_field.read_text())
    data["env_steps"] = "lots"
    bad_field.write_text(json.dumps(data))
    bad_curve = _run(tmp_path, "bad-curve") / CURVE
    bad_curve.write_text("env_steps,return\n")
    no_curve = _run(tmp_path, "completed-without-curve", curve=False) / CURVE

    problems = validate_results(tmp_path)
    assert len(problems) == 4
    named = {next(p for p in (trunc, bad_field, bad_curve, no_curve) if str(p) in line)
             for line in problems}
    assert named == {trunc, bad_field, bad_curve, no_curve}
    assert not any("good" in line or "failed-run" in line for line in problems)
    assert any("field 'env_steps'" in line for line in problems)

    with pytest.raises(ResultError):
        load_results(tmp_path)


def test_validate_results_clean_dir(tmp_path, capsys):
    _run(tmp_path, "a")
    _run(tmp_path, "b")
    assert validate_results(tmp_path) == []
    assert len(load_results(tmp_path)) == 2
    assert main(["validate", str(tmp_path)]) == EXIT_OK
    assert "2 runs, all valid" in capsys.readouterr().out


def test_cli_validate_dir_with_one_bad_record(tmp_path, capsys):
    _run(tmp_path, "good")
    bad = _run(tmp_path, "bad") / RECORD
    bad.write_text(bad.read_text()[:-20])
    assert main(["validate", str(tmp_path)]) == EXIT_INPUT
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{bad}: "), err
    assert "all valid" not in out


def test_load_results_missing_dir(tmp_path):
    with pytest.raises(ResultError, match="no such results directory"):
        load_results(tmp_path / "nope")


# -- atomic writes --------------------------------------------------------------------------------
def _boom(*args, **kwargs):
    raise OSError("disk on fire")


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_failed_record_write_keeps_old_content_and_no_temp(step, tmp_path, monkeypatch):
    old = _record(status="running", env_steps=100)
    write_record(tmp_path, old)
    before = (tmp_path / RECORD).read_bytes()
    monkeypatch.setattr(results.os, step, _boom)
    with pytest.raises(OSError, match="disk on fire"):
        write_record(tmp_path, _record(status="completed", env_steps=400))
    monkeypatch.undo()
    assert (tmp_path / RECORD).read_bytes() == before
    assert read_record(tmp_path / RECORD) == old
    assert _dir_listing(tmp_path) == [RECORD]


def test_failed_serialisation_keeps_old_curve(tmp_path, monkeypatch):
    write_curve(tmp_path, STEPS, RETURNS)
    before = (tmp_path / CURVE).read_bytes()
    real = results.os.fdopen

    # the file object writes half the text, then the process is interrupted (a BaseException)

    class _Half:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise KeyboardInterrupt

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(results.os, "fdopen", lambda *a, **k: _Half(real(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        write_curve(tmp_path, [0, 1, 2], [9.0, 9.0, 9.0])
    monkeypatch.undo()
    assert (tmp_path / CURVE).read_bytes() == before
    assert _dir_listing(tmp_path) == [CURVE]


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(results.os, "replace", _boom)
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "sub" / "x.json", "{}")
    monkeypatch.undo()
    assert _dir_listing(tmp_path / "sub") == []


def test_written_files_are_not_private(tmp_path):
    """mkstemp creates 0600 files; results are chmod-ed to the umask default instead."""
    write_record(tmp_path, _record())
    mode = (tmp_path / RECORD).stat().st_mode & 0o777
    assert mode == 0o666 & ~results._UMASK
