"""The mario_levels smoke profile end to end: a DreamerV2 agent pre-trained on the four levels of
world 3 starts the runs on a seen (3-1) and an unseen (1-1) level, each paired with a scratch
baseline; the report covers both levels, the equal-compute view and the reconstructions."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from benchmarks.cli import main
from lightning_wm.fileio import sha256_file
from benchmarks.results import load_results
from lightning_wm.artifacts import CHECKPOINTS, MODEL

if not (importlib.util.find_spec("nes_py") and importlib.util.find_spec("gym_super_mario_bros")):
    pytest.skip("nes-py / gym-super-mario-bros not installed", allow_module_level=True)


def _encoder(result) -> dict[str, torch.Tensor]:
    state = torch.load(result.path / CHECKPOINTS / MODEL, map_location="cpu",
                       weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("components.encoder.")}


@pytest.mark.slow
def test_smoke_profile_pretrains_then_fine_tunes_and_transfers(tmp_path, reproduces):
    assert main(["run", "mario_levels", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    root = tmp_path / "mario_levels" / "smoke"
    reproduces(root)  # the committed smoke results, byte for byte
    results = load_results(root)
    assert all(r.record.status == "completed" for r in results)
    runs = {(r.record.task, r.record.method): r for r in results}
    source = runs[("w3_1+w3_2+w3_3+w3_4", "pretrain4")]
    model = source.path / CHECKPOINTS / MODEL
    assert source.record.kind == "source" and source.record.env_steps == source.record.budget
    # each level evaluated on its own; the curve is their mean
    levels = source.record.tasks
    assert len(levels) > 1 and sorted(source.task_curves) == sorted(levels)
    per_level = [c.returns for c in source.task_curves.values()]
    assert source.curve.returns == pytest.approx(sum(per_level) / len(levels))
    report = json.loads((root / "leaderboard.json").read_text())["reports"][0]
    # the seen level 3-1 has a scratch baseline: the source is compared with it at equal compute
    equal = {(row["source"], row["task"]): row for row in report["equal_compute"]}
    row = equal[("pretrain4", "w3_1")]
    assert (row["n_tasks"], row["source_steps"]) == (len(levels), source.record.env_steps)
    cells = {(c["task"], c["method"]): c for c in report["cells"]}
    # the reconstruction diagnostic: the source on the unseen 1-3, every target on its level
    assert set(source.record.diagnostics) == {"recon_mse_start", "recon_mse_end"}
    assert (root / "reconstruction_mario_levels_smoke_w1_1_from_pre4.png").exists()
    for level in ("w3_1", "w1_1"):
        assert cells[(level, "from_pre4")]["n_seeds"] == cells[(level, "scratch")]["n_seeds"] > 0
        # the pre-trained run read exactly the source's final checkpoint (provenance), and
        # started from it: its weights differ from the scratch run of the same seed
        target = runs[(level, "from_pre4")]
        assert [u.checkpoint_sha256 for u in target.record.provenance.sources] == [sha256_file(model)]
        pre, fresh = _encoder(target), _encoder(runs[(level, "scratch")])
        assert any(not torch.equal(pre[k], fresh[k]) for k in pre), level
