"""The inverse_maze smoke profile end to end, and the claim it exists to check: an encoder
retrained under frozen dynamics maps inverse visuals closer to where the base model maps the
normal ones than a scratch agent does (embedding agreement on the simple maze)."""
from __future__ import annotations

import pytest

from benchmarks.cli import main
from benchmarks.results import load_results
from lightning_wm.agents.crar import CRARAgent
from lightning_wm.diagnostics import embedding_distance, embedding_spread, paired_observations


def _agent(result) -> CRARAgent:
    return CRARAgent.load_from_checkpoint(result.path / "checkpoints/model.ckpt",
                                          map_location="cpu").eval()


@pytest.mark.slow
def test_smoke_profile_and_transfer_beats_scratch(tmp_path):
    assert main(["run", "inverse_maze", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    root = tmp_path / "inverse_maze" / "smoke"
    assert (root / "leaderboard.md").exists()
    assert (root / "embedding_inverse_maze_smoke_maze_inverse_encoder_only.png").exists()
    runs = {(r.record.kind, r.record.method): r for r in load_results(root)}
    transfer = runs[("target", "encoder_only")]
    assert "embedding_distance_rel" in transfer.record.diagnostics
    assert "Diagnostics per base model" in (root / "leaderboard.md").read_text()

    base, scratch = _agent(runs[("source", "base_maze")]), _agent(runs[("target", "scratch")])
    pairs = paired_observations("simple_maze", 0, 0)
    d_scratch, xb, _ = embedding_distance(base, scratch, pairs)
    d_transfer, _, _ = embedding_distance(base, _agent(transfer), pairs)
    assert d_transfer == pytest.approx(transfer.record.diagnostics["embedding_distance"], rel=1e-5)
    assert embedding_spread(xb) > 0.3, "the base model's embedding collapsed"
    # a scratch encoder's map of the inverse maze bears no relation to the base map (~1.3 spreads
    # apart); the transferred encoder, pulled by the frozen dynamics, lands much closer
    assert d_transfer < 0.75 * d_scratch, (d_transfer, d_scratch)


def test_labyrinth_runs_take_their_own_budgets_and_their_learning_claim_is_stated():
    """The meta-labyrinth needs more env steps than the maze (a new maze every episode), so its
    source and target name their own budget roles; the suite states how fast CRAR learns it."""
    from benchmarks.graph import expand
    from benchmarks.suite import load_suite

    suite = load_suite("inverse_maze")
    budgets = {(r.kind, r.tasks[0]): r.budget for r in expand(suite, "laptop")}
    assert budgets == {("source", "maze"): 160_000, ("target", "maze_inverse"): 80_000,
                       ("source", "labyrinth"): 250_000, ("target", "labyrinth_inverse"): 20_000}
    assert suite.metrics.learn_within == {"labyrinth": 250_000, "labyrinth_inverse": 250_000}
    learning = expand(suite, "learning")
    assert {(r.kind, r.name, r.budget) for r in learning} == {("target", "scratch", 300_000)}
