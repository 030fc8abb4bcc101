"""Embedding agreement: does a transferred encoder map inverse visuals where the base model maps
the normal ones? (van Driessel and François-Lavet, "Component Transfer Learning for Deep RL Based
on Abstract Representations", §5.2: the L2 distance is bimodal, ≈1.1 on success and ≈6.2 on
failure.) A pure function plus a callback that records it at the end of a run."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from lightning_wm.agents.protocol import Embeds, require
from lightning_wm.artifacts import EMBEDDING
from lightning_wm.data.collector import derive_seed
from lightning_wm.diagnostics.base import Diagnostic, task_env
from lightning_wm.transfer.base import copy_, load_source, source_state_for


class PairedObservations(NamedTuple):
    normal: np.ndarray            # [N, ...] states rendered with normal visuals
    inverse: np.ndarray           # [N, ...] the same states, inverse visuals
    next_index: np.ndarray | None  # [N, A] state reached by each action (simple maze only)


def paired_observations(env, n: int, seed: int) -> PairedObservations:
    """The same hidden states rendered normally and inversely; ``env`` is an env id or instance."""
    from lightning_wm.envs import maze
    env_id = env if isinstance(env, str) else {
        maze.SimpleMaze: "simple_maze", maze.MetaLabyrinth: "meta_labyrinth",
    }.get(type(env.unwrapped), type(env.unwrapped).__name__)
    if env_id == "simple_maze":
        states = maze.all_states()
        return PairedObservations(states.normal, states.inverse, states.next_index)
    if env_id == "meta_labyrinth":
        lab = maze.MetaLabyrinth()
        rng = np.random.default_rng(derive_seed(seed, 8))
        normal, inverse = [], []
        for i in range(n):  # a fresh maze, then a few random moves so agents are not at starts
            lab.reset(seed=derive_seed(seed, 9, i))
            for _ in range(int(rng.integers(0, 10))):
                lab.step(int(rng.integers(4)))
            normal.append(maze.render_meta_labyrinth(lab.state(), False))
            inverse.append(maze.render_meta_labyrinth(lab.state(), True))
        return PairedObservations(np.stack(normal), np.stack(inverse), None)
    raise KeyError(f"no paired renderings for env '{env_id}' (have simple_maze, meta_labyrinth)")


@torch.no_grad()
def embedding_distance(base, transferred, pairs: PairedObservations) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean ‖e_base(normal) − e_transferred(inverse)‖₂ over the states, and both embeddings."""
    device = next(transferred.parameters()).device
    xb = base.embed(torch.as_tensor(pairs.normal, device=device)).cpu()
    xt = transferred.embed(torch.as_tensor(pairs.inverse, device=device)).cpu()
    return float((xb - xt).norm(dim=-1).mean()), xb.numpy(), xt.numpy()


def embedding_spread(x: np.ndarray) -> float:
    """Mean pairwise distance of an embedding: the scale a distance is judged against (a 2-d
    maze embedding and a 192-d labyrinth one differ in scale, not in what agreement means)."""
    x = torch.as_tensor(x)
    return float(torch.cdist(x, x).mean())


def load_base(agent, source: str):
    """A copy of ``agent`` carrying the source checkpoint's components (shape-checked)."""
    base = copy.deepcopy(agent).cpu()
    state = load_source(source)
    for name, module in base.components.items():
        copy_(module, source_state_for(state, name), where=name)
    return base.to(agent.device).eval()


class EmbeddingAgreement(Diagnostic):
    """Record the embedding distance to the base model at the end of training (diagnostic)."""

    def __init__(self, source: str, env: str | None = None, states: int = 256, seed: int = 0) -> None:
        super().__init__()
        self.source, self.env, self.states, self.seed = source, env, states, seed

    def on_train_end(self, trainer, pl_module) -> None:
        require(pl_module, Embeds, "embedding agreement")
        base = load_base(pl_module, self.source)
        was_training = pl_module.training
        pl_module.eval()
        env = self.env or task_env(trainer)  # default: the run's own (first) task
        pairs = paired_observations(env, self.states, self.seed)
        distance, xb, xt = embedding_distance(base, pl_module, pairs)
        pl_module.train(was_training)
        self.diagnostics = {"embedding_distance": distance,
                            "embedding_distance_rel": distance / max(embedding_spread(xb), 1e-8)}
        if trainer.is_global_zero:  # the figure's data; the report draws it
            extra = {} if pairs.next_index is None else {"next_index": pairs.next_index}
            np.savez(Path(trainer.default_root_dir) / EMBEDDING, base=xb, transferred=xt, **extra)
