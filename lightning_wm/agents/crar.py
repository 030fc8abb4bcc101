"""CRAR: a deterministic abstract state shared by a double-DQN head and a latent world model.

van Driessel and François-Lavet, "Component Transfer Learning for Deep RL Based on Abstract
Representations" (2021, §4.2, §5), after François-Lavet et al., "Combined Reinforcement Learning
via Abstract Representations" (2019). Observations s are 2-D float arrays in [-1, 1]; the encoder
maps them to x = e(s) ∈ R^n (n = 2 for the 8×8 maze; 8×8×3 = 192 from a conv encoder for the
48×48 meta-labyrinth). Components, all addressable by transfer:

- ``encoder``: s -> x (``dense`` MLP or ``conv``);
- ``transition``: (x ⊕ a) -> Δx, with x' = x + Δx;
- ``reward``: (x ⊕ a) -> r̂;  ``discount``: (x ⊕ a) -> γ̂ ∈ [0, 1];  ``q``: x -> Q(x, ·).

Target copies of ``encoder`` and ``q`` are plain attributes (not components), so component
transfer never touches them; they are re-synced from the components after transfer.

Where van Driessel & François-Lavet (2021) are silent or loose: C_d = 5 is the value of the CRAR
paper they cite (François-Lavet et al., 2019), not a number they give; γ, ε schedule, target
period and layer widths are ours. They type r̂ as [0, 1], but the meta-labyrinth pays −0.1 per
step, so the reward head is linear. L_Q is their plain squared error (not Huber), and Y masks the
bootstrap at terminal steps, which their formula leaves implicit (its γ is the tuple's discount,
0 at a terminal).

Beyond the paper, off by default: ``n_step`` > 1 bootstraps Y from n steps ahead (Rainbow's
multi-step target, for sparse rewards that one-step backups carry back slowly), and
``plan_depth`` > 0 acts on values planned through the learned model.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.agents.protocol import Embeds
from lightning_wm.agents.value_based import ValueBasedAgent
from lightning_wm.losses import (crar_d1, crar_d2, crar_transition_loss, double_q_target,
                                  n_step_return)
from lightning_wm.nets.grid import GridHead
from lightning_wm.nets.heads import MLPHead

#: the meta-labyrinth draws every maze cell as a 6×6-pixel block; the conv encoder keeps one
#: embedding cell per maze cell (48×48 -> 8×8), which is what the paper's 8×8×3 state implies
BLOCK = 6


class DenseEncoder(MLPHead):
    """Flattened observation -> abstract state (``hidden`` MLP layers, linear ``out``)."""

    def __init__(self, obs_shape: tuple[int, ...], abstract_dim: int, hidden: int, layers: int):
        in_dim = 1
        for d in obs_shape:
            in_dim *= int(d)
        super().__init__(in_dim, abstract_dim, hidden, layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return super().forward(obs.flatten(1))


class ValueBumps(nn.Module):
    """Each pixel value v -> ``k`` Gaussian bumps exp(−((v − c_j) / w)²), c_j evenly spaced over
    [−1, 1] and w their spacing / 2.

    Tiles differ by 0.25 in value; telling them apart from the raw value takes large first-layer
    weights, which Adam grows slowly (a conv on raw tile values had not learned the key reward
    after 1200 updates; on bumps it reached 99 % accuracy). The bumps cover the whole range
    evenly, so they favour no rendering: inverse visuals are as easy to read as normal ones.
    """

    def __init__(self, k: int = 17) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(-1.0, 1.0, k).view(1, k, 1, 1))
        self.width = 1.0 / (k - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, H, W] -> [B, k, H, W]
        return torch.exp(-((x - self.centres) / self.width) ** 2)


class ConvEncoder(nn.Module):
    """(H, W) image -> (channels, H/6, W/6) feature map, flattened; ``out`` is a 1×1 conv."""

    def __init__(self, obs_shape: tuple[int, int], channels: int = 3, width: int = 32,
                 stem: str = "pool") -> None:
        super().__init__()
        if len(obs_shape) != 2 or obs_shape[0] % BLOCK or obs_shape[1] % BLOCK:
            raise ValueError(f"conv encoder needs an (H, W) image with sides divisible by {BLOCK}, "
                             f"got {obs_shape}")
        if stem == "pool":  # two poolings (2, then 3) shrink each 6×6 block to one cell
            first = [nn.Conv2d(1, width, 3, padding=1), nn.ELU(), nn.MaxPool2d(2),
                     nn.Conv2d(width, width, 3, padding=1), nn.ELU(), nn.MaxPool2d(3)]
        elif stem == "patch":  # one 6×6 stride-6 conv reads each block: ~50× cheaper on a CPU
            first = [nn.Conv2d(1, width, BLOCK, stride=BLOCK), nn.ELU(),
                     nn.Conv2d(width, width, 3, padding=1), nn.ELU()]
        elif stem == "bumps":  # the patch stem on value bumps (see ValueBumps)
            first = [ValueBumps(), nn.Conv2d(17, width, BLOCK, stride=BLOCK), nn.ELU(),
                     nn.Conv2d(width, width, 3, padding=1), nn.ELU()]
        elif stem == "tiles":  # bumps of each block's mean: on uniform blocks the same function
            # class as "bumps" (its 6×6 kernel sums to a 1×1 one), ~36× fewer bump evaluations
            first = [nn.AvgPool2d(BLOCK), ValueBumps(), nn.Conv2d(17, width, 1), nn.ELU(),
                     nn.Conv2d(width, width, 3, padding=1), nn.ELU()]
        else:
            raise ValueError(f"stem must be 'pool', 'patch', 'bumps' or 'tiles', not {stem!r}")
        self.hidden = nn.Sequential(*first, nn.Conv2d(width, width, 3, padding=1), nn.ELU())
        self.out = nn.Conv2d(width, channels, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(obs.unsqueeze(1))).flatten(1)


def grid_heads(grid: tuple[int, int, int], action_dim: int, width: int) -> dict[str, nn.Module]:
    """Conv heads on the 8×8×3 map (see :mod:`lightning_wm.nets.grid`): local dynamics and
    reward read a 5×5 neighbourhood; Q and discount also see the whole grid (dilations 2 and 4),
    since a key's value and the last key's terminal both depend on distant cells."""
    c = grid[0]
    return {
        "transition": GridHead(grid, c, action_dim, width, (1, 1)),
        "reward": GridHead(grid, 1, action_dim, width, (1, 1), pool=True),
        "discount": GridHead(grid, 1, action_dim, width, (1, 2, 4), pool=True),
        "q": GridHead(grid, action_dim, 0, width, (1, 2, 4, 1), pool=True),
    }


def conv_abstract_dim(obs_shape: tuple[int, int], channels: int = 3) -> int:
    return channels * (obs_shape[0] // BLOCK) * (obs_shape[1] // BLOCK)


class CRARAgent(ValueBasedAgent, Embeds):
    sequence_length = 2

    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, abstract_dim: int | None = None,
                 encoder: str = "dense", hidden: int = 64, layers: int = 2, lr: float = 5e-4,
                 gamma: float = 0.9, c_d: float = 5.0, eps_start: float = 1.0,
                 eps_end: float = 0.1, eps_steps: int = 10_000, target_every: int = 500,
                 conv_channels: int = 3, conv_width: int = 32, conv_stem: str = "pool",
                 heads: str = "mlp", plan_depth: int = 0, n_step: int = 1) -> None:
        obs_shape = tuple(int(d) for d in obs_shape)
        if plan_depth < 0:
            raise ValueError(f"plan_depth must be 0 (act on Q) or more, got {plan_depth}")
        if n_step < 1:
            raise ValueError(f"n_step must be 1 (the paper's one-step target) or more, got {n_step}")
        if encoder == "dense":
            abstract_dim = 2 if abstract_dim is None else abstract_dim  # paper §5.1: two neurons
            enc: nn.Module = DenseEncoder(obs_shape, abstract_dim, hidden, layers)
        elif encoder == "conv":
            implied = conv_abstract_dim(obs_shape, conv_channels)
            if abstract_dim not in (None, implied):
                raise ValueError(f"a conv encoder on {obs_shape} gives {implied} dims, "
                                 f"not abstract_dim={abstract_dim}")
            abstract_dim = implied
            enc = ConvEncoder(obs_shape, conv_channels, conv_width, conv_stem)
        else:
            raise ValueError(f"encoder must be 'dense' or 'conv', got {encoder!r}")
        if heads == "mlp":
            xa = abstract_dim + action_dim
            parts = {"transition": MLPHead(xa, abstract_dim, hidden, layers),
                     "reward": MLPHead(xa, 1, hidden, layers),
                     "discount": MLPHead(xa, 1, hidden, layers),
                     "q": MLPHead(abstract_dim, action_dim, hidden, layers)}
        elif heads == "grid":
            if encoder != "conv":
                raise ValueError("heads='grid' needs the conv encoder's map-shaped abstract state")
            parts = grid_heads((conv_channels, obs_shape[0] // BLOCK, obs_shape[1] // BLOCK),
                               action_dim, hidden)
        else:
            raise ValueError(f"heads must be 'mlp' or 'grid', got {heads!r}")
        # the paper's buffered e⁻ and Q⁻ are the target copies of encoder and q
        super().__init__({"encoder": enc, **parts}, ("encoder", "q"), action_dim)
        self.save_hyperparameters()
        self.hparams.abstract_dim = abstract_dim
        self.obs_shape, self.abstract_dim = obs_shape, abstract_dim
        self.sequence_length = n_step + 1  # replay windows of n transitions

    # -- model pieces ---------------------------------------------------------------------------
    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Abstract state x = e(obs); accepts one observation or a batch of them."""
        obs = torch.as_tensor(obs, device=self.device).float()
        single = obs.dim() == len(self.obs_shape)
        x = self.components["encoder"](obs.unsqueeze(0) if single else obs)
        return x.squeeze(0) if single else x

    def _xa(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, action], -1)

    def predict(self, x: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        """One imagined step from abstract state ``x`` under one-hot ``action``."""
        xa = self._xa(x, action)
        return {
            "x_next": x + self.components["transition"](xa),
            "reward": self.components["reward"](xa).squeeze(-1),
            "discount": torch.sigmoid(self.components["discount"](xa)).squeeze(-1),
        }

    def plan_q(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        """Q^d(x, a) = r̂(x, a) + γ̂(x, a) · max_a' Q^{d−1}(x + Δx(x, a), a'), with Q^0 = Q: the
        CRAR paper's planning through the learned model, every branch expanded (4^d leaves)."""
        if depth == 0:
            return self.components["q"](x)
        b, n = x.shape[0], self.action_dim
        actions = torch.eye(n, device=x.device).repeat(b, 1)  # [b·n, n]: each action per state
        step = self.predict(x.repeat_interleave(n, 0), actions)
        value = self.plan_q(step["x_next"], depth - 1).max(-1).values
        return (step["reward"] + step["discount"] * value).view(b, n)

    def act(self, obs, state, explore):
        x = self.embed(obs)
        single = x.dim() == 1
        q = self.plan_q(x.unsqueeze(0) if single else x, self.hparams.plan_depth)
        return self.epsilon_greedy(q.squeeze(0) if single else q, explore), state

    # -- losses ---------------------------------------------------------------------------------
    def loss_terms(self, batch):
        # a window of n transitions: Q learns from its first (an n-step target), the model and
        # structure losses from its last, which is the one reward-skewed replay picks; with n = 1
        # both are the single transition of the paper
        n = batch["obs"].shape[1] - 1
        obs, last_obs = batch["obs"][:, 0].float(), batch["obs"][:, n].float()
        reward = batch["reward"][:, 1:].float()
        terminal = batch["is_terminal"][:, 1:].float()
        gamma = self.hparams.gamma
        enc = self.components["encoder"]
        x0, x_next = enc(obs), enc(last_obs)
        x = x0 if n == 1 else enc(batch["obs"][:, n - 1].float())
        with torch.no_grad():
            # double DQN (van Driessel & François-Lavet, 2021, §4.2): online Q(x', ·) picks a',
            # buffered Q⁻(e⁻(s'), ·) scores it
            ret, ended = n_step_return(reward, terminal, gamma)
            y = double_q_target(ret, ended, gamma ** n, self.components["q"](x_next),
                                self.target["q"](self.target["encoder"](last_obs)))
        q_taken = (self.components["q"](x0) * batch["action"][:, 1].float()).sum(-1)
        reward, terminal, action = reward[:, -1], terminal[:, -1], batch["action"][:, n].float()
        xa = self._xa(x, action)
        delta = self.components["transition"](xa)
        r_hat = self.components["reward"](xa).squeeze(-1)
        g_hat = torch.sigmoid(self.components["discount"](xa)).squeeze(-1)
        # random pairs: a shuffled batch against itself shifted by one, so no state meets itself
        perm = torch.randperm(len(x), device=x.device)
        c_d = self.hparams.c_d
        return {
            "q/td": F.mse_loss(q_taken, y),                       # (Q(x, a) − Y)²
            "reward/mse": F.mse_loss(r_hat, reward),              # |r − r̂(x, a)|²
            "discount/mse": F.mse_loss(g_hat, gamma * (1.0 - terminal)),  # |γ − γ̂(x, a)|²
            "transition/mse": crar_transition_loss(x, delta, x_next),
            "structure/d1": crar_d1(x[perm], x[perm.roll(1)], c_d),
            "structure/d1_succ": crar_d1(x, x_next, c_d),        # L'_d1
            "structure/d2": crar_d2(x),
        }
