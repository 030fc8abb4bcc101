"""The pybullet_ftl and pybullet_mmtl smoke profiles end to end (tiny Dreamer, proprioceptive
PyBullet tasks), and what their transfer did to the saved weights: FTL copied the world model of
the multi-task source and re-drew the actor; MMTL kept the UFS encoder frozen and fed the target's
reward head with the source reward models."""
from __future__ import annotations

import json

import pytest
import torch

from benchmarks.cli import main
from benchmarks.results import load_results
from benchmarks.suite import load_suite
from lightning_wm.artifacts import CHECKPOINTS, MODEL

pytest.importorskip("pybullet")


def _weights(result) -> dict[str, torch.Tensor]:
    ckpt = torch.load(result.path / CHECKPOINTS / MODEL, map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(suite: str, out, reproduces) -> dict:
    """Run the smoke profile; check it reproduces the committed smoke results, and that the
    report has a cell for every task x method the profile selects and shows every paper value
    the suite gives for those tasks beside ours."""
    assert main(["run", suite, "--profile", "smoke", "--out", str(out)]) == 0
    root = out / suite / "smoke"
    reproduces(root)
    runs = {(r.record.kind, r.record.method): r
            for r in load_results(root)}
    assert all(r.record.status == "completed" for r in runs.values())
    report = json.loads((root / "leaderboard.json").read_text())["reports"][0]
    spec = load_suite(suite)
    profile = spec.profiles["smoke"]
    cells = {(c["task"], c["method"]): c["n_seeds"] for c in report["cells"]}
    assert cells == {(t, m): len(profile.seeds) for t in profile.tasks for m in profile.methods}
    paper = {(ref.name, task, method, value) for ref in spec.references
             for task, per in ref.values.items() if task in profile.tasks
             for method, value in per.items()}
    shown = {(ref["name"], row["task"], row["method"], row["paper"])
             for ref in report["references"] for row in ref["rows"]}
    assert paper and shown == paper
    ours = [row["ours"] for ref in report["references"] if ref["metric"] in ("auc", "final")
            for row in ref["rows"] if (row["task"], row["method"]) in cells]
    assert ours and None not in ours
    return runs


@pytest.mark.slow
def test_ftl_smoke_profile(tmp_path, reproduces):
    runs = _run("pybullet_ftl", tmp_path, reproduces)
    source = runs[("source", "mt_pendulum_2")]
    assert source.record.tasks == ["halfcheetah", "double_pendulum"]  # one multi-task agent
    src, ftl = _weights(source), _weights(runs[("target", "ftl_2src")])
    scratch = _weights(runs[("target", "scratch")])
    # the target trained after the transfer, so compare the encoder's shapes and the actor's
    # departure from the source: the actor was re-drawn, the world model started from the source
    enc = "components.encoder."
    assert _part(src, enc).keys() == _part(ftl, enc).keys()
    gap = lambda a, b, p: sum((_part(a, p)[k] - _part(b, p)[k]).norm() for k in _part(a, p))
    assert gap(ftl, src, enc) < gap(scratch, src, enc)


@pytest.mark.slow
def test_mmtl_smoke_profile(tmp_path, reproduces):
    runs = _run("pybullet_mmtl", tmp_path, reproduces)
    ufs = _weights(runs[("source", "ufs")])
    enc = "components.encoder."
    for name in ("on_ufs_halfcheetah", "on_ufs_double_pendulum"):  # frozen UFS encoder
        assert _same(_part(_weights(runs[("source", name)]), enc), _part(ufs, enc))
    target = _weights(runs[("target", "mmtl_2src")])
    assert _same(_part(target, enc), _part(ufs, enc))
    assert bool(target["meta_ready"])
    # the frozen meta inputs are exactly the two source reward models, in the suite's order
    for i, name in enumerate(("on_ufs_halfcheetah", "on_ufs_double_pendulum")):
        reward = _part(_weights(runs[("source", name)]), "components.reward.")
        assert _same(_part(target, f"meta_rewards.{i}."), reward)
    assert not _same(_part(_weights(runs[("target", "scratch")]), enc), _part(ufs, enc))


@pytest.mark.slow
def test_repaint_smoke_profile(tmp_path, reproduces):
    """PPO students with kickstarting, instance transfer and both, from two teachers: the run
    reproduces, and every teacher's weights are what its source run saved (frozen throughout)."""
    assert main(["run", "pybullet_repaint", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    root = tmp_path / "pybullet_repaint" / "smoke"
    reproduces(root)
    runs = {(r.record.kind, r.record.method): r for r in load_results(root)}
    assert all(r.record.status == "completed" for r in runs.values())
    report = json.loads((root / "leaderboard.json").read_text())["reports"][0]
    rows = {(row["task"], row["method"]) for ref in report["references"] for row in ref["rows"]}
    assert ("reacher", "repaint") in rows and ("reacher", "ks") in rows
    cell = {(c["task"], c["method"]): c for c in report["cells"]}
    assert cell[("reacher", "repaint")]["best"] is not None
    similar = _part(_weights(runs[("source", "teacher_similar")]), "components.actor.")
    scratch = _part(_weights(runs[("target", "scratch")]), "components.actor.")
    assert similar.keys() == scratch.keys() and not _same(similar, scratch)


@pytest.mark.slow
def test_repaint_dreamer_smoke_profile(tmp_path, reproduces):
    """Dreamer students with kickstarting and instance transfer: the run reproduces, and an
    instance-transfer student trained its world model on the teacher's episodes as well."""
    suite = "pybullet_repaint_dreamer"
    assert main(["run", suite, "--profile", "smoke", "--out", str(tmp_path)]) == 0
    root = tmp_path / suite / "smoke"
    reproduces(root)
    runs = {(r.record.kind, r.record.method): r for r in load_results(root)}
    assert all(r.record.status == "completed" for r in runs.values())
    assert {m for kind, m in runs if kind == "target"} == {"scratch", "ks", "it", "repaint_diff"}
    teacher = _part(_weights(runs[("source", "teacher_similar")]), "components.actor.")
    for method in ("scratch", "it"):
        student = _part(_weights(runs[("target", method)]), "components.actor.")
        assert student.keys() == teacher.keys() and not _same(student, teacher)
