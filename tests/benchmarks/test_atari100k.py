"""Suite atari100k: its protocol settings and reference scores are the adapter's and the score
table's, and the smoke profile runs both agent families end to end on ALE."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.cli import main
from benchmarks.graph import expand
from benchmarks.results import load_results
from benchmarks.suite import load_suite
from lightning_wm import metrics as M
from lightning_wm.envs.atari import EVALUATION_OPTIONS
from lightning_wm.envs.atari_scores import ATARI100K_GAMES, ROM_IDS, SCORES, XTRA_EXTRA_GAMES


def test_the_suite_holds_every_game_with_the_published_scores():
    suite = load_suite("atari100k")
    games = {ROM_IDS[g]: g for g in ATARI100K_GAMES + XTRA_EXTRA_GAMES}
    assert set(suite.tasks) == set(games) and len(games) == 34
    m = suite.metrics
    assert m.reference == "human"
    for task, game in games.items():
        ref = SCORES[game]
        if ref.human is None:  # no published reference: raw scores only
            assert task not in m.random_scores and task not in m.reference_scores
        else:
            assert (m.random_scores[task], m.reference_scores[task]) == (ref.random, ref.human)


def test_published_aggregates_recompute_from_the_published_games():
    # the paper's aggregates, normalised with the suite's random and human scores through our
    # metrics: a typo in a game's score or in the aggregates shows up here
    suite = load_suite("atari100k")
    m = suite.metrics
    (ref,) = [r for r in suite.references if r.aggregates]
    games = sorted(ref.values)
    assert len(games) == len(ATARI100K_GAMES) == 26
    raw = np.array([[ref.values[g]["efficientzero"] for g in games]])
    scores = M.normalise(raw, np.array([m.random_scores[g] for g in games]),
                         np.array([m.reference_scores[g] for g in games]))
    assert {"mean": M.mean(scores), "median": M.median(scores), "iqm": M.iqm(scores)} == \
        pytest.approx(ref.aggregates, abs=5e-4)


def test_training_and_evaluation_envs_follow_the_protocol():
    suite = load_suite("atari100k")
    for name, task in suite.tasks.items():
        assert task.options == {"game": name}  # the adapter's defaults are the protocol
        assert task.eval_options == EVALUATION_OPTIONS  # whole games, raw game points
    runs = expand(suite, "paper")
    by_agent = {r.agent: r.envs[0] for r in runs if r.task == "pong"}
    assert by_agent["efficientzero"]["options"] == {"game": "pong"}  # 96x96 RGB, 4 frames
    assert by_agent["dreamer_v2"]["options"] == {"game": "pong", "size": 64, "grayscale": True,
                                                 "frame_stack": 1}
    assert all(e["eval_options"] == EVALUATION_OPTIONS for e in by_agent.values())


@pytest.mark.slow
def test_smoke_profile(tmp_path, reproduces):
    pytest.importorskip("ale_py")
    assert main(["run", "atari100k", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    root = tmp_path / "atari100k" / "smoke"
    reproduces(root)
    runs = {(r.record.task, r.record.method): r for r in load_results(root)}
    assert set(runs) == {(t, m) for t in ("pong", "breakout")
                         for m in ("efficientzero", "dreamer_v2")}
    assert all(r.record.status == "completed" for r in runs.values())
    report = json.loads((root / "leaderboard.json").read_text())["reports"][0]
    assert report["aggregates"]["normalisation"] != "raw"
