"""The runner with swapped-in factories: failures are isolated (also when their record cannot be
written), dependents blocked, NaN caught, a tampered source refused; and a run under DDP on two
CPU processes."""
from __future__ import annotations

import copy
import dataclasses
import errno
import os
from pathlib import Path

import pytest
import torch
import yaml

from benchmarks import runner
from benchmarks.cli import main
from benchmarks.graph import expand
from benchmarks.launchers import run_graph
from benchmarks.launchers.local import LocalLauncher
from benchmarks.runner import ExecOptions, Factories, blocked_record
from benchmarks.suite import load_suite
from benchmarks.results import load_results
from lightning_wm.agents import make_agent
from lightning_wm.agents.tiny_q import TinyQAgent

REPO = Path(__file__).resolve().parents[2]


def _suite(tmp_path: Path, source_config: dict) -> Path:
    data = yaml.safe_load((REPO / "suites/fake_transfer.yaml").read_text())
    data = copy.deepcopy(data)
    data["sources"]["base"]["config"] = source_config
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class NaNAgent(TinyQAgent):
    def loss_terms(self, batch):
        terms = super().loss_terms(batch)
        terms["q/td"] = terms["q/td"] * float("nan")
        return terms


def fake_agent(name, obs_shape, action_dim, discrete, config):
    config = dict(config)
    mode = config.pop("fault", None)
    if mode == "raise":
        raise RuntimeError("agent factory exploded")
    if mode == "nan":
        return NaNAgent(obs_shape[0], action_dim, **config)
    return make_agent(name, obs_shape, action_dim, discrete, config)


def _run(tmp_path, fault):
    suite = load_suite(_suite(tmp_path, {}))
    # the fault reaches fake_agent through the run spec: a suite's agent config is bound to the
    # real agent at validation, which rejects a key tiny_q does not take
    specs = [dataclasses.replace(s, agent_config={**s.agent_config, "fault": fault})
             if s.kind == "source" else s for s in expand(suite, "smoke", seeds=[0])]
    opts = ExecOptions(tmp_path / "out")
    factories = dataclasses.replace(Factories.default(), make_agent=fake_agent)
    launcher = LocalLauncher(opts, 1, factories)
    records = run_graph(specs, launcher, lambda s, why: blocked_record(opts.out_root, s, why))
    return {(r.kind, r.method): r for r in records}


@pytest.mark.parametrize("fault, message", [("raise", "agent factory exploded"),
                                            ("nan", "loss term 'q/td' is nan")])
def test_a_failing_source_blocks_its_targets_only(tmp_path, fault, message):
    records = _run(tmp_path, fault)
    source = records[("source", "base")]
    assert source.status == "failed" and message in source.error
    for method in ("finetune", "fractional"):
        target = records[("target", method)]
        assert target.status == "blocked" and source.run_id in target.error
    assert records[("target", "scratch")].status == "completed"  # the rest of the suite went on
    on_disk = {r.record.run_id: r.record.status for r in load_results(tmp_path / "out")}
    assert sorted(on_disk.values()) == ["blocked", "blocked", "completed", "failed"]


def test_rerun_retries_a_failed_run(tmp_path):
    _run(tmp_path, "raise")
    suite = load_suite(_suite(tmp_path, {}))  # fault fixed: the failed source run is run again
    records = run_graph(expand(suite, "smoke", seeds=[0]), LocalLauncher(ExecOptions(tmp_path / "out")),
                        lambda s, why: blocked_record(tmp_path / "out", s, why))
    assert all(r.status == "completed" for r in records)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    code = main(["run", "fake_transfer", "--profile", "smoke", "--methods", "scratch", "--seeds", "0",
                 "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu",
                 "--out", str(tmp_path), "--no-report"])
    assert code == 0
    (result,) = load_results(tmp_path)
    assert result.record.status == "completed"
    assert result.record.device.startswith("cpu x2")
    assert result.record.env_steps == result.record.budget  # both ranks' steps counted once each
    assert torch.load(result.path / "checkpoints/model.ckpt", weights_only=False)["state_dict"]


def test_a_failed_record_that_cannot_be_written_does_not_stop_the_suite(tmp_path, monkeypatch):
    real = runner.write_record

    def disk_full_for_failures(folder, record):
        if record.status == "failed":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "record.json"))
        real(folder, record)

    monkeypatch.setattr(runner, "write_record", disk_full_for_failures)
    records = _run(tmp_path, "raise")
    source = records[("source", "base")]
    assert source.status == "failed"
    first = source.error.splitlines()[0]  # the line the summary shows
    assert "No space left on device" in first and "agent factory exploded" in first
    assert records[("target", "finetune")].status == "blocked"
    assert records[("target", "scratch")].status == "completed"  # the suite went on


def _source_then_target(tmp_path):
    suite = load_suite(_suite(tmp_path, {}))
    specs = expand(suite, "smoke", seeds=[0])
    (source,) = [s for s in specs if s.kind == "source"]
    target = next(s for s in specs if source.run_id in s.deps)
    opts = ExecOptions(tmp_path / "out")
    assert runner.execute(source, opts).status == "completed"
    return source, target, opts


def test_a_source_model_that_differs_from_its_record_is_refused(tmp_path):
    source, target, opts = _source_then_target(tmp_path)
    model = runner.run_dir(opts.out_root, source) / "checkpoints" / "model.ckpt"
    record = load_results(opts.out_root)[0].record
    if record.model_sha256 is None:
        pytest.skip("training does not record the model digest yet")
    model.write_bytes(model.read_bytes() + b"\0")  # tampered or damaged after its run
    failed = runner.execute(target, opts)
    assert failed.status == "failed"
    assert f"{model}: sha256 " in failed.error and "refusing to train on it" in failed.error
    assert not (runner.run_dir(opts.out_root, target) / "logs").exists()  # never trained
    model.unlink()
    missing = runner.execute(target, opts)
    assert missing.status == "failed" and str(model) in missing.error
