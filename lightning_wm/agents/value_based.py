"""What value-based agents (double DQN and its relatives) share: target networks and ε-greedy.

Target networks are derived copies of some components, never components themselves, so transfer
never addresses them; they are re-synced right after transfer callbacks have run.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents.base import Agent, linear_schedule


class ValueBasedAgent(Agent):
    """Subclasses pass ``target_components`` and keep ``eps_*``, ``target_every`` and ``lr`` in
    their hyperparameters (``save_hyperparameters``)."""

    def __init__(self, components: Mapping[str, nn.Module], target_components: tuple[str, ...],
                 action_dim: int) -> None:
        super().__init__(components)
        self.action_dim = action_dim
        self.target = nn.ModuleDict({k: copy.deepcopy(self.components[k]) for k in target_components})
        self.target.requires_grad_(False)

    def epsilon(self) -> float:
        h = self.hparams
        return linear_schedule(h.eps_start, h.eps_end, h.eps_steps, self.env_steps)

    def epsilon_greedy(self, q: torch.Tensor, explore: bool) -> torch.Tensor:
        """One-hot actions: argmax of ``q``, or with probability ε a uniform random action."""
        action = q.argmax(-1)
        if explore:
            rand = torch.rand(action.shape, device=q.device) < self.epsilon()
            random = torch.randint(0, self.action_dim, action.shape, device=q.device)
            action = torch.where(rand, random, action)
        return F.one_hot(action, self.action_dim).float()

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
        # frozen components (requires_grad False) simply receive no gradient and stay put
        return torch.optim.Adam(self.components.parameters(), lr=self.hparams.lr)
