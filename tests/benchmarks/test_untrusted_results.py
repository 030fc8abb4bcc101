"""Results directories come from other people's machines: `report`, `validate` and `regress` read
them as untrusted input. Every bad file ends as exit 2 with one line naming it, nothing is written
outside the output folder and nothing in a file is executed."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks import diagnostics_report as D, results
from benchmarks.cli import EXIT_INPUT, EXIT_OK, main
from benchmarks.regress import main_regress
from benchmarks.results import (CURVE, RECORD, TASK_CURVES, Provenance, ResultError, RunRecord,
                                write_curve, write_record, write_task_curves)
from lightning_wm.artifacts import EMBEDDING, RECONSTRUCTION

STEPS = [0, 100, 200, 300]


def _save(root: Path, run_id: str, status="completed", **kw) -> Path:
    base = dict(run_id=run_id, suite="fake_transfer", profile="smoke", kind="target",
                task="slippery", tasks=["slippery"], method="scratch", seed=0, status=status,
                budget=300, env_steps=300, wall_time_s=3.0,
                provenance=Provenance(config_hash="h", git_commit="c", packages={},
                                      python="3.11", platform="x"))
    record = RunRecord(**{**base, **kw})
    run_dir = root / record.suite / record.profile / "runs" / run_id
    write_record(run_dir, record)
    if status == "completed":
        write_curve(run_dir, STEPS, [0.0, 0.2, 0.4, 0.6])
    return run_dir


def _edit(run_dir: Path, **fields) -> Path:
    """Set record fields as raw JSON, past the schema a writer would enforce."""
    path = run_dir / RECORD
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))
    return path


def _tree(top: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file below ``top`` (outside ``skip``) with its size and mtime."""
    out = {}
    for dirpath, _, files in os.walk(top):
        if skip is not None and Path(dirpath).is_relative_to(skip):
            continue
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            out[os.path.join(dirpath, f)] = (st.st_size, st.st_mtime_ns)
    return out


def _exit(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse refusing an option is exit 2 as well
        return e.code


def _refused(capsys, argv: list[str], *named: object) -> str:
    """Exit 2 with one error line naming ``named`` (argparse adds its usage lines before it)."""
    capsys.readouterr()
    assert _exit(argv) == EXIT_INPUT
    out, err = capsys.readouterr()
    lines = [line for line in (err + out).splitlines()
             if line.strip() and not line.startswith(("usage:", " "))]
    assert len(lines) == 1 and "Traceback" not in err, err
    for thing in named:
        assert str(thing) in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def root(tmp_path):
    data = tmp_path / "data"
    _save(data, "tgt-slippery-scratch-s0-aa", is_baseline=True)
    _save(data, "tgt-slippery-scratch-s1-bb", seed=1, is_baseline=True)
    return data


# -- names in records -----------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("method", "../../escaped"), ("task", "../escaped"), ("suite", "../../x"),
    ("profile", "a/b"), ("run_id", "../../r"), ("tasks", ["../t"]), ("method", "/abs"),
    ("baseline_run_id", "..")])
def test_path_in_a_name_is_refused_and_writes_nothing(field, value, root, tmp_path, capsys):
    bad = _edit(root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s1-bb", **{field: value})
    out = tmp_path / "out"
    before = _tree(tmp_path)
    line = _refused(capsys, ["report", str(root), "--out", str(out)], bad, f"field '{field}")
    assert "valid" in line
    assert _tree(tmp_path) == before and not out.exists()
    _refused(capsys, ["validate", str(bad)], bad)


def test_a_link_out_of_the_output_folder_is_not_followed(root, tmp_path, capsys):
    outside = tmp_path / "outside.md"
    outside.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "leaderboard.md").symlink_to(outside)
    _refused(capsys, ["report", str(root), "--out", str(out)], "leaderboard.md")
    assert outside.read_text() == "keep me"


def test_long_names_make_bounded_file_names(tmp_path):
    from benchmarks.plots import MAX_FILENAME, figure_filename
    a, b = figure_filename("embedding", *["x" * 64] * 4), figure_filename("embedding", "y" * 300)
    assert len(a) <= MAX_FILENAME and len(b) <= MAX_FILENAME and a != b
    assert figure_filename("curves", "s", "p", "t") == "curves_s_p_t.png"


# -- suites are named, never a path ---------------------------------------------------------------
def test_a_suite_name_that_is_a_yaml_file_is_not_read(root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("secret.yaml").write_text("api_token: hunter2\n")
    for run in (root / "fake_transfer/smoke/runs").iterdir():
        _edit(run, suite="secret.yaml")
    # the run folders stay where they are: a record's names need not match its folder
    assert _exit(["report", str(root), "--out", str(tmp_path / "out")]) == EXIT_OK
    out, err = capsys.readouterr()
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "not a registered suite" in text
    assert "hunter2" not in text + out + err and "api_token" not in text + out + err


# -- files that are not what they claim -----------------------------------------------------------
def _record_dir(run: Path) -> Path:
    (run / RECORD).unlink()
    (run / RECORD).mkdir()
    return run / RECORD


def _record_fifo(run: Path) -> Path:
    (run / RECORD).unlink()
    os.mkfifo(run / RECORD)
    return run / RECORD


def _record_huge(run: Path) -> Path:
    text = (run / RECORD).read_text()
    (run / RECORD).write_text(text[:-2] + " " * results.RECORD_MAX_BYTES + "}\n")
    return run / RECORD


def _record_bytes(content: bytes):
    def make(run: Path) -> Path:
        (run / RECORD).write_bytes(content)
        return run / RECORD
    return make


@pytest.mark.parametrize("make, problem", [
    (_record_dir, "not a regular file"), (_record_fifo, "not a regular file"),
    (_record_huge, "larger than"), (_record_bytes(b"{\"run_id\": \"\xff\"}"), "UTF-8"),
    (_record_bytes(b"[" * 100_000), "JSON"),
    (_record_bytes(b"{\"budget\": NaN}"), "non-finite"),
    (_record_bytes(b"{\"budget\": 1e999}"), "non-finite"),
], ids=["directory", "fifo", "huge", "not-utf8", "deep", "nan", "inf"])
def test_unreadable_record_is_exit_2(make, problem, root, capsys):
    bad = make(root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa")
    assert problem in _refused(capsys, ["validate", str(root)], bad)
    assert problem in _refused(capsys, ["report", str(root)], bad)
    assert not (root / "leaderboard.md").exists()


@pytest.mark.parametrize("row, problem", [
    ("300,nan", "finite"), ("300,inf", "finite"), ("300,-inf", "finite"),
    ("-5,0.1", "negative"), ("50,0.1", "not ascending"), (f"{10**30},0.1", "malformed"),
])
def test_curve_with_bad_numbers_is_exit_2(row, problem, root, capsys):
    run = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa"
    path = run / CURVE
    path.write_text(("env_steps,return\n-10,0.0\n" if row.startswith("-5") else
                     "env_steps,return\n0,0.0\n100,0.1\n") + row + "\n")
    assert problem in _refused(capsys, ["validate", str(path)], path)
    assert problem in _refused(capsys, ["validate", str(root)], path)


def test_task_curves_with_nan_are_exit_2(root, capsys):
    run = _save(root, "src-pre-s0-cc", kind="source", task="a+b", tasks=["a", "b"], method="pre")
    write_task_curves(run, ["a", "b"], STEPS, [[0, 0]] * 4)
    assert _exit(["validate", str(root)]) == EXIT_OK
    (run / TASK_CURVES).write_text("env_steps,a,b\n0,0.0,nan\n")
    _refused(capsys, ["validate", str(root)], run / TASK_CURVES, "finite")


# -- figure arrays --------------------------------------------------------------------------------
class _Payload:
    """Unpickling this would create a folder: the proof that a loader executed file content."""
    marker = ""

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_npz_with_an_object_array_loads_nothing(root, tmp_path, capsys):
    run = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa"
    _Payload.marker = str(tmp_path / "executed")
    np.savez(run / EMBEDDING, base=np.array([_Payload()], dtype=object),
             transferred=np.zeros((1, 2), np.float32))
    with pytest.raises(ResultError, match=str(run / EMBEDDING)):
        D.read_embedding(run / EMBEDDING)
    _refused(capsys, ["report", str(root), "--out", str(tmp_path / "out")], run / EMBEDDING)
    _refused(capsys, ["validate", str(root)], run / EMBEDDING)
    assert not (tmp_path / "executed").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, arrays, problem", [
    (EMBEDDING, {"base": np.zeros((3, 2), np.float32)}, "missing"),
    (EMBEDDING, {"base": np.zeros((3, 2)), "transferred": np.zeros((4, 2))}, "same"),
    (EMBEDDING, {"base": np.zeros((3, 2)), "transferred": np.zeros(3)}, "2-d"),
    (EMBEDDING, {"base": np.full((3, 2), np.nan), "transferred": np.zeros((3, 2))}, "finite"),
    (EMBEDDING, {"base": np.zeros((3, 2)), "transferred": np.zeros((3, 2)),
                 "next_index": np.array([[1], [2], [9]])}, "indices"),
    (RECONSTRUCTION, {k: np.zeros((2, 1, 4, 4), np.uint8) for k in ("observed", "start")},
     "missing"),
    (RECONSTRUCTION, {k: np.zeros((2, 2, 4, 4), np.uint8) for k in ("observed", "start", "end")},
     "channels"),
    (RECONSTRUCTION, {"observed": np.zeros((2, 1, 4, 4), np.uint8),
                      "start": np.zeros((2, 1, 4, 4), np.uint8),
                      "end": np.zeros((2, 1, 4, 4), np.float32)}, "dtype"),
])
def test_npz_with_unexpected_arrays_is_exit_2(name, arrays, problem, root, capsys):
    path = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa" / name
    np.savez(path, **arrays)
    assert problem in _refused(capsys, ["validate", str(root)], path)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_npz_that_is_not_an_archive_is_exit_2(content, root, capsys):
    path = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa" / RECONSTRUCTION
    path.write_bytes(content)
    _refused(capsys, ["validate", str(root)], path)


def test_npz_that_unpacks_past_the_bound_is_refused(root, monkeypatch):
    path = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa" / EMBEDDING
    np.savez_compressed(path, base=np.zeros((5000, 2)), transferred=np.zeros((5000, 2)))
    monkeypatch.setattr(D, "ARRAYS_MAX_BYTES", path.stat().st_size * 2)  # compresses ~100x
    with pytest.raises(ResultError, match="unpack to more than"):
        D.read_embedding(path)


def test_good_figure_arrays_are_drawn(root, tmp_path):
    from benchmarks.report import write_report
    run = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa"
    np.savez(run / EMBEDDING, base=np.zeros((3, 2), np.float32),
             transferred=np.ones((3, 2), np.float32), next_index=np.array([[1], [2], [0]]))
    frames = np.zeros((2, 1, 4, 4), np.uint8)
    np.savez(run / RECONSTRUCTION, observed=frames, start=frames, end=frames)
    names = {p.name for p in write_report(root, tmp_path / "out", reps=50)}
    assert {"embedding_fake_transfer_smoke_slippery_scratch.png",
            "reconstruction_fake_transfer_smoke_slippery_scratch.png"} <= names


# -- empty sets and bad options -------------------------------------------------------------------
def test_report_on_an_empty_folder_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _refused(capsys, ["report", str(tmp_path / "empty")], "no runs under", tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []
    _refused(capsys, ["validate", str(tmp_path / "empty")], "no runs under")


def test_report_out_that_is_a_file_is_exit_2(root, tmp_path, capsys):
    from benchmarks.report import write_report
    (tmp_path / "taken").write_text("x")
    _refused(capsys, ["report", str(root), "--out", str(tmp_path / "taken")], tmp_path / "taken")
    with pytest.raises(ResultError, match="not a folder"):
        write_report(root, tmp_path / "taken")
    assert (tmp_path / "taken").read_text() == "x"


@pytest.mark.parametrize("side", ["--current", "--baseline"])
def test_regress_with_an_empty_side_is_exit_2(side, root, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    other = "--baseline" if side == "--current" else "--current"
    line = _refused(capsys, ["regress", side, str(tmp_path / "empty"), other, str(root)],
                    "no runs under", tmp_path / "empty")
    assert "OK" not in line


@pytest.mark.parametrize("factor", [0.0, -1.0, 0.5, float("nan"), float("inf")])
def test_regress_with_a_bad_speed_factor_is_exit_2(factor, root, capsys):
    _refused(capsys, ["regress", "--current", str(root), "--speed-factor", str(factor)],
             "speed-factor")
    out = io.StringIO()
    assert main_regress(None, root, factor, out) == EXIT_INPUT
    assert out.getvalue().count("\n") == 1 and "speed-factor" in out.getvalue()


# -- interrupted runs and the model digest --------------------------------------------------------
def test_interrupted_runs_are_pending_not_failed(root, tmp_path, capsys):
    from benchmarks.report import write_report
    _save(root, "tgt-slippery-scratch-s2-dd", status="interrupted", seed=2, is_baseline=True)
    assert _exit(["validate", str(root)]) == EXIT_OK
    write_report(root, tmp_path / "out", reps=50)
    cell = json.loads((tmp_path / "out/leaderboard.json").read_text())["reports"][0]["cells"][0]
    assert (cell["n_seeds"], cell["n_failed"], cell["n_pending"]) == (2, 0, 1)
    text = (tmp_path / "out/leaderboard.md").read_text()
    assert "| failed/blocked | interrupted/running |" in text and "| 0 | 1 |" in text

    base, cur = tmp_path / "base", tmp_path / "cur"
    for seed in range(3):
        # finetune: not the suite's scratch baseline, so its learning gate does not apply
        _save(base, f"r{seed}", seed=seed, method="finetune")
        _save(cur, f"r{seed}", seed=seed, method="finetune",
              status="interrupted" if seed == 2 else "completed")
    capsys.readouterr()
    assert main(["regress", "--baseline", str(base), "--current", str(cur)]) == EXIT_OK
    assert "pending: interrupted (seeds [2]" in capsys.readouterr().out


def test_model_digest_is_optional_but_checked(root, capsys):
    run = root / "fake_transfer/smoke/runs/tgt-slippery-scratch-s0-aa"
    data = json.loads((run / RECORD).read_text())
    assert "model_sha256" in data  # written as null by this version; older records lack it
    del data["model_sha256"]
    (run / RECORD).write_text(json.dumps(data))
    assert _exit(["validate", str(root)]) == EXIT_OK
    bad = _edit(run, model_sha256="not-a-digest")
    _refused(capsys, ["validate", str(root)], bad, "model_sha256")
    _edit(run, model_sha256="ab" * 32)
    assert _exit(["validate", str(root)]) == EXIT_OK


# -- atomic report files --------------------------------------------------------------------------
def test_report_files_are_written_atomically(root, tmp_path, monkeypatch):
    from benchmarks.report import write_report
    out = tmp_path / "out"
    write_report(root, out, reps=50)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    synced = []
    real = results.os.fsync
    monkeypatch.setattr(results.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(results.os, "replace", full)
    with pytest.raises(ResultError, match="cannot write the report"):
        write_report(root, out, reps=50)
    monkeypatch.undo()
    assert synced  # file contents are flushed to disk before the rename
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp file, no half file
    dirs = []
    monkeypatch.setattr(results, "fsync_dir", dirs.append)
    write_report(root, out, reps=50)
    assert set(dirs) == {out}  # every rename made durable
