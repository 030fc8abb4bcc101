"""EfficientZero (Ye, Liu, Kurutach, Abbeel and Gao, "Mastering Atari Games with Limited Data",
NeurIPS 2021) as a LightningModule: MuZero's learned model and search plus a value-prefix head,
a SimSiam temporal-consistency loss and reanalysed targets.

Components (``nets.efficientzero.build_efficientzero`` at ``size``): ``representation``,
``dynamics`` (with its value-prefix LSTM), ``prediction`` (policy and value), ``projection`` and
``predictor``; one optimiser group trains them all. ``target`` is a frozen copy of every
component (not a component: transfer never addresses it; a checkpoint carries it), re-synced
before every ``target_every``-th update, the first included, so it starts from the initial or
transferred weights. It reanalyses every window: bootstrap values and policy targets come from
it, so the replay stores no search statistics.

Acting: representation and prediction at the root (every network in eval mode: BatchNorm
everywhere), then the batched search (Gumbel by default, pUCT with Dirichlet noise at ``paper``
size), whose step wraps dynamics and prediction (:class:`LatentStep`). Exploring: the Gumbel
search's noisy choice, or a visit-count draw at ``temperature``, halved at each update count of
``temperature_halvings`` (EfficientZero's schedule); greedy: the noise-free choice (pUCT: the most
visited action, ties to the larger Q).

One update on a window of K + n + 1 steps (the index mapping is in
:mod:`~lightning_wm.agents.parts.efficientzero_loss`): the root is the observation at replay
index 0; K dynamics steps with the actions taken, the latent fed to the next step with its
gradient halved (MuZero's ``scale_gradient``), the LSTM reset after every ``lstm_horizon`` steps.
Named terms, each a per-sample sum over unroll positions divided by K, averaged over the batch
(EfficientZero's 1/K scaling), masked past episode ends:

- ``prediction/value``: value CE at positions 0..K against n-step targets bootstrapped with the
  target network's value at replay index k + n; with ``off_policy_budget`` B > 0, n shrinks per
  sample by one for every 0.3 B steps of the window's age (EfficientZero's off-policy
  correction; the replay then gives each window's age), otherwise n is fixed;
- ``prediction/policy``: policy CE at positions 0..K against the target network's search at
  the observation of replay index k (visit distribution or Gumbel improved policy). The pUCT
  search mixes the root's Dirichlet noise into its prior here too (``reanalyse_noise``, on by
  default), as EfficientZero's reanalysis does: without it, a near-uniform prior sends the
  first simulations to the lowest-indexed actions (pUCT's tie-break) and a search of few
  simulations keeps exploiting them, so the targets teach the policy that bias;
- ``dynamics/value_prefix``: value-prefix CE at steps 1..K;
- ``projection/consistency``: −cos(predictor(projection(unrolled latent k)),
  sg(projection(representation(o_k)))) at steps 1..K.

Weights: ``EFFICIENTZERO_LOSS_WEIGHTS`` (value 0.25, the rest 1, consistency 2) through the
loss-scale table, so callbacks may reschedule them.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lightning_wm.agents.base import ALL, Agent
from lightning_wm.agents.configs import EFFICIENTZERO_DEFAULT_SIZE, resolve_efficientzero
from lightning_wm.agents.parts.efficientzero_loss import (LatentStep, search, state_masks,
                                                          taken_actions, transitions)
from lightning_wm.agents.parts.muzero_targets import (EFFICIENTZERO_LOSS_WEIGHTS,
                                                      bootstrap_offsets, consistency_loss,
                                                      cross_entropy, learning_rate_factor,
                                                      n_step_value_targets, off_policy_horizon,
                                                      scalar_cross_entropy, scale_gradient,
                                                      value_prefix_targets, visit_temperature)
from lightning_wm.agents.parts.optimise import plain_backward, step_group
from lightning_wm.agents.protocol import MAIN, AbsorbingOptions, Batches, DataNeeds, Terms
from lightning_wm.nets.efficientzero import build_efficientzero

#: term name -> the loss-scale table's key in EFFICIENTZERO_LOSS_WEIGHTS
TERMS = {"prediction/value": "value", "prediction/policy": "policy",
         "dynamics/value_prefix": "value_prefix", "projection/consistency": "consistency"}


@contextlib.contextmanager
def modes(module: nn.Module, train: bool, keep_frozen_stats: bool = False) -> Iterator[None]:
    """Every sub-module of ``module`` in train (or eval) mode inside the block, then back to the
    modes it had. ``keep_frozen_stats``: BatchNorm layers whose parameters are all frozen stay
    in eval mode, so a frozen component keeps its function, running statistics included."""
    before = [(m, m.training) for m in module.modules()]
    for m, _ in before:
        frozen = (keep_frozen_stats and isinstance(m, _BatchNorm)
                  and not any(p.requires_grad for p in m.parameters()))
        m.train(train and not frozen)
    try:
        yield
    finally:
        for m, mode in before:
            m.train(mode)


class EfficientZeroAgent(Agent):
    def __init__(self, obs_shape: tuple[int, ...], action_dim: int,
                 size: str = EFFICIENTZERO_DEFAULT_SIZE, **overrides: Any) -> None:
        cfg = resolve_efficientzero(size, overrides)
        obs_shape, action_dim = tuple(int(d) for d in obs_shape), int(action_dim)
        if len(obs_shape) not in (1, 3):
            raise ValueError(f"efficientzero needs a flat vector or [C, H, W] observation, "
                             f"got {obs_shape}")
        nets = build_efficientzero(size, obs_shape, action_dim, 2 * int(cfg["value_support"]) + 1,
                                   2 * int(cfg["reward_support"]) + 1, cfg["action_encoding"],
                                   bool(cfg["normalise_latent"]))
        super().__init__(dict(nets.items()))
        self.save_hyperparameters({"obs_shape": list(obs_shape), "action_dim": action_dim,
                                   "size": size, **cfg})
        self.automatic_optimization = False  # update steps its own optimiser (step_group)
        self.cfg, self.action_dim = cfg, action_dim
        self.unroll, self.n_step = int(cfg["unroll"]), int(cfg["n_step"])
        self.sequence_length = self.unroll + self.n_step + 1
        self.target = self._copy_components()
        # updates done: schedules the target syncs and survives resume (a checkpoint carries it)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        for term, key in TERMS.items():
            self.set_loss_weight(term, EFFICIENTZERO_LOSS_WEIGHTS[key])
        self._standalone: torch.optim.Optimizer | None = None

    def data_needs(self) -> DataNeeds:
        absorbing = AbsorbingOptions(discrete=True) if self.cfg["absorbing"] else None
        return DataNeeds(sequence_length=self.sequence_length, absorbing=absorbing,
                         data_age=int(self.cfg["off_policy_budget"]) > 0)

    def _horizon(self, batch: Mapping[str, torch.Tensor]) -> int | torch.Tensor:
        """The bootstrap horizon: n, or per sample shortened by the data's age (EfficientZero's
        off-policy correction, on when ``off_policy_budget`` > 0)."""
        budget = int(self.cfg["off_policy_budget"])
        if budget <= 0:
            return self.n_step
        if "age" not in batch:
            raise KeyError("off_policy_budget > 0 needs batches with 'age' (DataNeeds.data_age)")
        return off_policy_horizon(batch["age"], self.n_step, budget)

    # -- the target network -----------------------------------------------------------------------
    def _copy_components(self) -> nn.ModuleDict:
        return copy.deepcopy(self.components).requires_grad_(False)

    def sync_target(self) -> None:
        """Copy every component into the target (rebuilt when a callback added or wrapped one)."""
        if self.target.state_dict().keys() != self.components.state_dict().keys():
            self.target = self._copy_components()
            return
        self.target.load_state_dict(self.components.state_dict())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        # before the weights load: the target must have the (possibly extended) components' layout
        if self.target.state_dict().keys() != self.components.state_dict().keys():
            self.target = self._copy_components()

    # -- acting -----------------------------------------------------------------------------------
    def _step(self, nets: Mapping[str, nn.Module]) -> LatentStep:
        c = self.cfg
        return LatentStep(nets, int(c["lstm_horizon"]), int(c["value_support"]),
                          int(c["reward_support"]))

    @torch.no_grad()
    def plan(self, obs: torch.Tensor, nets: Mapping[str, nn.Module] | None = None,
             explore: bool = False):
        """The search from observations ``[B, ...]`` with ``nets`` (default: the components),
        every network in eval mode; returns the search's result."""
        nets = self.components if nets is None else nets
        step = self._step(nets)
        with contextlib.ExitStack() as stack:
            for name in ("representation", "dynamics", "prediction"):
                stack.enter_context(modes(nets[name], train=False))
            latent = nets["representation"](obs)
            logits, value = step.predict(latent)
            temperature = visit_temperature(int(self.updates), float(self.cfg["temperature"]),
                                            self.cfg["temperature_halvings"])
            return search(step, latent, logits, value, self.cfg, explore,
                          temperature=temperature)

    def act(self, obs: torch.Tensor, state: Any, explore: bool) -> tuple[torch.Tensor, Any]:
        result = self.plan(torch.as_tensor(obs, device=self.device), explore=explore)
        return F.one_hot(result.action, self.action_dim).float(), state

    # -- learning ---------------------------------------------------------------------------------
    @torch.no_grad()
    def reanalyse(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Targets and masks of one window, computed with the target network (eval mode)."""
        K, n, c = self.unroll, self.n_step, self.cfg
        obs = batch["obs"][:, :K + n + 1]
        b, t = obs.shape[:2]
        reward, terminal, valid = transitions(batch)
        step = self._step(self.target)
        with modes(self.target, train=False):
            latent = self.target["representation"](obs.flatten(0, 1))
            logits, value = step.predict(latent)
            roots = latent.unflatten(0, (b, t))[:, :K + 1].flatten(0, 1)
            root_logits = logits.unflatten(0, (b, t))[:, :K + 1].flatten(0, 1)
            root_value = value.view(b, t)[:, :K + 1].flatten()
            policy = search(step, roots, root_logits, root_value, c, explore=False,
                            root_noise=bool(c["reanalyse_noise"])).policy_target
        horizon = self._horizon(batch)
        # each sample's value k + n_b steps on (n_b <= n: inside the window)
        bootstrap = value.view(b, t).gather(1, bootstrap_offsets(horizon, K, b).to(value.device))
        value_target, value_mask = n_step_value_targets(
            reward, terminal, valid, bootstrap, horizon, float(c["gamma"]))
        prefix_target, prefix_mask = value_prefix_targets(
            reward[:, :K], terminal[:, :K], valid[:, :K], int(c["lstm_horizon"]))
        acting, reached = state_masks(terminal, valid)
        return {"value": value_target, "value_mask": value_mask,
                "prefix": prefix_target, "prefix_mask": prefix_mask,
                "policy": policy.view(b, K + 1, -1), "policy_mask": acting[:, :K + 1],
                "consistency_mask": reached[:, 1:K + 1]}

    def loss_terms(self, batch: Mapping[str, torch.Tensor]) -> Terms:
        """The four named terms of one stream's window (see the module docstring)."""
        K, c = self.unroll, self.cfg
        if batch["obs"].shape[1] < self.sequence_length:
            raise ValueError(f"windows of {self.sequence_length} steps needed (unroll "
                             f"{K} + n-step {self.n_step} + 1), got {batch['obs'].shape[1]}")
        targets = self.reanalyse(batch)
        nets = self.components
        obs = batch["obs"][:, :K + 1]
        b = obs.shape[0]
        actions = taken_actions(batch, K)
        # one representation pass: the root (with gradient) and the consistency targets
        encoded = nets["representation"](obs.flatten(0, 1)).unflatten(0, (b, K + 1))
        latent = encoded[:, 0]
        hidden = nets["dynamics"].initial_hidden(b, latent.device, latent.dtype)
        unrolled, prefix_logits = [], []
        for k in range(K):
            latent, logits, hidden = nets["dynamics"](latent, actions[:, k], hidden)
            unrolled.append(latent)
            prefix_logits.append(logits)
            latent = scale_gradient(latent, 0.5)  # into the next step only (MuZero)
            if (k + 1) % int(c["lstm_horizon"]) == 0:
                hidden = nets["dynamics"].reset_hidden(hidden, torch.ones(b, dtype=torch.bool,
                                                                          device=latent.device))
        states = torch.stack([encoded[:, 0], *unrolled], 1)  # positions 0..K
        policy_logits, value_logits = nets["prediction"](states.flatten(0, 1))
        value_logits = value_logits.unflatten(0, (b, K + 1))
        policy_logits = policy_logits.unflatten(0, (b, K + 1))
        online = nets["predictor"](nets["projection"](torch.stack(unrolled, 1).flatten(0, 1)))
        with torch.no_grad():
            aim = nets["projection"](encoded[:, 1:].detach().flatten(0, 1))

        def per_sample(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return (loss * mask.to(loss.dtype)).sum(1).mean() / K

        return {
            "prediction/value": per_sample(scalar_cross_entropy(
                value_logits, targets["value"], int(c["value_support"])), targets["value_mask"]),
            "prediction/policy": per_sample(cross_entropy(policy_logits, targets["policy"]),
                                            targets["policy_mask"]),
            "dynamics/value_prefix": per_sample(scalar_cross_entropy(
                torch.stack(prefix_logits, 1), targets["prefix"], int(c["reward_support"])),
                targets["prefix_mask"]),
            "projection/consistency": per_sample(consistency_loss(online, aim).view(b, K),
                                                 targets["consistency_mask"]),
        }

    def update(self, batches: Batches, optimiser=None, backward=None) -> torch.Tensor:
        """One optimiser step on every stream's terms (``group_loss``: callbacks' terms, hooks and
        weights apply), after syncing the target on schedule. ``optimiser`` and ``backward``
        default to Lightning's under a Trainer, else a standalone optimiser and Tensor.backward."""
        if MAIN not in batches:
            raise KeyError(f"update takes {{stream: batch}} with a '{MAIN}' stream, got "
                           f"{sorted(batches)}")
        optimiser, backward = self._optimiser_and_backward(optimiser, backward)
        if int(self.updates) % int(self.cfg["target_every"]) == 0:
            self.sync_target()
        self._schedule_learning_rate(optimiser)
        with modes(self.components, train=True, keep_frozen_stats=True):
            total, terms = self.group_loss(ALL, self.stream_terms(batches), batches)
            step_group(optimiser, total, backward, float(self.cfg["clip"]))
        _average_norm_statistics(self.components)
        self.updates.add_(1)
        self.log_terms(terms)
        return sum(t.detach() for t in terms.values())

    def _schedule_learning_rate(self, optimiser) -> None:
        """Every group's rate at this update: its initial rate (kept in the group, as torch's
        schedulers keep it) times :func:`learning_rate_factor`; untouched while the schedule is
        constant, so groups a callback gave their own rate keep it."""
        c = self.cfg
        if int(c["lr_warmup"]) == 0 and float(c["lr_decay_rate"]) == 1.0:
            return
        factor = learning_rate_factor(int(self.updates), int(c["lr_warmup"]),
                                      float(c["lr_decay_rate"]), int(c["lr_decay_steps"]))
        for group in optimiser.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor

    def training_step(self, dataloader_iter):
        batches, _, _ = next(dataloader_iter)  # pulled here: no prefetch ahead of collection
        return self.update(self.trainer.strategy.batch_to_device(batches))

    def _optimiser_and_backward(self, optimiser, backward):
        if optimiser is not None:
            return optimiser, backward or plain_backward
        if self._trainer is not None:
            wrapped = self.optimizers()
            assert isinstance(wrapped, LightningOptimizer)
            return wrapped, self.manual_backward
        if self._standalone is None:  # outside a Trainer (unit tests, notebooks)
            self._standalone = self.configure_optimizers()
        return self._standalone, plain_backward

    def configure_optimizers(self):
        c = self.cfg
        params = self.components.parameters()
        if c["optimiser"] == "sgd":
            return torch.optim.SGD(params, lr=float(c["lr"]), momentum=float(c["momentum"]),
                                   weight_decay=float(c["weight_decay"]))
        return torch.optim.Adam(params, lr=float(c["lr"]), weight_decay=float(c["weight_decay"]))


def _average_norm_statistics(components: nn.Module) -> None:
    """Under torch.distributed, every BatchNorm's running statistics averaged over the ranks.
    The update is not a DDP forward, so DDP never broadcasts these buffers, and each rank's
    batches would otherwise leave the ranks acting (in eval mode) with different statistics."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for module in components.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
            for stat in (module.running_mean, module.running_var):
                torch.distributed.all_reduce(stat)
                stat.div_(world)
