"""A tiny double-DQN agent with a reward model: the boring agent of tests and the fake suite.

Components: ``encoder`` (observation -> latent), ``q`` (latent -> action values) and ``reward``
(latent, action -> reward). It learns the corridor in a few hundred env steps, which makes it the
cheapest real check that the whole pipeline -- collection, replay, updates, transfer -- works.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents.value_based import ValueBasedAgent
from lightning_wm.losses import double_q_target
from lightning_wm.nets.heads import MLPHead


class TinyQAgent(ValueBasedAgent):
    sequence_length = 2

    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 32, latent: int = 16,
                 lr: float = 3e-3, gamma: float = 0.95, eps_start: float = 1.0,
                 eps_end: float = 0.05, eps_steps: int = 1000, target_every: int = 50) -> None:
        super().__init__({
            "encoder": MLPHead(obs_dim, latent, hidden),
            "q": MLPHead(latent, action_dim, hidden),
            "reward": MLPHead(latent + action_dim, 1, hidden),
        }, ("encoder", "q"), action_dim)
        self.save_hyperparameters()

    def _q(self, obs: torch.Tensor, nets: nn.ModuleDict) -> torch.Tensor:
        return nets["q"](F.elu(nets["encoder"](obs.float())))

    def act(self, obs, state, explore):
        return self.epsilon_greedy(self._q(obs, self.components), explore), state

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
