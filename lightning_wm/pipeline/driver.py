"""The driver: the RL loop as one explicit object.

It alternates collection phases (``collect_every`` env steps of the agent's exploring policy, or
uniform random actions during ``prefill``) with ``updates_per_collect`` batches, until the
env-step budget is spent. Each batch is ``{stream: batch}``: ``main`` from the online replay the
collector fills (for an on-policy agent: the latest phase's transitions, a
:class:`~lightning_wm.pipeline.sources.SegmentSource`), plus one batch from every other named
source that callbacks added (offline task data, teacher rollouts). The evaluator scores the
agent before each phase that crosses one of its points, and once more at the budget.

Everything a resumed run needs (collector, sources, counters, RNG states) is in
:meth:`Driver.state_dict`; the Lightning data module stores it in every checkpoint.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Iterator, Mapping

import torch

from lightning_wm.agents.protocol import MAIN, Batches
from lightning_wm.data.collector import Collector
from lightning_wm.data.portable import global_numpy_rng, set_global_numpy_rng
from lightning_wm.pipeline.config import TrainingConfig
from lightning_wm.pipeline.evaluator import AgentPolicy, Evaluator
from lightning_wm.pipeline.sources import ReplaySource, SegmentSource, Source

#: ``log(metrics, env_steps)``: where evaluation scores go (the trainer's logger on rank 0)
Log = Callable[[dict[str, float], int], None]


class Driver:
    def __init__(self, collector: Collector, main: ReplaySource | SegmentSource,
                 evaluator: Evaluator, config: TrainingConfig, local_budget: int,
                 world: int = 1) -> None:
        self.collector, self.evaluator, self.config = collector, evaluator, config
        self.sources: dict[str, Source] = {MAIN: main}
        self.local_budget, self.world = local_budget, world
        self.phase = 0
        self.pending_updates = 0
        self.episode_returns: list[tuple[int, float]] = []
        self.phase_listeners: list[Callable[[int], None]] = []
        self._policy: AgentPolicy | None = None
        self._pending_rng: tuple | None = None

    @property
    def main(self) -> ReplaySource | SegmentSource:
        return self.sources[MAIN]

    @property
    def env_steps(self) -> int:
        """Env steps of the whole run (all ranks), the unit of budgets and curves."""
        return self.collector.env_steps * self.world

    @property
    def at_phase_boundary(self) -> bool:
        """No update of the current phase is pending: the moment a checkpoint holds exactly the
        replay, counters and RNG states of a collection-phase boundary."""
        return self.pending_updates == 0

    def add_source(self, name: str, source: Source) -> None:
        """A further stream; its batches join every update from the next one on."""
        if not name or ":" in name:
            raise ValueError(f"stream name {name!r} must be non-empty and hold no ':'")
        if name in self.sources:
            raise ValueError(f"stream '{name}' exists already (streams: {sorted(self.sources)})")
        self.sources[name] = source

    # -- the loop --------------------------------------------------------------------------------
    def batches(self, agent, log: Log | None = None) -> Iterator[Batches]:
        """Collect and yield update batches until the budget is spent, then evaluate finally."""
        self._restore_global_rng()
        while True:
            if self.pending_updates == 0:
                if self.collector.env_steps >= self.local_budget:
                    if self.evaluator.due(self.env_steps, final=True):
                        self.evaluator.evaluate(agent, self.collector, self.env_steps, log)
                    return
                self.run_phase(agent, log)
                continue
            self.pending_updates -= 1
            yield self.sample()

    def run_phase(self, agent, log: Log | None = None) -> None:
        cfg = self.config
        if self.evaluator.due(self.env_steps, final=False):
            self.evaluator.evaluate(agent, self.collector, self.env_steps, log)
        steps = self.collector.env_steps
        n = min(cfg.collect_every, self.local_budget - steps)
        random_phase = steps < cfg.prefill
        if random_phase:
            n = min(n, cfg.prefill - steps)
        policy = None if random_phase else self._train_policy(agent)
        if isinstance(self.main, SegmentSource):  # on-policy: this phase's steps only
            returns = self.main.refill(policy, self.collector, n)
        else:
            returns = self.collector.collect(policy, n, self.main.replay)
        for r in returns:
            self.episode_returns.append((self.env_steps, r))
        agent.env_steps = self.env_steps
        self.phase += 1
        for name, source in self.sources.items():
            if name != MAIN:
                source.after_phase(self.env_steps)
        if self.collector.env_steps >= cfg.prefill and self.main.ready():
            self.pending_updates = cfg.updates_per_collect
        for listener in self.phase_listeners:
            listener(self.env_steps)

    def _train_policy(self, agent) -> AgentPolicy:
        # one policy object across phases: a recurrent state carries over episodes in flight
        if self._policy is None or self._policy.agent is not agent:
            self._policy = AgentPolicy(agent, explore=True)
        return self._policy

    def sample(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{stream: batch}``: the main stream always, every other stream once it holds enough
        data for a batch (a teacher's replay fills over the first phases)."""
        batches = {MAIN: self.main.sample()}
        for name, source in self.sources.items():
            if name != MAIN and source.ready():
                batches[name] = source.sample()
        return batches

    def close(self) -> None:
        self.collector.close()
        for source in self.sources.values():
            source.close()

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "collector": self.collector.state_dict(),
            "sources": {name: s.state_dict() for name, s in self.sources.items()},
            "evaluator": self.evaluator.state_dict(),
            "phase": self.phase, "pending_updates": self.pending_updates,
            "episode_returns": list(self.episode_returns),
            "torch_rng": torch.get_rng_state(), "numpy_rng": global_numpy_rng(),
            "python_rng": random.getstate(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state["sources"]
        if set(saved) != set(self.sources):
            raise RuntimeError(f"checkpoint holds streams {sorted(saved)}, this run has "
                               f"{sorted(self.sources)}: resume with the same callbacks")
        self.collector.load_state_dict(state["collector"])
        for name, source in self.sources.items():
            source.load_state_dict(saved[name])
        self.evaluator.load_state_dict(state["evaluator"])
        self.phase, self.pending_updates = state["phase"], state["pending_updates"]
        self.episode_returns = [tuple(x) for x in state["episode_returns"]]
        # applied when iteration starts: creating the DataLoader iterator draws from torch's RNG
        self._pending_rng = (state["torch_rng"], state["numpy_rng"], state["python_rng"])

    def _restore_global_rng(self) -> None:
        if self._pending_rng is not None:
            torch_rng, numpy_rng, python_rng = self._pending_rng
            torch.set_rng_state(torch_rng)
            set_global_numpy_rng(numpy_rng)
            random.setstate(python_rng)
            self._pending_rng = None
