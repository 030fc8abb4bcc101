"""The reconstruction diagnostic on a tiny pixel Dreamer: frames saved, errors recorded, the
run's own random streams untouched, and the start frames carried through a resume."""
from __future__ import annotations

import lightning as L
import numpy as np
import pytest

from lightning_wm.agents import make_agent
from lightning_wm.artifacts import RECONSTRUCTION
from lightning_wm.diagnostics.reconstruction import Reconstruction, random_trajectory
from lightning_wm.envs import make_env
from lightning_wm.pipeline import TrainingConfig
from lightning_wm.training import train

CFG = TrainingConfig(collect_every=50, updates_per_collect=15, prefill=50, batch_size=4,
                     eval_every=300, eval_episodes=1, checkpoint_every=10**6)
ENV = {"image": True, "max_steps": 40}


def _run(tmp, callbacks=()):
    L.seed_everything(0, verbose=False)
    agent = make_agent("dreamer", (3, 64, 64), 2, False, {"size": "tiny", "seq_len": 8})
    return train(agent, lambda t: make_env("point", ENV), [0], 2, budget=300, seed=0,
                 config=CFG, run_dir=tmp, callbacks=callbacks)


def test_random_trajectory_is_seeded_and_stops_at_the_episode_end():
    env = make_env("point", ENV)
    obs, act = random_trajectory(env, 60, seed=3)
    again, _ = random_trajectory(env, 60, seed=3)
    assert obs.shape == (40, 3, 64, 64) and act.shape == (40, 2)  # truncated after 40 steps
    assert np.array_equal(obs, again) and not act[0].any() and act[1:].any()


def test_frames_errors_and_untouched_training_streams(tmp_path):
    plain = _run(tmp_path / "plain")
    cb = Reconstruction(frames=4, stride=8, seed=1)
    result = _run(tmp_path / "diag", [cb])
    # the diagnostic samples posteriors under its own seed: the run itself is unchanged
    assert result.returns == plain.returns
    d = result.diagnostics
    assert set(d) == {"recon_mse_start", "recon_mse_end"}
    assert d["recon_mse_end"] < d["recon_mse_start"]  # trained decoder beats the fresh one
    with np.load(tmp_path / "diag" / RECONSTRUCTION) as data:
        assert {k: data[k].shape for k in data} == {k: (4, 3, 64, 64) for k in ("observed", "start", "end")}
        assert data["observed"].dtype == np.uint8
        assert np.abs(data["end"].astype(int) - data["observed"]).mean() < \
            np.abs(data["start"].astype(int) - data["observed"]).mean()


def test_start_frames_survive_a_resume():
    cb = Reconstruction()
    cb.start, cb.start_mse = np.zeros((5, 1, 4, 4)), 0.25
    again = Reconstruction()
    again.load_state_dict(cb.state_dict())
    assert again.start_mse == 0.25 and again.start.shape == (5, 1, 4, 4)
    with pytest.raises(ValueError, match="at least 1"):
        Reconstruction(frames=0)
