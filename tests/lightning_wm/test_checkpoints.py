"""Checkpoints are data: sidecars, weights-only loads, signed env state, recovery from bad files."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import threading
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from lightning_wm import checkpoints, fileio, signing
from lightning_wm.agents import make_agent
from lightning_wm.checkpoints import CheckpointError, previous_path, sidecar_path
from lightning_wm.data.collector import Collector
from lightning_wm.data.replay import EpisodeReplay
from lightning_wm.envs import make_env
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.testing import CrashAfter
from lightning_wm.training import LAST, MODEL, train
from lightning_wm.transfer import LoadComponents, load_source

CFG = TrainingConfig(collect_every=50, updates_per_collect=20, prefill=100, batch_size=32,
                     eval_every=200, eval_episodes=3, checkpoint_every=200)
BUDGET = 600


class Payload:
    """Unpickling this creates ``marker``: what a hostile checkpoint would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def corridor(task):
    return make_env("corridor", {"length": 8, "slip": 0.1})


def _run(run_dir, callbacks=(), lines=None):
    L.seed_everything(0, verbose=False)
    agent = make_agent("tiny_q", (8,), 2, True, {"eps_steps": 400})
    report = None if lines is None else lines.append
    return train(agent, corridor, [0], 2, budget=BUDGET, seed=0, config=CFG, run_dir=run_dir,
                 callbacks=callbacks, report=report)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, and one killed at 450 env steps (last.ckpt at 400, prev at 200)."""
    root = tmp_path_factory.mktemp("runs")
    full = _run(root / "full")
    crash = CrashAfter(450, root / "cut" / "checkpoints" / LAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(root / "cut", callbacks=[crash])
    return full, root / "cut"


def _copy_cut(runs, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(runs[1], run_dir)
    return run_dir


def _save(path: Path, obj) -> str:
    torch.save(obj, path)
    return checkpoints.seal(path)


# -- sidecars ------------------------------------------------------------------------------------
def test_save_writes_a_sidecar_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "last.ckpt"
    first = checkpoints.save(path, lambda tmp: tmp.write_bytes(b"first"), keep_previous=True)
    second = checkpoints.save(path, lambda tmp: tmp.write_bytes(b"second!"), keep_previous=True)
    assert second == hashlib.sha256(b"second!").hexdigest() == fileio.sha256_file(path)
    assert json.loads(sidecar_path(path).read_text()) == {
        "file": "last.ckpt", "sha256": second, "bytes": 7}
    prev = previous_path(path)
    assert prev.name == "last.prev.ckpt" and prev.read_bytes() == b"first"
    assert checkpoints.verify(prev) == first and checkpoints.verify(path) == second
    assert json.loads(sidecar_path(prev).read_text())["file"] == "last.prev.ckpt"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("damage, why", [
    (lambda p: sidecar_path(p).unlink(), "no sidecar"),
    (lambda p: p.write_bytes(b"x" * 5), "sha256 differs"),
    (lambda p: p.write_bytes(b"x" * 4), "4 bytes where its sidecar says 5"),
    (lambda p: sidecar_path(p).write_text("{not json"), "sidecar .* is unreadable"),
    (lambda p: p.unlink(), "missing"),
])
def test_verify_names_the_file_and_why(tmp_path, damage, why):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"hello")
    checkpoints.seal(path)
    damage(path)
    with pytest.raises(CheckpointError, match=why) as err:
        checkpoints.verify(path)
    assert str(path) in str(err.value)


def test_every_file_is_synced_before_it_is_renamed_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (
        events.append(("sync", os.readlink(f"/proc/self/fd/{fd}"))), fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (
        events.append(("rename", str(a))), replace(a, b)))
    path = tmp_path / "last.ckpt"
    for content in (b"a", b"b"):
        events.clear()
        checkpoints.save(path, lambda tmp: tmp.write_bytes(content), keep_previous=True)
        renamed = [name for kind, name in events if kind == "rename"]
        for name in renamed:
            if Path(name).name.startswith("."):  # a new file: synced before it is published
                assert events.index(("sync", name)) < events.index(("rename", name))
        assert events[-1] == ("sync", str(tmp_path))  # the renames made durable


def test_a_crash_at_any_instant_loses_at_most_the_newest_checkpoint(tmp_path, monkeypatch):
    """Old fallback P, current A, new B: whichever rename a crash interrupts, the resume point
    is A or B, never P or a mismatched file."""
    replace = os.replace
    for crash_at in range(4):  # publish renames four times over a current file
        folder = tmp_path / str(crash_at)
        folder.mkdir()
        path = folder / "last.ckpt"
        for name in ("P", "A"):
            checkpoints.save(path, lambda tmp: torch.save({"name": name}, tmp), keep_previous=True)
        calls = []

        def crashing(a, b):
            calls.append(a)
            if len(calls) > crash_at:
                raise KeyboardInterrupt("crash")
            replace(a, b)

        monkeypatch.setattr(os, "replace", crashing)
        with pytest.raises(KeyboardInterrupt):
            checkpoints.save(path, lambda tmp: torch.save({"name": "B"}, tmp), keep_previous=True)
        monkeypatch.setattr(os, "replace", replace)
        found = checkpoints.resume_point(path, say=lambda line: None, move_bad=False)
        assert found is not None, crash_at
        assert torch.load(found, weights_only=True)["name"] in ("A", "B"), crash_at


def test_resume_point_moves_a_bad_file_aside_and_falls_back(tmp_path):
    path = tmp_path / "last.ckpt"
    for name in ("A", "B"):
        checkpoints.save(path, lambda tmp: torch.save({"name": name}, tmp), keep_previous=True)
    path.write_bytes(b"garbage")
    lines = []
    assert checkpoints.resume_point(path, lines.append) == previous_path(path)
    assert not path.exists() and (tmp_path / "last.ckpt.bad").read_bytes() == b"garbage"
    assert str(path) in lines[0] and "last.ckpt.bad" in lines[0]
    assert "resuming from" in lines[-1] and str(previous_path(path)) in lines[-1]


# -- hostile pickles -----------------------------------------------------------------------------
def test_source_model_with_a_pickle_payload_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.ckpt"
    _save(path, {"state_dict": {"components.q.w": torch.zeros(1)}, "x": Payload(marker)})
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint") as err:
        load_source(str(path))
    assert str(path) in str(err.value) and not marker.exists()


def test_source_model_must_match_its_sidecar(tmp_path):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"components.q.w": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="no sidecar"):
        load_source(str(path))
    checkpoints.seal(path)
    assert torch.equal(load_source(str(path))["q"]["w"], torch.zeros(1))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    agent = make_agent("tiny_q", (8,), 2, True)
    with pytest.raises(CheckpointError, match="sha256 differs") as err:
        LoadComponents(str(path), ["q"]).apply(agent)
    assert str(path) in str(err.value)


def _collector():
    return Collector(corridor, [0], 2, 2, seed=0)


def test_env_state_is_unpickled_only_with_this_machines_signature(tmp_path, caplog):
    marker = tmp_path / "pwned"
    a = _collector()
    a.collect(None, 7, EpisodeReplay(1000))
    state = a.state_dict()
    evil = pickle.dumps(Payload(marker))
    forged = [evil,                                      # an unsigned pickle (older format)
              {"pickle": evil, "hmac": "0" * 64},        # a made-up signature
              {**state["in_flight"], "pickle": evil}]    # a real signature, other content
    for in_flight in forged:
        b = _collector()
        caplog.clear()
        with caplog.at_level("WARNING"), signing.reading("somewhere/last.ckpt"):
            b.load_state_dict({**state, "in_flight": in_flight})
        assert "somewhere/last.ckpt: env state is not signed with this machine's key" in caplog.text
        assert all(slot.obs is None for slot in b.slots)  # its episodes restart
        assert not marker.exists()
    b = _collector()
    b.load_state_dict(state)  # signed here: the episodes in flight continue
    assert [s.obs is not None for s in b.slots] == [s.obs is not None for s in a.slots]


# -- the secret key ------------------------------------------------------------------------------
def test_secret_key_is_private_stable_and_one_among_racing_processes(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "secret"
    monkeypatch.setenv(signing.ENV_VAR, str(path))
    keys, barrier = [], threading.Barrier(8)

    def race():
        barrier.wait()
        keys.append(signing.secret_key())

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) == signing.KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.secret_key() == keys[0] and path.read_bytes() == keys[0]
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temp file left


# -- training recovers ---------------------------------------------------------------------------
def test_finished_run_records_its_model_digest(runs):
    full, _ = runs
    assert full.model_sha256 == checkpoints.verify(full.model_path)
    folder = full.model_path.parent
    assert sorted(p.name for p in folder.iterdir()) == [MODEL, MODEL + checkpoints.SIDECAR]
    assert torch.load(full.model_path, weights_only=True)["state_dict"]


def test_last_checkpoint_loads_weights_only(runs):
    last = runs[1] / "checkpoints" / LAST
    checkpoints.verify(last)
    assert torch.load(last, weights_only=True)["PipelineDataModule"]["driver"]["phase"] > 0


def test_bit_flip_in_last_resumes_from_the_previous_checkpoint(runs, tmp_path):
    full, _ = runs
    run_dir = _copy_cut(runs, tmp_path)
    last = run_dir / "checkpoints" / LAST
    data = bytearray(last.read_bytes())
    data[len(data) // 3] ^= 0x10
    last.write_bytes(bytes(data))
    lines = []
    resumed = _run(run_dir, lines=lines)
    assert any(str(last) in line and "sha256 differs" in line for line in lines), lines
    assert any("resuming from" in line and "last.prev.ckpt" in line for line in lines), lines
    assert resumed.resumed_from_step == 200
    assert (resumed.steps, resumed.returns) == (full.steps, full.returns)
    assert resumed.model_sha256 == full.model_sha256
    assert (last.parent / "last.ckpt.bad").exists()


def test_forged_env_state_in_last_checkpoint_is_ignored_by_name(runs, tmp_path, caplog):
    run_dir = _copy_cut(runs, tmp_path)
    last = run_dir / "checkpoints" / LAST
    marker = tmp_path / "pwned"
    checkpoint = torch.load(last, weights_only=True)
    collector = checkpoint["PipelineDataModule"]["driver"]["collector"]
    assert set(collector["in_flight"]) == {"pickle", "hmac"}  # signed where it was written
    collector["in_flight"] = {"pickle": pickle.dumps(Payload(marker)), "hmac": "0" * 64}
    _save(last, checkpoint)  # a matching sidecar: integrity is not authenticity
    with caplog.at_level("WARNING", logger="lightning_wm.signing"):
        result = _run(run_dir)
    assert f"{last}: env state is not signed with this machine's key" in caplog.text
    assert not marker.exists()
    assert result.resumed_from_step == 400 and result.env_steps == BUDGET

def _payload_checkpoint(last: Path) -> None:
    # a file whose sidecar matches: the digest is no defence here, the weights-only load is
    _save(last, {"state_dict": {}, "x": Payload(last.parent / "pwned")})


@pytest.mark.parametrize("damage", ["zero_bytes", "truncated", "garbage", "payload"])
def test_unusable_last_checkpoint_restarts_from_scratch(runs, tmp_path, damage):
    full, _ = runs
    run_dir = _copy_cut(runs, tmp_path)
    folder = run_dir / "checkpoints"
    last = folder / LAST
    previous_path(last).unlink()  # no fallback: the run starts again
    if damage == "zero_bytes":
        last.write_bytes(b"")
    elif damage == "truncated":
        last.write_bytes(last.read_bytes()[:1000])
    elif damage == "garbage":
        last.write_bytes(os.urandom(4096))
        sidecar_path(last).unlink()
    else:
        _payload_checkpoint(last)
    lines = []
    result = _run(run_dir, lines=lines)
    assert any(str(last) in line and "moved aside" in line for line in lines), lines
    assert any("restarting from scratch" in line for line in lines), lines
    assert not (folder / "pwned").exists()
    assert result.resumed_from_step == 0
    assert (result.steps, result.returns) == (full.steps, full.returns)
    assert (folder / "last.ckpt.bad").exists()


class ArrayState(L.Callback):
    """A callback this library does not own whose state holds numpy values."""

    def __init__(self) -> None:
        self.loaded = None

    def state_dict(self):
        return {"frames": np.arange(6, dtype=np.int16).reshape(2, 3), "mse": np.float32(0.5)}

    def load_state_dict(self, state):
        self.loaded = state


def test_numpy_state_of_other_callbacks_survives_a_weights_only_resume(tmp_path):
    crash = CrashAfter(250, tmp_path / "checkpoints" / LAST)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path, callbacks=[ArrayState(), crash])
    torch.load(tmp_path / "checkpoints" / LAST, weights_only=True)
    again = ArrayState()
    _run(tmp_path, callbacks=[again])
    frames = again.loaded["frames"]
    assert isinstance(frames, np.ndarray) and frames.dtype == np.int16
    assert np.array_equal(frames, np.arange(6).reshape(2, 3)) and again.loaded["mse"] == 0.5
