"""Dreamer: a world model learned from sequences, an actor-critic learned in imagination.

Dreamer V1 (Hafner et al., "Dream to Control: Learning Behaviors by Latent Imagination", 2020,
Algorithm 1), as the FTL paper (Sasso, Sabatelli and Wiering, "Fractional Transfer Learning for
Deep Model-Based Reinforcement Learning", 2021) trains and transfers it. Components, all
addressable by transfer:

- ``encoder``: o_t -> e_t (4-layer CNN on 64×64 pixels, or an MLP on vector observations);
- ``representation``: posterior q(s_t | h_t, e_t);
- ``transition``: GRU + prior p(s_t | h_t); ``transition.action_input`` are its action weights;
- ``decoder``: p(o_t | s_t, h_t);  ``reward``: p(r_t | s_t, h_t);  ``value``: v(s_t, h_t);
- ``actor``: tanh-Gaussian π(a_t | s_t, h_t).

:class:`DreamerAgent` is composed, not subclassed: a world model
(:class:`~lightning_wm.agents.parts.world_model.WorldModel`, which owns its loss), a behaviour (here
:class:`~lightning_wm.agents.parts.behaviour.DynamicsActorCritic`) and the agent's loss-weight
table. A :class:`~lightning_wm.agents.parts.recipe.Recipe` chooses the parts; DreamerV2
(:mod:`lightning_wm.agents.dreamer_v2`) is the same agent with V2's recipe.

One update (:meth:`DreamerAgent.update`) runs the three phases of Algorithm 1 with three Adam
optimisers: dynamics learning on every stream of the batch, imagination of ``horizon`` steps from
every posterior state of the main stream, then the actor (maximise V_λ) and the critic (regress
V_λ). Each group's loss goes through :meth:`~lightning_wm.agents.base.Agent.group_loss`, so
callbacks' extra terms and term hooks apply to ``model``, ``actor`` and ``value`` alike.

Meta-model transfer (Sasso, Sabatelli and Wiering, "Multi-Source Transfer Learning for Deep
Model-Based Reinforcement Learning", TMLR, 2023: meta-model transfer learning, Algorithm 4): with
``meta_sources = N`` the reward head reads [s, h, m_θ1(s, h), …, m_θN(s, h)], the predicted means
of N frozen source reward models held in ``meta_rewards`` (not components: transfer and the
optimisers never see them; they live in the checkpoint).
:class:`lightning_wm.transfer.meta_model.MetaModelTransfer` installs them.

Where we differ from Dreamer V1's code: the world model is stepped before the imagination is built
(V1's code computes all three losses with the pre-update model); the greedy action is tanh(mean)
instead of V1's mode estimate from 100 samples; likelihoods drop their constants (0.5·squared
error); ``kl_scale`` is the loss weight of ``transition/kl``; ``actor_ent`` > 0 adds a
squashed-entropy bonus to the actor (off by default, as in V1; :class:`DynamicsActorCritic` says
when it is needed).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import torch
from torch import nn

from lightning_wm.agents.base import Agent
from lightning_wm.agents.configs import (DEFAULT_SIZE, DREAMER_DEFAULTS, DREAMER_SIZES,
                                         resolve_dreamer)
from lightning_wm.agents.parts import (DynamicsActorCritic, Recipe, WorldModel,
                                       WorldModelOptions, compiled, frozen, plain_backward,
                                       reward_model, step_group)
from lightning_wm.agents.parts.world_model import COMPONENTS as WORLD_MODEL
from lightning_wm.agents.parts.policy_gradient import one_step_advantage
from lightning_wm.agents.protocol import (MAIN, Batch, Batches, DataNeeds, ExplicitPolicy,
                                          Instances, MetaRewards, Reconstructs, Terms)
from lightning_wm.nets.dense import ActorHead
from lightning_wm.nets.heads import MLPHead
from lightning_wm.nets.latent import GaussianLatent
from lightning_wm.nets.rssm import RSSM, State

#: everything not a size, and the ``size`` presets (in :mod:`lightning_wm.agents.configs`, which
#: suite validation reads without importing torch)
DEFAULTS: dict[str, Any] = DREAMER_DEFAULTS
SIZES: dict[str, dict[str, Any]] = DREAMER_SIZES

#: the paper's training loop (Sasso et al. (2023), Algorithm 1) as a ``TrainingConfig``: 5 random
#: seed episodes, 100 updates per 1000 env steps, batches of 50. The paper counts simulator
#: frames; with action repeat 2 and 1000-frame episodes that is 2500 and 500 agent steps (what the
#: collector counts).
PAPER_TRAINING: dict[str, int] = dict(collect_every=500, updates_per_collect=100,
                                      prefill=2500, batch_size=50)

#: how far inside (-1, 1) instance transfer reads a continuous action (atanh(1 − 1e-6) ≈ 7.3)
_EDGE = 1e-6
#: each group's learning rate option (Algorithm 1: θ, ψ, φ)
_LR = {"model": "model_lr", "value": "value_lr", "actor": "actor_lr"}
#: the order an update steps the groups in; Lightning counts the last one's step
STEP_ORDER = ("model", "actor", "value")


def _heads(cfg: Mapping[str, Any], feature_size: int, action_dim: int) -> dict[str, nn.Module]:
    return {"value": MLPHead(feature_size, 1, cfg["units"], cfg["value_layers"]),
            "actor": ActorHead(feature_size, action_dim, cfg["units"], cfg["actor_layers"],
                               cfg["actor_init_std"])}


def _behaviour(cfg: Mapping[str, Any], components: nn.ModuleDict,
               world_model: WorldModel) -> DynamicsActorCritic:
    return DynamicsActorCritic(components, world_model, horizon=cfg["horizon"],
                               gamma=cfg["gamma"], lam=cfg["lam"], actor_ent=cfg["actor_ent"])


#: Dreamer V1: Gaussian latents, a tanh-Gaussian actor trained through the dynamics
RECIPE = Recipe(
    name="Dreamer", defaults=DEFAULTS, sizes=SIZES,
    latent=lambda cfg: GaussianLatent(cfg["stoch"], cfg["latent_min_std"]),
    heads=_heads,
    world_model=lambda cfg: WorldModelOptions(free_nats=cfg["free_nats"]),
    behaviour=_behaviour,
)


def resolve_config(size: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """V1's ``size`` preset + :data:`DEFAULTS`, then ``overrides`` (unknown keys raise a
    TypeError listing the known ones)."""
    return resolve_dreamer(size, overrides)


class DreamerAgent(Agent, Reconstructs, MetaRewards, ExplicitPolicy):
    def __init__(self, obs_shape: tuple[int, ...], action_dim: int, size: str = DEFAULT_SIZE, *,
                 recipe: Recipe = RECIPE, **overrides: Any) -> None:
        cfg = recipe.resolve(size, overrides)
        obs_shape, action_dim = tuple(int(d) for d in obs_shape), int(action_dim)
        latent = recipe.latent(cfg)
        components = recipe.components(cfg, obs_shape, action_dim, latent)
        super().__init__(components, {"model": [n for n in components if n in WORLD_MODEL],
                                      "value": ["value"], "actor": ["actor"]})
        self.save_hyperparameters({"obs_shape": list(obs_shape), "action_dim": action_dim,
                                   "size": size, **cfg})
        self.automatic_optimization = False  # three optimisers stepped in one update
        self.obs_shape, self.action_dim, self.latent = obs_shape, action_dim, latent
        self.sequence_length = int(cfg["seq_len"])
        self.feature_size = latent.sample_size + int(cfg["deter"])  # [s, h]
        n = int(cfg["meta_sources"])
        self.meta_rewards = nn.ModuleList([reward_model(cfg, self.feature_size)
                                           for _ in range(n)]).requires_grad_(False)
        # set once source models are installed; a checkpoint carries it (and them)
        self.register_buffer("meta_ready", torch.tensor(n == 0))
        self.world_model = WorldModel(self.components, latent, self.meta_rewards,
                                      recipe.world_model(cfg))
        self.behaviour = recipe.behaviour(cfg, self.components, self.world_model)
        # a slow critic is state of the agent (checkpointed as ``target_value``), and so is the
        # count of updates that schedules its syncs; neither exists without one
        self.target_value = self.behaviour.target
        self.register_buffer("critic_updates", None if self.target_value is None
                             else torch.zeros((), dtype=torch.long))
        self._absorbing = recipe.absorbing(cfg)
        self._standalone: dict[str, torch.optim.Optimizer] | None = None

    def data_needs(self) -> DataNeeds:
        return DataNeeds(self.sequence_length, self._absorbing)

    @property
    def rssm(self) -> RSSM:
        return self.world_model.rssm

    def predict_reward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.world_model.predict_reward(feature)

    # -- meta-model transfer ----------------------------------------------------------------------
    @torch.no_grad()
    def set_meta_rewards(self, sources: list[nn.Module | Mapping[str, torch.Tensor]]) -> None:
        """Install the N frozen source reward models (modules or their state dicts).

        Their weights are copied into ``meta_rewards`` (shape-checked), so the architecture is
        this agent's reward head without meta inputs, and a checkpoint restores them.
        """
        if len(sources) != len(self.meta_rewards):
            raise ValueError(f"agent built with meta_sources={len(self.meta_rewards)}, "
                             f"got {len(sources)} source reward model(s)")
        for i, (slot, src) in enumerate(zip(self.meta_rewards, sources)):
            state = src.state_dict() if isinstance(src, nn.Module) else src
            try:
                slot.load_state_dict(state)
            except RuntimeError as e:
                raise ValueError(f"source reward model {i} does not fit this agent's reward "
                                 f"head (units/layers/latent sizes must match): {e}") from e
        self.meta_rewards.requires_grad_(False)
        self.meta_ready.fill_(True)

    def meta_rewards_installed(self) -> bool:
        return bool(self.meta_ready)

    # -- acting ---------------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[State, torch.Tensor]:
        return (self.rssm.initial(batch_size, self.device),
                torch.zeros(batch_size, self.action_dim, device=self.device))

    def reset_state(self, state, done):
        keep = (~done.bool()).float().unsqueeze(-1).to(self.device)
        latent, action = state
        return latent.map(lambda x: x * keep), action * keep

    @torch.no_grad()
    def act(self, obs, state, explore):
        """Filter o_t into the posterior, then act: a sample plus Gaussian noise (``expl_noise``,
        0.3 in the paper) when exploring, the actor's mode otherwise; actions lie in [-1, 1].
        The noise is drawn even when ``expl_noise`` is 0 (DreamerV2), so acting draws the same
        random numbers whatever the option."""
        latent, prev_action = state
        latent = self.world_model.filter_step(latent, prev_action,
                                              torch.as_tensor(obs, device=self.device))
        actor = self.components["actor"]
        feat = latent.feature()
        if explore:
            action = actor(feat)
            action = (action + self.hparams.expl_noise * torch.randn_like(action)).clamp(-1, 1)
        else:
            action = actor.mode(feat)
        return action, (latent, action)

    # -- the explicit policy (REPAINT's callbacks) ------------------------------------------------
    def policy_components(self) -> tuple[str, ...]:
        return ("encoder", "representation", "transition", "actor")

    def _model_of(self, nets: Mapping[str, nn.Module]) -> WorldModel:
        """A world model over ``nets`` (a teacher's encoder, representation and transition): its
        filter, not its losses, which would need the heads a teacher does not carry."""
        return WorldModel(nets, self.latent, nn.ModuleList(), self.world_model.options)

    @torch.no_grad()
    def _filtered(self, batch: Batch, nets: Mapping[str, nn.Module]) -> torch.Tensor:
        """Posterior features ``[B, T, F]`` of the replay windows under ``nets``' world model."""
        states, _, _ = self._model_of(nets).rssm.observe(
            nets["encoder"](batch["obs"]), batch["action"].float(), batch["is_first"])
        return states.feature()

    def policy(self, batch: Batch, nets: Mapping[str, nn.Module] | None = None):
        """π at steps 0…T−2 of every window (each has its action in the window), on the
        posterior states ``nets`` filter from the window's start."""
        nets = self.components if nets is None else nets
        return nets["actor"].dist(self._filtered(batch, nets)[:, :-1])

    def instances(self, batch: Batch) -> Instances:
        """The action chosen at step t (stored with step t+1), the one-step advantage
        r + γ(1 − terminal)V(s') − V(s) under this agent's critic and world model, and π at
        step t, all on one posterior filtering of the window (a second one would draw other
        latent samples, so the kept steps and their ratios would disagree)."""
        feature = self._filtered(batch, self.components)
        with torch.no_grad():
            value = self.components["value"](feature).squeeze(-1)
            advantage = one_step_advantage(self.world_model.reward_target(batch["reward"]),
                                           value, batch["is_terminal"], batch["is_first"],
                                           self.hparams.gamma)
        action = batch["action"][:, 1:].float()
        if not self.hparams.get("discrete", False):
            # a saturated ±1 (tanh of a large u in float32) has no finite density; both policies
            # read the same clipped action, so the ratio stays a ratio of densities
            action = action.clamp(-1.0 + _EDGE, 1.0 - _EDGE)
        return Instances(action, advantage, self.components["actor"].dist(feature[:, :-1]))

    @torch.no_grad()
    def act_with(self, nets, obs, is_first, state, generator):
        """Filter ``obs`` with ``nets``' world model and draw from their actor (no exploration
        noise: the behaviour policy is π_teacher itself). The latent sample and the action draw
        use a seed taken from ``generator``, so the student's random streams never move."""
        model, n = self._model_of(nets), len(obs)
        if state is None:
            state = (model.rssm.initial(n, obs.device), torch.zeros(n, self.action_dim))
        keep = (~is_first.bool()).float().unsqueeze(-1)
        latent, previous = state[0].map(lambda x: x * keep), state[1] * keep
        seed = int(torch.randint(2 ** 62, (), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            latent = model.filter_step(latent, previous, obs)
            action = nets["actor"](latent.feature())
        return action, (latent, action)

    @torch.no_grad()
    def reconstruct(self, obs, action) -> tuple[torch.Tensor, torch.Tensor]:
        return self.world_model.reconstruct(torch.as_tensor(obs, device=self.device),
                                            torch.as_tensor(action, device=self.device))

    # -- one update -------------------------------------------------------------------------------
    def update(self, batches: Batches, optimisers: Mapping[str, Any] | None = None,
               backward: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        """Algorithm 1's three phases on ``{stream: batch}``; each group is stepped by
        :func:`~lightning_wm.agents.parts.optimise.step_group` with ``optimisers[group]`` and
        ``backward`` (default: this agent's own Adam optimisers and ``Tensor.backward``, for use
        outside a Trainer). Returns the sum of the (detached) terms."""
        self._check_ready(batches)
        optimisers = self._standalone_optimisers() if optimisers is None else optimisers
        step = functools.partial(self._step, batches=batches, optimisers=optimisers,
                                 backward=plain_backward if backward is None else backward)
        if self.critic_updates is not None:
            self.behaviour.before_update(int(self.critic_updates))
        world_model_loss, imagine = self._loss_functions()
        model_terms, states = self._model_terms(batches, world_model_loss)
        model_terms = step("model", model_terms)
        start = states.map(lambda x: x.detach().flatten(0, 1))
        start_terminal = batches[MAIN]["is_terminal"].detach().flatten(0, 1).float()
        with frozen(self._params_outside("actor")):  # actor gradients reach the actor only
            trajectory = imagine(start, start_terminal)
            actor_terms, targets = self.behaviour.actor_terms(trajectory)
        actor_terms = step("actor", actor_terms)
        value_terms = step("value", self.behaviour.critic_terms(trajectory, targets))
        if self.critic_updates is not None:
            self.critic_updates.add_(1)
        terms = {**model_terms, **actor_terms, **value_terms}
        self.log_terms(terms)
        return sum(t.detach() for t in terms.values())

    def _check_ready(self, batches: Batches) -> None:
        if MAIN not in batches:
            raise KeyError(f"update takes {{stream: batch}} with a '{MAIN}' stream, got the keys "
                           f"{sorted(batches)}")
        if not self.meta_rewards_installed():
            raise RuntimeError(f"meta_sources={len(self.meta_rewards)} but no source reward "
                               "models are installed (use the 'meta_model' transfer callback)")

    def _loss_functions(self) -> tuple[Callable, Callable]:
        """The world model's loss and the behaviour's imagination, compiled with ``compile``."""
        if not self.hparams.compile:
            return self.world_model.loss, self.behaviour.imagine
        return (functools.partial(compiled(type(self.world_model).loss), self.world_model),
                functools.partial(compiled(type(self.behaviour).imagine), self.behaviour))

    def _model_terms(self, batches: Batches, loss: Callable) -> tuple[Terms, State]:
        """World-model terms of every stream (those of a stream other than ``main`` prefixed
        ``"stream:"``) and the main stream's posterior states, where imagination starts."""
        terms, states = loss(batches[MAIN])
        others = {s: b for s, b in batches.items() if s != MAIN}
        terms.update(self.stream_terms(others, loss_terms=lambda b: loss(b)[0]))
        return terms, states

    def _step(self, group: str, terms: Terms, batches: Batches, optimisers: Mapping[str, Any],
              backward: Callable[[torch.Tensor], None]) -> Terms:
        total, terms = self.group_loss(group, terms, batches)
        step_group(optimisers[group], total, backward, self.hparams.clip)
        return terms

    def _params_outside(self, group: str) -> list[nn.Parameter]:
        return [p for g, names in self.optimiser_groups().items() if g != group
                for name in names for p in self.components[name].parameters()]

    def _standalone_optimisers(self) -> dict[str, torch.optim.Optimizer]:
        if self._standalone is None:  # outside a Trainer (unit tests, notebooks)
            self._standalone = dict(zip(self.optimiser_groups(), self.configure_optimizers()))
        return self._standalone

    # -- Lightning --------------------------------------------------------------------------------
    def training_step(self, dataloader_iter):
        # pulls the batch itself, as Agent.training_step does (no prefetch ahead of collection)
        batches, _, _ = next(dataloader_iter)
        batches = self.trainer.strategy.batch_to_device(batches)
        return self.update(batches, self._trainer_optimisers(), self.manual_backward)

    def _trainer_optimisers(self) -> dict[str, Any]:
        """Lightning's optimisers by group. Each ``LightningOptimizer.step()`` counts one global
        step, and ``global_step`` must count updates: the group stepped last steps through its
        LightningOptimizer, the others through the optimisers they wrap."""
        wrapped = dict(zip(self.optimiser_groups(), self.optimizers()))
        return {g: o if g == STEP_ORDER[-1] else o.optimizer for g, o in wrapped.items()}

    def configure_optimizers(self):
        h = self.hparams
        return [torch.optim.Adam([p for name in names for p in self.components[name].parameters()],
                                 lr=h[_LR[group]], eps=h.adam_eps)
                for group, names in self.optimiser_groups().items()]
