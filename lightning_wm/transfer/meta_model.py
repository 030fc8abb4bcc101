"""Meta-model transfer (MMTL: Sasso, Sabatelli and Wiering, "Multi-Source Transfer Learning for
Deep Model-Based Reinforcement Learning", TMLR, 2023, §4.2 and Algorithm 4) for the reward model.

The target reward model r̂ = m_Θ(s, m_θ1(s), …, m_θN(s)) reads, besides its latent input, the
predicted means of the reward models of N source agents, which stay frozen. The target agent is
built with ``meta_sources = N`` (its reward head's input is N wider) and this callback loads the
N source ``reward`` components into it, in the order given, once, when training starts.

The sources must have been trained in the same feature space as the target: the paper trains
every source and the target on top of one frozen encoder (the universal feature space; use
``load_components`` + ``freeze`` on ``encoder`` for that). Only the reward model is meta-modelled
in the paper, so only the reward model is supported here.

Resume: the source models live in the agent's state dict (not in this callback), so a checkpoint
restores them with the rest of the weights; :meth:`MetaModelTransfer.on_resume` only checks that.
"""
from __future__ import annotations

from typing import Sequence

from lightning_wm.agents.protocol import MetaRewards, require
from lightning_wm.transfer.base import TransferCallback, load_source, source_state_for


class MetaModelTransfer(TransferCallback):
    """Meta-model transfer: N frozen source reward models feed the target's reward head."""

    def __init__(self, sources: Sequence[str]) -> None:
        super().__init__()
        if isinstance(sources, str) or not sources:
            raise ValueError("meta_model needs a non-empty list of source checkpoints")
        self.sources = [str(s) for s in sources]

    def key_args(self):
        return {"sources": self.sources}

    @staticmethod
    def _check_agent(agent) -> None:
        require(agent, MetaRewards, "meta-model transfer (an agent built with 'meta_sources')")

    def apply(self, agent) -> None:
        self._check_agent(agent)
        # read every source before touching the agent, so a bad path changes nothing
        states = [source_state_for(load_source(path), "reward") for path in self.sources]
        agent.set_meta_rewards(states)

    def on_resume(self, agent) -> None:
        self._check_agent(agent)
        if not agent.meta_rewards_installed():
            raise RuntimeError("resumed a meta-model run whose checkpoint holds no source "
                               "reward models")
