"""CLI options are checked by the parser, before a suite is loaded or anything trains: a bad one
exits 2 with a usage line naming the option, and nothing is written under ``--out``."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.cli import build_parser, main

# id -> (arguments after 'run fake_transfer', the option the message names)
BAD_RUN = {
    "workers_zero": (["--workers", "0"], "--workers"),
    "workers_negative": (["--workers", "-3"], "--workers"),
    "workers_huge": (["--workers", "100000"], "--workers"),
    "workers_not_int": (["--workers", "two"], "--workers"),
    "seed_negative": (["--seeds", "0,-1"], "--seeds"),
    "seed_too_large": (["--seeds", str(2 ** 32)], "--seeds"),
    "seed_not_int": (["--seeds", "0,x"], "--seeds"),
    "devices_word": (["--devices", "abc"], "--devices"),
    "devices_zero": (["--devices", "0"], "--devices"),
    "devices_negative": (["--devices", "-1"], "--devices"),
    "accelerator_tpu": (["--accelerator", "tpu"], "--accelerator"),
    "accelerator_bogus": (["--accelerator", "bogus"], "--accelerator"),
    "strategy_bogus": (["--strategy", "bogus"], "--strategy"),
    "strategy_fsdp": (["--strategy", "fsdp"], "--strategy"),
    "gpus_negative": (["--gpus-per-run", "-1"], "--gpus-per-run"),
    "gpus_nan": (["--gpus-per-run", "nan"], "--gpus-per-run"),
    "task_escapes": (["--tasks", "slippery,../../x"], "--tasks"),
    "method_absolute": (["--methods", "/tmp/x"], "--methods"),
    "profile_escapes": (["--profile", "../smoke"], "--profile"),
}


def _usage_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: "), err
    return err.splitlines()[-1]


@pytest.mark.parametrize("case", list(BAD_RUN))
def test_bad_run_option_is_a_usage_error_and_writes_nothing(case, tmp_path, capsys):
    args, option = BAD_RUN[case]
    out_dir = tmp_path / "out"
    line = _usage_error(["run", "fake_transfer", "--out", str(out_dir), *args], capsys)
    assert f"argument {option}: " in line, line
    assert not out_dir.exists()


def test_out_that_is_a_file_is_refused_for_run_and_report(tmp_path, capsys):
    file = tmp_path / "results.txt"
    file.write_text("keep me", encoding="utf-8")
    for argv in (["run", "fake_transfer", "--out", str(file)],
                 ["run", "fake_transfer", "--out", str(file / "below")],
                 ["report", str(tmp_path), "--out", str(file)]):
        line = _usage_error(argv, capsys)
        assert "argument --out: " in line and "not a directory" in line, line
    assert file.read_text(encoding="utf-8") == "keep me"


def test_out_under_a_directory_not_writable_is_refused(tmp_path, capsys, monkeypatch):
    import benchmarks.cli as cli

    denied = tmp_path / "ro"
    denied.mkdir()
    real = cli.os.access
    # root may write anywhere, so the permission check is driven directly
    monkeypatch.setattr(cli.os, "access", lambda p, mode: Path(p) != denied and real(p, mode))
    line = _usage_error(["run", "fake_transfer", "--out", str(denied / "a" / "b")], capsys)
    assert "argument --out: " in line and "not writable" in line, line
    assert not (denied / "a").exists()


@pytest.mark.parametrize("factor", ["0", "-1.5", "0.5", "nan", "inf", "fast"])
def test_regress_speed_factor_must_be_at_least_one_and_finite(factor, tmp_path, capsys):
    line = _usage_error(["regress", "--current", str(tmp_path), "--speed-factor", factor], capsys)
    assert "argument --speed-factor: " in line, line


def test_good_options_parse_to_their_values(tmp_path):
    args = build_parser().parse_args([
        "run", "fake_transfer", "--out", str(tmp_path / "new" / "dir"), "--workers", "4",
        "--seeds", f"0,{2 ** 32 - 1}", "--devices", "auto", "--accelerator", "gpu",
        "--strategy", "ddp", "--tasks", "slippery", "--methods", "scratch,finetune",
        "--profile", "smoke"])
    assert (args.workers, args.seeds, args.devices) == (4, [0, 2 ** 32 - 1], "auto")
    assert (args.accelerator, args.strategy) == ("gpu", "ddp")
    assert args.tasks == ["slippery"] and args.methods == ["scratch", "finetune"]
    assert args.out == tmp_path / "new" / "dir"
    defaults = build_parser().parse_args(["run", "fake_transfer", "--out", str(tmp_path)])
    # no --workers: decided in `run` from the free cores (see test_default_workers)
    assert (defaults.workers, defaults.devices, defaults.strategy) == (None, 1, "auto")
    assert build_parser().parse_args(["regress", "--current", "x"]).speed_factor == 1.5
