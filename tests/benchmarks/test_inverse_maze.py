"""The inverse_maze smoke profile end to end, and the claim it exists to check: an encoder
retrained under frozen dynamics maps inverse visuals closer to where the base model maps the
normal ones than a scratch agent does (embedding agreement on the simple maze)."""
from __future__ import annotations

import json

import pytest

from benchmarks.cli import main
from benchmarks.graph import expand
from benchmarks.results import load_results
from benchmarks.suite import load_suite
from lightning_wm.agents.crar import CRARAgent
from lightning_wm.artifacts import CHECKPOINTS, MODEL
from lightning_wm.diagnostics.embedding import (embedding_distance, embedding_spread,
                                                paired_observations)


def _agent(result) -> CRARAgent:
    return CRARAgent.load_from_checkpoint(result.path / CHECKPOINTS / MODEL,
                                          map_location="cpu").eval()


@pytest.mark.slow
def test_smoke_profile_and_transfer_beats_scratch(tmp_path, reproduces):
    assert main(["run", "inverse_maze", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    root = tmp_path / "inverse_maze" / "smoke"
    reproduces(root)  # the committed smoke results, byte for byte
    assert (root / "leaderboard.md").exists()
    assert (root / "embedding_inverse_maze_smoke_maze_inverse_encoder_only.png").exists()
    runs = {(r.record.kind, r.record.method): r for r in load_results(root)}
    transfer = runs[("target", "encoder_only")]
    assert "embedding_distance_rel" in transfer.record.diagnostics
    report = json.loads((root / "leaderboard.json").read_text())["reports"][0]
    assert {(row["method"], row["base_model"]) for row in report["per_base_model"]
            if "embedding_distance_rel" in row["mean"]} >= {("encoder_only", 0)}

    base, scratch = _agent(runs[("source", "base_maze")]), _agent(runs[("target", "scratch")])
    pairs = paired_observations("simple_maze", 0, 0)
    d_scratch, xb, _ = embedding_distance(base, scratch, pairs)
    d_transfer, _, _ = embedding_distance(base, _agent(transfer), pairs)
    assert d_transfer == pytest.approx(transfer.record.diagnostics["embedding_distance"], rel=1e-5)
    assert embedding_spread(xb) > 0.3, "the base model's embedding collapsed"
    # a scratch encoder's map of the inverse maze bears no relation to the base map (1.31 spreads
    # apart in the committed smoke run); the transferred encoder, pulled by the frozen dynamics,
    # lands closer (0.87, 33 % closer under the Glorot init; 1000 decisions is a smoke budget)
    assert d_transfer < 0.85 * d_scratch, (d_transfer, d_scratch)


def _from_scratch(runs, task: str) -> list:
    """Runs that learn ``task`` from nothing: its scratch baseline, or a single-task source that
    reads no other run (what ``regress`` gates a ``learn_within`` claim on)."""
    return [r for r in runs if r.tasks == [task] and not r.deps
            and (r.is_baseline or r.kind == "source")]


@pytest.mark.parametrize("profile", ["smoke", "laptop", "nightly", "learning", "paper"])
def test_every_transfer_run_is_paired_with_scratch_at_its_own_budget(profile):
    """The meta-labyrinth's runs take their own budget roles (a new maze every episode needs more
    env steps than the maze); scratch on the same target must follow, seed by seed."""
    suite = load_suite("inverse_maze")
    runs = expand(suite, profile)
    by_id = {r.run_id: r for r in runs}
    budgets = suite.profiles[profile].budgets
    for target in suite.targets:
        mine = [r for r in runs if r.kind == "target" and r.task == target.task]
        for r in mine:
            assert r.budget == budgets[target.budget or suite.methods[r.name].budget], r.run_id
            if not r.is_baseline:
                scratch = by_id[r.baseline_run_id]
                assert (scratch.name, scratch.task, scratch.seed, scratch.budget) == \
                    (suite.baseline, r.task, r.seed, r.budget)


def test_every_learning_claim_has_runs_long_enough_to_judge_it():
    """``learn_within: {task: N}`` is only checked on from-scratch runs budgeted for N or more,
    and against the task's threshold: some profile must expand to such runs, or the claim is
    never judged."""
    suite = load_suite("inverse_maze")
    claims = suite.metrics.learn_within
    assert claims
    runs = [r for p in suite.profiles for r in expand(suite, p)]
    for task, steps in claims.items():
        assert task in suite.metrics.thresholds, task
        assert any(r.budget >= steps for r in _from_scratch(runs, task)), task
