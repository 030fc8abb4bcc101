"""A tiny double-DQN agent with a reward model: the boring agent of tests and the fake suite.

Components: ``encoder`` (observation -> latent), ``q`` (latent -> action values) and ``reward``
(latent, action -> reward). It learns the corridor in a few hundred env steps, which makes it the
cheapest real check that the whole pipeline -- collection, replay, updates, transfer -- works.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents.base import Agent, linear_schedule
from lightning_wm.losses import double_q_target
from lightning_wm.nets.heads import MLPHead


class TinyQAgent(Agent):
    sequence_length = 2

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 32, latent: int = 16,
                 lr: float = 3e-3, gamma: float = 0.95, eps_start: float = 1.0,
                 eps_end: float = 0.05, eps_steps: int = 1000, target_every: int = 50) -> None:
        super().__init__({
            "encoder": MLPHead(obs_dim, latent, hidden),
            "q": MLPHead(latent, action_dim, hidden),
            "reward": MLPHead(latent + action_dim, 1, hidden),
        })
        self.save_hyperparameters()
        self.action_dim = action_dim
        # target networks are derived copies, not components: transfer never addresses them
        self.target = nn.ModuleDict({k: copy.deepcopy(self.components[k]) for k in ("encoder", "q")})
        self.target.requires_grad_(False)

    def _q(self, obs: torch.Tensor, nets: nn.ModuleDict) -> torch.Tensor:
        return nets["q"](F.elu(nets["encoder"](obs.float())))

    def epsilon(self) -> float:
        h = self.hparams
        return linear_schedule(h.eps_start, h.eps_end, h.eps_steps, self.env_steps)

    def act(self, obs, state, explore):
        q = self._q(obs, self.components)
        action = q.argmax(-1)
        if explore:
            rand = torch.rand(len(obs), device=obs.device) < self.epsilon()
            action = torch.where(rand, torch.randint(0, self.action_dim, action.shape, device=obs.device), action)
        return F.one_hot(action, self.action_dim).float(), state

    def loss_terms(self, batch):
        obs, next_obs = batch["obs"][:, 0].float(), batch["obs"][:, 1].float()
        action = batch["action"][:, 1].float()
        reward = batch["reward"][:, 1].float()
        terminal = batch["is_terminal"][:, 1].float()
        latent = F.elu(self.components["encoder"](obs))
        q = self.components["q"](latent)
        q_taken = (q * action).sum(-1)
        with torch.no_grad():
            y = double_q_target(reward, terminal, self.hparams.gamma,
                                self._q(next_obs, self.components), self._q(next_obs, self.target))
        r_hat = self.components["reward"](torch.cat([latent, action], -1)).squeeze(-1)
        return {"q/td": F.smooth_l1_loss(q_taken, y), "reward/mse": F.mse_loss(r_hat, reward)}

    def sync_target(self) -> None:
        for k in self.target:
            self.target[k].load_state_dict(self.components[k].state_dict())

    def on_train_start(self) -> None:
        if self.global_step == 0:  # after transfer callbacks ran in on_fit_start
            self.sync_target()

    def on_train_batch_start(self, batch, batch_idx) -> None:
        # at the start of a step, not its end: checkpoints are written in callbacks' batch-end
        # hooks, which run before the module's, and must not miss a sync
        if self.global_step > 0 and self.global_step % self.hparams.target_every == 0:
            self.sync_target()

    def configure_optimizers(self):
        return torch.optim.Adam(self.components.parameters(), lr=self.hparams.lr)
