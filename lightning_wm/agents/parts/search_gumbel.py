"""Gumbel MuZero's search (Danihelka et al., "Policy Improvement by Planning with Gumbel", ICLR
2022) on the batched tree of :mod:`lightning_wm.agents.parts.search`.

At the root: Gumbel-top-k picks m actions, sequential halving spends the budget on them in
rounds that keep the better half by g(a) + logits(a) + σ(q̂(a)), and the action taken is the best
survivor. Below the root: the paper's deterministic selection, argmax_a π'(a) − N(a) / (1 + Σ_b
N(b)), which makes the visit counts track the improved policy π' = softmax(logits + σ(q̂)).

q̂ is the completed Q (a visited action's Q, the mixed value for the others) min-max normalised
over the node's own actions: the paper leaves the normalisation open, and per-node bounds keep the
Gumbel search free of the tree-wide bounds that pUCT needs.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from lightning_wm.agents.parts.search import (SearchResult, State, StepFn, Tree, backup,
                                              child_stats, descend, descent_bound, expand,
                                              new_tree)


def halving_phases(num_simulations: int, num_considered: int) -> list[tuple[int, int]]:
    """Sequential halving as (actions considered, visits each gets) per phase.

    A phase over k actions gives each max(1, ⌊n / (⌈log2 m⌉ k)⌋) visits, then k halves (never
    below 2): n = 16, m = 4 gives [(4, 2), (2, 4)]. Budget left after ⌈log2 m⌉ phases goes to
    further phases over the last two actions, so every simulation is used; the last phase is cut
    where the budget ends. One considered action takes all n visits.
    """
    if num_considered <= 1:
        return [(1, num_simulations)]
    rounds = math.ceil(math.log2(num_considered))
    phases, used, k = [], 0, num_considered
    while used < num_simulations:
        per = max(1, num_simulations // (rounds * k))
        phases.append((k, per))
        used += k * per
        k = max(2, k // 2)
    return phases


def completed_q(logits: Tensor, visits: Tensor, q: Tensor, value: Tensor) -> Tensor:
    """Q where N > 0, else the mixed value (Danihelka et al. 2022, Appendix D, eq. 33):

    v_mix = (v̂ + Σ_b N(b) · Σ_{N(b)>0} π(b) q(b) / Σ_{N(b)>0} π(b)) / (1 + Σ_b N(b)),
    π = softmax(logits), v̂ the network's value of the node (v_mix = v̂ before any visit).
    """
    prior = torch.softmax(logits, -1)
    visited = visits > 0
    total = visits.sum(-1)
    mass = (prior * visited).sum(-1)
    weighted = (prior * q * visited).sum(-1) / mass.clamp(min=torch.finfo(mass.dtype).tiny)
    mixed = (value + total * weighted) / (1.0 + total)
    return torch.where(visited, q, mixed.unsqueeze(-1))


def rescale(q: Tensor, min_range: float = 1e-8) -> Tensor:
    """Min-max over the last dim onto [0, 1] (all zeros when the values are equal); a range
    below ``min_range`` is divided by ``min_range`` instead, so Q values that differ by less are
    not stretched to the whole interval (pUCT's ``min_delta`` does the same)."""
    lo, hi = q.amin(-1, keepdim=True), q.amax(-1, keepdim=True)
    return (q - lo) / (hi - lo).clamp(min=min_range)


def sigma(q_hat: Tensor, visits: Tensor, c_visit: float, c_scale: float) -> Tensor:
    """σ(q̂) = (c_visit + max_b N(b)) · c_scale · q̂, monotone in q̂ and growing with the budget."""
    return (c_visit + visits.amax(-1, keepdim=True)) * c_scale * q_hat


def improved_policy(logits: Tensor, visits: Tensor, q: Tensor, value: Tensor, c_visit: float,
                    c_scale: float, min_range: float = 1e-8) -> Tensor:
    """π' = softmax(logits + σ(rescale(completed Q))), the paper's policy target (eq. 11)."""
    completed = rescale(completed_q(logits, visits, q, value), min_range)
    return torch.softmax(logits + sigma(completed, visits, c_visit, c_scale), -1)


def _root_score(tree: Tree, gumbel: Tensor, discount: float, c_visit: float,
                c_scale: float, min_range: float) -> tuple[Tensor, Tensor]:
    """g + logits + σ(q̂) over the root's actions and their visit counts, [B, A] each."""
    visits, q = child_stats(tree, torch.zeros_like(tree.rows), discount)
    logits = tree.prior_logits[:, 0]
    q_hat = rescale(completed_q(logits, visits, q, tree.raw_value[:, 0]), min_range)
    return gumbel + logits + sigma(q_hat, visits, c_visit, c_scale), visits


def _keep_best(score: Tensor, candidates: Tensor, k: int) -> Tensor:
    """The k best-scoring of the current candidates, as a bool mask [B, A]."""
    best = score.masked_fill(~candidates, -math.inf).topk(k, -1).indices
    return torch.zeros_like(candidates).scatter(-1, best, True)


def _plan(num_simulations: int, num_considered: int) -> list[tuple[int, int, bool]]:
    """Per simulation: (k, visits its action already has, whether a phase starts there)."""
    plan, before = [], 0
    for k, per in halving_phases(num_simulations, num_considered):
        plan += [(k, before + j, j == 0 and i == 0) for j in range(per) for i in range(k)]
        before += per
    return plan[:num_simulations]


@torch.no_grad()
def gumbel_search(root_logits: Tensor, root_value: Tensor, root_state: State, step: StepFn,
                  num_simulations: int, *, discount: float = 0.997, num_considered: int = 16,
                  c_visit: float = 50.0, c_scale: float = 0.1, gumbel_scale: float = 1.0,
                  min_range: float = 1e-8, generator: torch.Generator | None = None,
                  read_depth: bool = False) -> SearchResult:
    """Gumbel MuZero over ``num_simulations`` simulations from B roots (contract: see
    :mod:`lightning_wm.agents.parts.search`).

    m = min(``num_considered``, A) root actions are drawn without replacement by Gumbel-top-k on
    g + logits, g ~ ``gumbel_scale`` · Gumbel(0, 1) from ``generator`` (None: torch's global RNG,
    as under ``torch.compile``; scale 0: a deterministic search for evaluation). Each phase of
    :func:`halving_phases` first keeps the best k of the previous survivors, then visits each of
    them round by round. Returns the improved policy as the target and argmax over the survivors
    of g + logits + σ(q̂) as the action. ``min_range``: the smallest Q range :func:`rescale`
    stretches onto [0, 1] (the default only avoids 0 / 0). ``read_depth``: see
    :func:`~lightning_wm.agents.parts.search.descent_bound`.
    """
    if num_simulations < 1:
        raise ValueError(f"a search needs at least one simulation, got {num_simulations}")
    b, a = root_logits.shape
    u = torch.rand(b, a, generator=generator, device=root_logits.device, dtype=root_logits.dtype)
    tiny = torch.finfo(u.dtype).tiny
    gumbel = gumbel_scale * -torch.log(-torch.log(u.clamp(min=tiny, max=1.0 - 1e-7)))
    tree = new_tree(root_logits, root_value, root_state, num_simulations)
    candidates = torch.ones_like(root_logits, dtype=torch.bool)
    knobs = (discount, c_visit, c_scale, min_range)

    def inner(node: Tensor, carry: Tensor) -> tuple[Tensor, Tensor]:
        visits, q = child_stats(tree, node, discount)
        policy = improved_policy(tree.prior_logits[tree.rows, node], visits, q,
                                 tree.raw_value[tree.rows, node], c_visit, c_scale, min_range)
        return (policy - visits / (1.0 + visits.sum(-1, keepdim=True))).argmax(-1), carry

    for sim, (k, before, starts) in enumerate(_plan(num_simulations, min(num_considered, a))):
        score, visits = _root_score(tree, gumbel, *knobs)
        if starts:
            candidates = _keep_best(score, candidates, k)
        # within a phase every survivor is visited once per round, best-scoring first
        due = candidates & (visits == before)
        action = score.masked_fill(~due, -math.inf).argmax(-1)
        bound = descent_bound(tree, sim, read_depth)
        parent, action, path = descend(tree, action, gumbel, inner, bound)
        backup(tree, path, sim + 1, expand(tree, sim, parent, action, step), discount)
    score, visits = _root_score(tree, gumbel, *knobs)
    _, q = child_stats(tree, torch.zeros_like(tree.rows), discount)
    policy = improved_policy(tree.prior_logits[:, 0], visits, q, tree.raw_value[:, 0], *knobs[1:])
    return SearchResult(visits.long(), tree.value_sum[:, 0] / tree.visit_count[:, 0], policy,
                        score.masked_fill(~candidates, -math.inf).argmax(-1))
