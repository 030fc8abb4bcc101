"""Verdicts and honest reference tables: the pure rules against hand-computed values, then a
leaderboard built from synthetic runs where transfer is clearly better, clearly worse and
indistinguishable from scratch."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import verdict as V
from benchmarks.report import Reference, SuiteFacts, write_report
from benchmarks.report_refs import TaskSetup, task_setup
from benchmarks.results import Provenance, RunRecord, write_curve, write_record

STEPS = np.arange(0, 1001, 100)          # linear curves over 1000 decisions: AUC = mean of line
OFFSETS = {0: 0.0, 1: 0.5, 2: -0.5, 3: 1.0, 4: -1.0}   # per-seed shift, shared by a pair
# task -> per-seed lift of the transfer curve over its scratch pair = the paired AUC difference
LIFTS = {"up": dict.fromkeys(range(5), 3.0), "down": dict.fromkeys(range(5), -2.0),
         "flat": {0: 1.0, 1: -1.0, 2: 0.0, 3: 0.5, 4: -0.5}, "lone": {0: 5.0, 1: 5.0, 2: 5.0}}


# ---- the pure rules ----

@pytest.mark.parametrize("low, high, n, word", [
    (0.1, 2.0, 5, V.BETTER), (-3.0, -0.5, 6, V.WORSE), (-1.0, 1.0, 5, V.NO_DIFFERENCE),
    (0.0, 2.0, 5, V.NO_DIFFERENCE),   # a CI touching 0 contains it
    (1.0, 2.0, 4, V.TOO_FEW), (1.0, 2.0, 1, V.TOO_FEW), (None, None, 4, V.TOO_FEW), (float("nan"), 1.0, 4, V.TOO_FEW)])
def test_decide(low, high, n, word):
    assert V.decide(low, high, n) == word


def test_number_and_budget_text():
    assert V.number(-29.133) == "−29.1"
    assert V.number(0.5) == "0.50"
    assert V.number(-0.001) == "0.00"
    assert V.number(12345.67) == "12,345.7"
    assert V.number(None) == "—"
    assert V.budget_text(10000, 2) == "20,000 env steps (10,000 decisions, action repeat 2)"
    assert V.budget_text(500, 1) == "500 env steps"
    assert V.budget_text(500, None) == "500 agent steps (action repeat unknown)"


def test_verdict_line():
    row = {"task": "pendulum", "method": "ftl_2src", "baseline": "scratch", "metric": "auc",
           "n_pairs": 2, "difference": {"point": -29.1, "low": -180.2, "high": 122.0},
           "probability_of_improvement": {"point": 0.5, "low": 0.0, "high": 1.0},
           "verdict": V.NO_DIFFERENCE, "decisions_per_run": 10000, "action_repeat": 2}
    assert V.verdict_line(row) == (
        "pendulum, ftl_2src vs scratch: AUC diff −29.1 [−180.2, 122.0], P(improve) 0.50 "
        "[0.00, 1.00] → no detectable difference at 20,000 env steps (10,000 decisions, "
        "action repeat 2), 2 pairs")


def test_paper_number_and_normalised():
    assert V.paper_number("667 ± 121") == 667.0
    assert V.paper_number(-3.5) == -3.5
    assert V.paper_number("76? ± 68") is None      # an illegible digit of the mean
    assert V.paper_number("879 ± ?7") == 879.0     # only the spread is illegible
    # (8 - 2) / (5 - 2) = 2: twice scratch's gain over random
    assert V.normalised(8.0, 2.0, 5.0) == pytest.approx(2.0)
    assert V.normalised(2.0, 2.0, 5.0) == 0.0
    assert V.normalised(8.0, 5.0, 5.0) is None and V.normalised(None, 1.0, 2.0) is None


def test_comparability():
    same = {"env_steps": 2000, "observation": "64x64 pixels"}
    assert V.comparability(same, dict(same)) == (True, [])
    ok, why = V.comparability({"env_steps": 20000, "observation": "state (proprioceptive)"},
                              {"env_steps": 1000000, "observation": "64x64 pixels"})
    assert not ok and why == [
        "budgets differ 50x: 20,000 vs 1,000,000 env steps per target run",
        "observations differ: state (proprioceptive) vs 64x64 pixels"]
    ok, why = V.comparability(same, {"env_steps": None, "observation": "64x64 pixels"})
    assert not ok and why == ["a budget is not stated"]


def test_task_setup_reads_options_and_env_defaults():
    assert task_setup("pendulum_swingup", {"obs": "proprio"}) == TaskSetup(2, "state (proprioceptive)")
    assert task_setup("pendulum_swingup", {"action_repeat": 4}) == TaskSetup(4, "64x64 pixels")
    assert task_setup("corridor", {}) == TaskSetup(1, None)
    # ALE: frame skip 4 and EfficientZero's observation by default, as the Atari papers state it
    assert task_setup("atari", {"game": "pong"}) == TaskSetup(4, "96x96 RGB, 4 frames")
    assert task_setup("atari", {"game": "pong", "size": 16, "grayscale": True,
                                "frame_stack": 2}) == TaskSetup(4, "16x16 grayscale, 2 frames")
    assert task_setup("no_such_env", {}) == TaskSetup()


# ---- a leaderboard from synthetic runs ----

def _save(root, run_id, returns, **kw):
    base = dict(run_id=run_id, suite="fake", profile="smoke", kind="target", method="scratch",
                status="completed", budget=1000, env_steps=1000, wall_time_s=1.0,
                provenance=Provenance(config_hash="h", git_commit="c", packages={},
                                      python="3.11", platform="x"))
    record = RunRecord(**{**base, **kw})
    run_dir = root / "fake" / "smoke" / "runs" / run_id
    write_record(run_dir, record)
    write_curve(run_dir, STEPS, returns)


def _populate(root):
    for task, lifts in LIFTS.items():
        for seed, lift in lifts.items():
            line = STEPS / 100 + OFFSETS[seed]          # scratch AUC = 5 + offset
            sid = f"{task}-scratch-{seed}"
            _save(root, sid, line, task=task, tasks=[task], seed=seed, is_baseline=True)
            _save(root, f"{task}-transfer-{seed}", line + lift, task=task, tasks=[task],
                  method="transfer", seed=seed, baseline_run_id=sid)


SAME = Reference("same setting", "Doe et al. (2021), A Paper, Table 1", "auc",
                 {"up": {"scratch": "100 ± 5", "transfer": "150 ± 9"}},
                 budget_env_steps=2000, observation="state (proprioceptive)",
                 random_return={"up": 50.0}, our_random_return={"up": 2.0})
PIXELS = Reference("pixel setting", "Doe et al. (2021), A Paper, Table 2", "auc",
                   {"up": {"scratch": 100.0}}, budget_env_steps=1000000,
                   observation="64x64 pixels")
FACTS = SuiteFacts(references=(SAME, PIXELS),
                   setups={"smoke": {t: TaskSetup(2, "state (proprioceptive)") for t in LIFTS}})


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    _populate(root)
    write_report(root, suite_lookup=lambda name: FACTS, reps=500)
    data = json.loads((root / "leaderboard.json").read_text())["reports"][0]
    return data, (root / "leaderboard.md").read_text()


def test_verdicts_in_json(board):
    data, _ = board
    by_task = {v["task"]: v for v in data["verdicts"]}
    assert {t: v["verdict"] for t, v in by_task.items()} == {
        "up": V.BETTER, "down": V.WORSE, "flat": V.NO_DIFFERENCE, "lone": V.TOO_FEW}
    # every pair differs by its lift, so the paired CI of a constant lift is that lift; "flat"
    # resamples {1, -1, 0, 0.5, -0.5}: replicate means lie in [-1, 1] around 0
    assert by_task["up"]["difference"] == pytest.approx({"point": 3.0, "low": 3.0, "high": 3.0})
    assert by_task["down"]["difference"] == pytest.approx({"point": -2.0, "low": -2.0, "high": -2.0})
    flat = by_task["flat"]["difference"]
    assert flat["point"] == pytest.approx(0.0) and -1.0 <= flat["low"] < 0.0 < flat["high"] <= 1.0
    assert by_task["up"]["probability_of_improvement"]["point"] == 1.0
    # flat: transfer AUCs 6, 4.5, 4.5, 6.5, 3.5 against scratch 5, 5.5, 4.5, 6, 4 (ties count
    # half): 6 -> 4.5, each 4.5 -> 1.5, 6.5 -> 5, 3.5 -> 0; 12.5 of 25
    assert by_task["flat"]["probability_of_improvement"]["point"] == pytest.approx(0.5)
    up = by_task["up"]
    assert (up["n_pairs"], up["decisions_per_run"], up["action_repeat"],
            up["env_steps_per_run"], up["metric"], up["baseline"]) == (5, 1000, 2, 2000, "auc",
                                                                      "scratch")


def test_verdicts_in_markdown(board):
    data, md = board
    top = md.split("## Target tasks")[0]
    assert "## Verdict" in top
    assert ("- up, transfer vs scratch: AUC diff 3.00 [3.00, 3.00], P(improve) 1.00 [1.00, 1.00] "
            "→ **better** at 2,000 env steps (1,000 decisions, action repeat 2), 5 pairs") in top
    # down: transfer AUCs 3, 3.5, 2.5, 4, 2 against scratch 5, 5.5, 4.5, 6, 4: one tie, 0.5 of 25
    assert ("- down, transfer vs scratch: AUC diff −2.00 [−2.00, −2.00], P(improve) 0.02 ") in top
    assert "→ **worse** at 2,000 env steps" in top
    assert "- flat, transfer vs scratch: AUC diff 0.00 [−" in top
    assert "→ **no detectable difference** at 2,000 env steps" in top
    assert "→ **too few pairs to judge** at 2,000 env steps (1,000 decisions, action repeat 2), 3 pairs" in top
    for v in data["verdicts"]:  # the md line is the json text, the word in bold
        assert v["text"].replace(f"→ {v['verdict']}", f"→ **{v['verdict']}**") in top


def test_reference_tables_state_both_settings(board):
    data, md = board
    same, pixels = data["references"]
    assert same["comparable"] and same["not_comparable_because"] == []
    assert same["ours_setting"] == {"env_steps": 2000, "observation": "state (proprioceptive)"}
    rows = {r["method"]: r for r in same["rows"]}
    # ours: (8 - 2) / (5 - 2) = 2 and scratch 1; paper: (150 - 50) / (100 - 50) = 2
    assert rows["transfer"]["ours_normalised"] == pytest.approx(2.0)
    assert rows["transfer"]["paper_normalised"] == pytest.approx(2.0)
    assert rows["scratch"]["ours_normalised"] == pytest.approx(1.0)
    assert rows["scratch"]["paper_normalised"] == pytest.approx(1.0)
    assert not pixels["comparable"]
    assert "budgets differ 500x: 2,000 vs 1,000,000 env steps per target run" in \
        pixels["not_comparable_because"]
    assert "- Comparable: same budget and observation." in md
    assert ("- **Not comparable**: budgets differ 500x: 2,000 vs 1,000,000 env steps per target "
            "run; observations differ: state (proprioceptive) vs 64x64 pixels.") in md
    assert "| task | method | ours (2,000 env steps, state (proprioceptive)) | paper (1,000,000 env steps, 64x64 pixels) |" in md
    assert "ours, (x - random)/(scratch - random)" in md
