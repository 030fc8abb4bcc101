"""SIGINT and SIGTERM stop a suite at a safe point: the run is recorded ``interrupted``, the
process exits 130 / 143 with one line saying how to resume, and the rerun resumes the run to
the curve an uninterrupted run gives (the committed smoke results, byte for byte)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.results import read_record
from lightning_wm.artifacts import RECORD

REPO = Path(__file__).resolve().parents[2]
SMOKE = ("fake_transfer", "smoke")
# the cheapest selection: scratch runs need no source
ONE_RUN = ["--seeds", "0", "--methods", "scratch"]


def _args(out: Path, *extra: str) -> list[str]:
    # subprocesses too: not the free cores, which vary with the machine's load
    workers = [] if "--workers" in extra else ["--workers", "1"]
    return ["run", *SMOKE[:1], "--profile", SMOKE[1], "--out", str(out), "--no-report",
            *workers, *extra]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks", *_args(out, *extra)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _when_resumable(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Wait until a run has a phase-boundary checkpoint to resume from."""
    runs = out.joinpath(*SMOKE, "runs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if list(runs.glob("*/checkpoints/last.ckpt")):
            return
        time.sleep(0.02)
    raise AssertionError("the run finished (or hung) before it could be interrupted")


def _finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _statuses(out: Path) -> list[str]:
    return sorted(read_record(p).status for p in out.joinpath(*SMOKE, "runs").glob(f"*/{RECORD}"))


def _one_resume_line(err: str, out: Path, *extra: str) -> None:
    lines = [line for line in err.splitlines() if "resume with" in line]
    assert len(lines) == 1, err
    assert lines[0].endswith(" ".join(["python -m benchmarks", *_args(out, *extra)]))
    assert "Traceback" not in err


@pytest.mark.parametrize("sig, code, group", [(signal.SIGTERM, 143, False),
                                              (signal.SIGINT, 130, True)])
def test_signal_records_interrupted_and_rerun_resumes_identically(tmp_path, reproduces, sig, code,
                                                                  group):
    proc = _start(tmp_path, *ONE_RUN)
    try:
        _when_resumable(proc, tmp_path)
        # a scheduler's SIGTERM goes to the process; a terminal's Ctrl-C to the whole group
        os.killpg(proc.pid, sig) if group else os.kill(proc.pid, sig)
    finally:
        out, err = _finish(proc)
    assert proc.returncode == code, err
    _one_resume_line(err, tmp_path, *ONE_RUN)
    (record,) = [read_record(p) for p in tmp_path.joinpath(*SMOKE, "runs").glob(f"*/{RECORD}")]
    assert record.status == "interrupted" and signal.Signals(sig).name in record.error
    assert main(_args(tmp_path, *ONE_RUN)) == 0
    assert _statuses(tmp_path) == ["completed"]
    assert read_record(next(tmp_path.joinpath(*SMOKE, "runs").glob(f"*/{RECORD}"))) \
        .provenance.resumed_from_step > 0
    reproduces(tmp_path.joinpath(*SMOKE))  # the resumed curve is the uninterrupted one


def test_sigint_at_start_up_exits_130_without_traceback(tmp_path):
    proc = _start(tmp_path, *ONE_RUN)
    try:
        proc.stdout.readline()  # the suite is loaded; the run is still importing its libraries
        os.killpg(proc.pid, signal.SIGINT)
    finally:
        out, err = _finish(proc)
    assert proc.returncode == 130, err
    _one_resume_line(err, tmp_path, *ONE_RUN)
    runs = tmp_path.joinpath(*SMOKE, "runs")
    assert not runs.exists() or "running" not in _statuses(tmp_path)  # nothing left half-done


def test_sigterm_to_the_parent_reaches_the_pool(tmp_path):
    extra = ["--seeds", "0,1", "--methods", "scratch", "--workers", "2"]
    proc = _start(tmp_path, *extra)
    try:
        _when_resumable(proc, tmp_path)
        os.kill(proc.pid, signal.SIGTERM)  # the parent only: it forwards to its workers
    finally:
        out, err = _finish(proc)
    assert proc.returncode == 143, err
    _one_resume_line(err, tmp_path, *extra)
    # a worker still starting records nothing; none is left completed or running
    assert set(_statuses(tmp_path)) == {"interrupted"}
