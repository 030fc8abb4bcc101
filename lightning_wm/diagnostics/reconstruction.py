"""World-model reconstructions of a fixed trajectory: does the model see this level, or recall
another? (Voskuil, "Pre-training World Models to efficiently learn related tasks", Master's
thesis, Leiden University, 2022, Figure 8: frames of an unseen Mario level reconstructed by
pre-trained agents show artifacts of the levels they were trained on.)

The callback plays one seeded random-action trajectory in an env (by default the run's own first
task), filters it through the world model and decodes the posterior states. It does so when
training starts (after transfer callbacks have loaded their components: the pre-trained model
meets the level) and when it ends, records the mean squared reconstruction error of both, and
saves the frames for the report's figure. Any agent that declares
:class:`~lightning_wm.agents.protocol.Reconstructs` (the Dreamer family) can be diagnosed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_wm.agents.protocol import Reconstructs, require
from lightning_wm.artifacts import RECONSTRUCTION
from lightning_wm.data.collector import action_width, derive_seed, random_actions, to_env_action
from lightning_wm.diagnostics.base import Diagnostic, task_env


def random_trajectory(env, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` observations of ``env`` under uniform random actions, and the action vector that
    led to each (zeros before the first), as the replay stores them."""
    rng = np.random.default_rng(derive_seed(seed, 11))
    obs, _ = env.reset(seed=derive_seed(seed, 12))
    width = action_width(env.action_space)
    frames, actions = [obs], [np.zeros(width, np.float32)]
    while len(frames) < steps:
        action = random_actions(rng, [env.action_space], width)[0]
        obs, _, terminated, truncated, _ = env.step(to_env_action(env.action_space, action))
        if terminated or truncated:  # keep one episode: a reset would need is_first mid-sequence
            break
        frames.append(obs)
        actions.append(action)
    return np.stack(frames), np.stack(actions).astype(np.float32)


def to_pixels(x: np.ndarray) -> np.ndarray:
    """Decoder-space images in [-0.5, 0.5] -> uint8."""
    return np.clip((x + 0.5) * 255.0, 0, 255).round().astype(np.uint8)


class Reconstruction(Diagnostic):
    """Reconstruct a fixed trajectory at the start and end of training (diagnostic)."""

    def __init__(self, env: str | None = None, options: dict[str, Any] | None = None,
                 frames: int = 5, stride: int = 8, seed: int = 0) -> None:
        if frames < 1 or stride < 1:
            raise ValueError("frames and stride must be at least 1")
        super().__init__()
        self.env, self.options = env, dict(options or {})
        self.frames, self.stride, self.seed = int(frames), int(stride), int(seed)
        self.start: np.ndarray | None = None   # decoded frames before training (survives resume)
        self.start_mse: float | None = None
        # the trajectory is a pure function of the env, frames, stride and seed: played once per
        # process and reused at the end (replaying it costs as much as a short evaluation)
        self._trajectory: tuple[np.ndarray, np.ndarray] | None = None

    def _make_env(self, trainer):
        if self.env is None:
            return task_env(trainer)
        from lightning_wm.envs import make_env
        return make_env(self.env, self.options)

    def _reconstruct(self, trainer, agent) -> tuple[np.ndarray, np.ndarray, float]:
        require(agent, Reconstructs, "the reconstruction diagnostic")
        if self._trajectory is None:
            env = self._make_env(trainer)
            try:
                self._trajectory = random_trajectory(env, self.frames * self.stride, self.seed)
            finally:
                env.close()
        obs, action = self._trajectory
        was_training = agent.training
        agent.eval()
        # posterior sampling must not move the run's own random streams
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, 13))
            recon, target = agent.reconstruct(obs, action)
        agent.train(was_training)
        recon, target = recon.float().cpu().numpy(), target.float().cpu().numpy()
        mse = float(np.mean((recon - target) ** 2))
        pick = np.arange(self.stride - 1, len(obs), self.stride)[: self.frames]
        return target[pick], recon[pick], mse

    def on_train_start(self, trainer, pl_module) -> None:
        if self.start is None:  # a resumed run keeps the frames of its true start
            _, self.start, self.start_mse = self._reconstruct(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        target, end, mse = self._reconstruct(trainer, pl_module)
        self.diagnostics = {"recon_mse_start": self.start_mse, "recon_mse_end": mse}
        if trainer.is_global_zero and target.ndim == 4:  # images [K, C, H, W]: the figure's data
            n = min(len(target), len(self.start))
            np.savez_compressed(Path(trainer.default_root_dir) / RECONSTRUCTION,
                                observed=to_pixels(target[:n]), start=to_pixels(self.start[:n]),
                                end=to_pixels(end[:n]))

    def state_dict(self) -> dict[str, Any]:
        return {"start": self.start, "start_mse": self.start_mse}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.start, self.start_mse = state["start"], state["start_mse"]
