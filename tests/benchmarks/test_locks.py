"""One writer per run: a second ``run`` on the same output skips what another live process
holds (and its dependents, writing no record for them); a lock left by a dead process does not
block; two concurrent ``run``s train every run exactly once."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import locks
from benchmarks.cli import main
from benchmarks.graph import expand
from benchmarks.results import load_results
from benchmarks.runner import run_dir
from benchmarks.suite import load_suite

REPO = Path(__file__).resolve().parents[2]
SELECT = ["--seeds", "0"]  # one source and its three targets


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_names_its_holder_and_is_removed_on_release(tmp_path):
    lock = locks.acquire(tmp_path / "run")
    with pytest.raises(locks.Held, match=f"held by pid {os.getpid()} on {socket.gethostname()}"):
        locks.acquire(tmp_path / "run")
    lock.release()
    assert not (tmp_path / "run" / locks.LOCK).exists()
    locks.acquire(tmp_path / "run").release()


def test_a_stale_lock_from_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / locks.LOCK).write_text(f"{_dead_pid()} {socket.gethostname()}\n")
    lock = locks.acquire(tmp_path / "run")
    assert (tmp_path / "run" / locks.LOCK).read_text().split()[0] == str(os.getpid())
    lock.release()


def test_a_held_run_and_its_dependents_are_skipped_without_records(tmp_path, capsys):
    specs = expand(load_suite("fake_transfer"), "smoke", seeds=[0])
    (source,) = [s for s in specs if s.kind == "source"]
    dependents = {s.run_id for s in specs if source.run_id in s.deps}
    held = locks.acquire(run_dir(tmp_path, source))  # "another process" holds the source
    try:
        code = main(["run", "fake_transfer", "--profile", "smoke", "--out", str(tmp_path),
                     "--no-report", *SELECT])
    finally:
        held.release()
    out = capsys.readouterr().out
    assert code == 0
    assert f"{source.run_id}: held by pid {os.getpid()} on {socket.gethostname()}, skipped" in out
    assert all(f"[skipped]  {rid}: depends on {source.run_id}" in out for rid in dependents)
    assert f"1 completed, 0 failed or blocked, {1 + len(dependents)} skipped" in out
    recorded = {r.record.run_id: r.record.status for r in load_results(tmp_path)}
    assert list(recorded.values()) == ["completed"]  # the scratch baseline, nothing else
    assert not set(recorded) & (dependents | {source.run_id})


def test_two_concurrent_runs_train_each_run_once(tmp_path):
    # two independent runs: the cheapest selection where both processes find work
    cmd = [sys.executable, "-m", "benchmarks", "run", "fake_transfer", "--profile", "smoke",
           "--out", str(tmp_path), "--no-report", "--seeds", "0,1", "--methods", "scratch",
           "--workers", "1"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = load_results(tmp_path)
    assert len(results) == 2 and all(r.record.status == "completed" for r in results)
    for r in results:  # one Lightning log version per run: nobody trained a run twice
        assert len(list((r.path / "logs").iterdir())) == 1, r.path
        assert not (r.path / locks.LOCK).exists()
