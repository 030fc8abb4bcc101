"""Batched tree search of the MuZero family as pure PyTorch functions (tests check them by hand).

The tree of every root lives in tensors (no per-node Python objects), so one search runs ``B``
roots at once and calls the model once per simulation for all of them:

- :func:`muzero_search`: MCTS with pUCT (Schrittwieser et al., "Mastering Atari, Go, Chess and
  Shogi by Planning with a Learned Model", Nature 2020), with the details of EfficientZero (Ye et
  al., "Mastering Atari Games with Limited Data", NeurIPS 2021) noted where they differ;
- :func:`~lightning_wm.agents.parts.search_gumbel.gumbel_search`: Gumbel MuZero's root search;
- the shared machinery (:class:`Tree`, :func:`descend`, :func:`expand`, :func:`backup`).

**The model contract.** The root is given as ``root_logits`` [B, A], ``root_value`` [B] and
``root_state``, a tuple of tensors each with leading dim B. ``step(state, action)`` takes a tuple
with the same structure (one row per root, gathered from whichever tree node each root expands)
and ``action`` (int64 [B]) and returns ``(next_state, reward, value, policy_logits)``: a tuple of
the same structure, shapes and dtypes, the reward of that transition [B] (a per-edge reward, not a
prefix), the scalar value of the new state [B] (after any inverse value transform) and its policy
logits [B, A]. It is called exactly once per simulation with all B rows; a stored state can be
gathered again by a later simulation, so ``step`` must not modify its inputs in place. A
value-prefix model (EfficientZero) keeps its LSTM state, its previous prefix and a depth counter
inside the state tuple; its wrapper returns ``prefix_child − prefix_parent`` as the reward
(``prefix_child`` when the parent's LSTM was reset) and zeroes the LSTM state every ``horizon``
depths. The search knows nothing of this. It also knows nothing of terminal states, as in MuZero.

**Host synchronisation.** By default the simulation loop has only Python-int bounds and reads
no tensor value back to Python: the descent is a loop of ``simulation index + 1`` masked levels
(the depth a tree of that many nodes can have), and the backup is one batched product along the
recorded path. That makes the descents quadratic in the number of simulations (n (n + 1) / 2
masked levels in all), the price of not asking the device how deep the tree is;
``read_depth=True`` asks, with one host read per simulation (:func:`descent_bound`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

State = tuple[Tensor, ...]
StepFn = Callable[[State, Tensor], tuple[State, Tensor, Tensor, Tensor]]


class SearchResult(NamedTuple):
    visit_counts: Tensor  # int64 [B, A], root children's visit counts
    value: Tensor  # [B], the mean of the simulations' returns at the root
    policy_target: Tensor  # [B, A], visit distribution (pUCT) or improved policy (Gumbel)
    action: Tensor  # int64 [B], the action to take


@dataclass
class Tree:
    """N = simulations + 1 nodes per root; node 0 is the root, simulation s creates node s + 1."""
    rows: Tensor  # int64 [B], arange(B), for per-root gathers
    children: Tensor  # int64 [B, N, A], child node index or −1
    visit_count: Tensor  # [B, N]
    value_sum: Tensor  # [B, N]
    prior_logits: Tensor  # [B, N, A]
    raw_value: Tensor  # [B, N], the network's value of the node
    reward: Tensor  # [B, N], reward on the edge into the node (0 at the root)
    parent: Tensor  # int64 [B, N], −1 at the root
    action: Tensor  # int64 [B, N], action from the parent, −1 at the root
    depth: Tensor  # int64 [B, N], 0 at the root
    state: State  # each [B, N, ...]


def new_tree(root_logits: Tensor, root_value: Tensor, root_state: State,
             num_simulations: int) -> Tree:
    """An empty tree per root holding only the root's outputs (the root has no visit yet)."""
    (b, a), n = root_logits.shape, num_simulations + 1
    dev, dt = root_logits.device, root_value.dtype
    long = dict(dtype=torch.long, device=dev)
    tree = Tree(rows=torch.arange(b, device=dev), children=torch.full((b, n, a), -1, **long),
                visit_count=torch.zeros(b, n, dtype=dt, device=dev),
                value_sum=torch.zeros(b, n, dtype=dt, device=dev),
                prior_logits=torch.zeros(b, n, a, dtype=root_logits.dtype, device=dev),
                raw_value=torch.zeros(b, n, dtype=dt, device=dev),
                reward=torch.zeros(b, n, dtype=dt, device=dev),
                parent=torch.full((b, n), -1, **long), action=torch.full((b, n), -1, **long),
                depth=torch.zeros(b, n, **long),
                state=tuple(s.new_zeros((b, n) + s.shape[1:]) for s in root_state))
    tree.prior_logits[:, 0] = root_logits
    tree.raw_value[:, 0] = root_value
    for store, s in zip(tree.state, root_state):
        store[:, 0] = s
    return tree


def child_stats(tree: Tree, node: Tensor, discount: float) -> tuple[Tensor, Tensor]:
    """Visit counts N(s, a) and Q(s, a) = r(s, a) + γ V(child) of ``node``'s children, [B, A].

    Q is 0 where the child has no visit; callers mask with N > 0.
    """
    index = tree.children[tree.rows, node]
    safe = index.clamp(min=0)
    visits = torch.where(index >= 0, tree.visit_count.gather(1, safe), 0.0)
    value = tree.value_sum.gather(1, safe) / visits.clamp(min=1.0)
    q = torch.where(visits > 0, tree.reward.gather(1, safe) + discount * value, 0.0)
    return visits, q


def descent_bound(tree: Tree, simulation: int, read_depth: bool) -> int:
    """How many levels the descent of ``simulation`` may walk: the tree's depth + 1.

    Without reading the tree that is ``simulation + 1`` (a tree of s + 1 nodes is at most s
    deep), so eager searches pay for n (n + 1) / 2 masked levels in all. ``read_depth`` reads the
    actual depth back instead, one host read per simulation: on a CPU, where a read costs
    nothing, it saves most of those levels; on an accelerator it waits for the queue once per
    simulation, and under ``torch.compile(fullgraph=True)`` it is not allowed at all.
    """
    if read_depth:
        return int(tree.depth.amax()) + 1
    return simulation + 1


def descend(tree: Tree, root_action: Tensor, carry: Tensor,
            select: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
            iterations: int) -> tuple[Tensor, Tensor, Tensor]:
    """Follow ``select`` from the root to the first unexpanded edge of each root.

    ``select(node, carry) -> (action, carry)`` chooses at inner nodes (``carry`` is whatever the
    rule passes from a parent to its child, e.g. EfficientZero's parent mean Q). ``iterations``
    must be at least the tree's depth + 1; rows that already stopped are carried along masked.
    Returns the node and action of that edge [B] each, and the path [B, iterations + 1]: the
    nodes from the root to that node, −1 after it.
    """
    node = torch.zeros_like(root_action)
    leaf_parent, leaf_action, action = node, root_action, root_action
    active = torch.ones_like(root_action, dtype=torch.bool)
    path = torch.full((len(node), iterations + 1), -1, dtype=node.dtype, device=node.device)
    for i in range(iterations):
        path[:, i] = torch.where(active, node, -1)
        child = tree.children[tree.rows, node, action]
        stop = active & (child < 0)
        leaf_parent = torch.where(stop, node, leaf_parent)
        leaf_action = torch.where(stop, action, leaf_action)
        active = active & (child >= 0)
        node = torch.where(active, child, node)
        if i + 1 < iterations:  # the last choice would never be followed
            action, carry = select(node, carry)
    return leaf_parent, leaf_action, path


def expand(tree: Tree, simulation: int, parent: Tensor, action: Tensor, step: StepFn) -> Tensor:
    """One batched ``step`` from each root's chosen edge; stores node ``simulation + 1``."""
    new = simulation + 1
    state = tuple(store[tree.rows, parent] for store in tree.state)
    next_state, reward, value, logits = step(state, action)
    for store, s in zip(tree.state, next_state):
        store[:, new] = s
    tree.reward[:, new] = reward
    tree.raw_value[:, new] = value
    tree.prior_logits[:, new] = logits
    tree.parent[:, new] = parent
    tree.action[:, new] = action
    tree.depth[:, new] = tree.depth[tree.rows, parent] + 1
    tree.children[tree.rows, parent, action] = new
    return value


def backup(tree: Tree, path: Tensor, leaf: int, value: Tensor, discount: float) -> None:
    """Add the discounted return of the new ``leaf`` to every node on ``path`` and to the leaf.

    With path nodes p_0 (root) .. p_L (the leaf) and r_j the reward into p_j, node p_i receives
    G_i = Σ_{i<j≤L} γ^(j−i−1) r_j + γ^(L−i) v, i.e. G_L = v and G_i = r_{i+1} + γ G_{i+1}
    (Schrittwieser et al. 2020, Appendix B), here for all levels at once as one product with the
    matrix of discount powers instead of a loop up the path.
    """
    length = (path >= 0).sum(-1, keepdim=True)
    path = path.scatter(1, length, leaf)
    valid, at = path >= 0, path.clamp(min=0)
    dtype = tree.value_sum.dtype
    reward = torch.where(valid, tree.reward.gather(1, at), 0.0)
    levels = torch.arange(path.shape[1], device=path.device)
    gap = (levels[:, None] - levels[None, :] - 1).to(dtype)  # [j, i]: j − i − 1
    powers = torch.where(gap >= 0, torch.pow(discount, gap.clamp(min=0.0)), 0.0)
    tail = torch.pow(discount, (length - levels).clamp(min=0).to(dtype)) * value[:, None]
    ret = torch.where(valid, reward @ powers + tail, 0.0)
    tree.value_sum.scatter_add_(1, at, ret)
    tree.visit_count.scatter_add_(1, at, valid.to(dtype))


def q_bounds(tree: Tree, discount: float) -> tuple[Tensor, Tensor]:
    """Min and max of Q = r + γ V over every visited non-root node, per root, [B] each.

    EfficientZero recomputes these over the whole tree after each backup rather than keeping
    MuZero's running extremes; the two differ once a node's mean moves, and the recomputed bounds
    are the tighter ones. (+inf, −inf) when no node is visited.
    """
    visits = tree.visit_count[:, 1:]
    q = tree.reward[:, 1:] + discount * tree.value_sum[:, 1:] / visits.clamp(min=1.0)
    lo = torch.where(visits > 0, q, math.inf).amin(1)
    hi = torch.where(visits > 0, q, -math.inf).amax(1)
    return lo, hi


def normalise(q: Tensor, lo: Tensor, hi: Tensor, min_delta: float) -> Tensor:
    """(q − lo) / max(hi − lo, min_delta) once the bounds span a positive range, else q itself.

    MuZero leaves q unnormalised while the tree has a single Q value; EfficientZero's floor
    ``min_delta`` (0.01 on Atari) stops near-equal Q values from being stretched to [0, 1].
    """
    lo, hi = lo.unsqueeze(-1), hi.unsqueeze(-1)
    delta = hi - lo
    return torch.where(delta > 0, (q - lo) / delta.clamp(min=min_delta), q)


def puct_select(tree: Tree, node: Tensor, parent_q: Tensor, is_root: bool,
                bounds: tuple[Tensor, Tensor], discount: float, pb_c_init: float, pb_c_base: float,
                min_delta: float) -> tuple[Tensor, Tensor]:
    """argmax_a Q̄(s, a) + P(s, a) √(Σ_b N(s, b)) / (1 + N(s, a)) (c1 + log((Σ_b N + c2 + 1) / c2)).

    Q̄ is Q min-max normalised over the tree (:func:`q_bounds`). Every Q of the tree, and every
    mean of them, lies within the bounds, so Q̄ ∈ [0, 1] without EfficientZero's clipping (while
    the bounds are a single value every child's Q is that value, and its offset is shared). An
    unvisited child's Q is EfficientZero's estimate rather than MuZero's 0: the mean Q of the
    visited siblings at the root (0 when none is visited) and, below it, the same mean with the
    parent's own estimate counted as one more sibling, (Q_parent + Σ_visited Q) / (1 + #visited),
    so an unexplored action looks like an average one rather than the worst. Ties go to the larger
    prior, then to the lower index (EfficientZero breaks them at random). Returns the action and
    this node's mean Q, the ``parent_q`` of the next level (``parent_q`` is unused at the root).
    """
    visits, q = child_stats(tree, node, discount)
    visited = visits > 0
    count, total_q = visited.sum(-1).to(q.dtype), (q * visited).sum(-1)
    if is_root:
        mean_q = total_q / count.clamp(min=1.0)
    else:
        mean_q = (parent_q + total_q) / (count + 1.0)
    value_score = torch.where(visited, q, mean_q.unsqueeze(-1))
    value_score = normalise(value_score, *bounds, min_delta)
    total = visits.sum(-1, keepdim=True)
    c = pb_c_init + torch.log((total + pb_c_base + 1.0) / pb_c_base)
    prior = torch.softmax(tree.prior_logits[tree.rows, node], -1)
    score = value_score + c * prior * total.sqrt() / (1.0 + visits)
    best = score.amax(-1, keepdim=True)
    return torch.where(score >= best, prior, -1.0).argmax(-1), mean_q


def gamma_sample(alpha: float, shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                 proposals: int = 16) -> Tensor:
    """Gamma(α, 1) samples drawn from ``generator`` (torch's own gamma sampler takes none).

    Marsaglia and Tsang, "A Simple Method for Generating Gamma Variables", 2000: for a ≥ 1,
    d = a − 1/3, c = 1/√(9d), x ~ N(0, 1), v = (1 + c x)³; accept d v when v > 0 and
    log u < x²/2 + d − d v + d log v. α < 1 uses Gamma(α + 1) · U^(1/α). Rejection is replaced by
    ``proposals`` parallel draws, the first accepted one kept, so no loop waits on the data; each
    draw is accepted with probability above 0.95, so all 16 fail with probability below 1e-20
    (that sample would then be d, the distribution's mode region).
    """
    a = alpha + 1.0 if alpha < 1.0 else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    opts = dict(generator=generator, device=device, dtype=dtype)
    x = torch.randn((proposals, *shape), **opts)
    u = torch.rand((proposals, *shape), **opts)
    v = (1.0 + c * x) ** 3
    accept = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp(min=1e-30)))
    first = accept.to(torch.int8).argmax(0, keepdim=True)
    sample = torch.where(accept.any(0), (d * v).gather(0, first).squeeze(0), d)
    if alpha < 1.0:
        sample = sample * torch.rand(shape, **opts) ** (1.0 / alpha)
    return sample


def dirichlet_noise(batch: int, actions: int, alpha: float,
                    generator: torch.Generator | None = None,
                    device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """Symmetric Dirichlet(α) noise [B, A], normalised Gamma(α) draws from ``generator``."""
    g = gamma_sample(alpha, (batch, actions), generator, device, dtype)
    return g / g.sum(-1, keepdim=True).clamp(min=torch.finfo(dtype).tiny)


def select_action(visit_counts: Tensor, temperature: float,
                  generator: torch.Generator | None = None, q: Tensor | None = None) -> Tensor:
    """Sample a ∝ N(a)^(1/T) from root visit counts [B, A]; T = 0 is the most visited action, as
    MuZero acts greedily in evaluation and with T ∈ {1, 0.5, 0.25} in training.

    Greedy ties go to the larger ``q`` (the root children's Q, [B, A]), then to the lower index.
    A search of few simulations over many actions often ends in a tie (16 over 9 actions: seven
    actions with two visits each), and the lowest index there is NOOP on every Atari game: the
    Q values the search computed are the better judge.
    """
    if temperature == 0.0:
        if q is None:
            return visit_counts.argmax(-1)  # the first maximum
        most = visit_counts == visit_counts.amax(-1, keepdim=True)
        return torch.where(most, q, -math.inf).argmax(-1)
    probs = torch.softmax(torch.log(visit_counts.float()) / temperature, -1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def muzero_search(root_logits: Tensor, root_value: Tensor, root_state: State, step: StepFn,
                  num_simulations: int, *, discount: float = 0.997, pb_c_init: float = 1.25,
                  pb_c_base: float = 19652.0, dirichlet_alpha: float = 0.3,
                  noise_fraction: float = 0.25, temperature: float = 1.0,
                  min_delta: float = 0.01, generator: torch.Generator | None = None,
                  read_depth: bool = False) -> SearchResult:
    """MCTS with pUCT over ``num_simulations`` simulations from B roots (see the module's contract).

    The root prior is (1 − f) softmax(logits) + f Dir(α), MuZero's exploration noise (f = 0 skips
    the draw). Each simulation descends with :func:`puct_select`, expands one edge per root with
    one ``step`` call and backs up r + γ G to the root; the min-max bounds are recomputed over the
    tree before each descent. The policy target is the root's visit distribution; the action is
    drawn with :func:`select_action`. ``generator`` drives the noise and the action draw (None:
    torch's global RNG, the one choice under ``torch.compile(fullgraph=True)``, which cannot take
    a Generator); ``read_depth`` trades one host read per simulation for a shorter descent
    (:func:`descent_bound`).
    """
    if num_simulations < 1:
        raise ValueError(f"a search needs at least one simulation, got {num_simulations}")
    logits = root_logits
    if noise_fraction > 0.0:
        b, a = root_logits.shape
        noise = dirichlet_noise(b, a, dirichlet_alpha, generator, root_logits.device,
                                root_logits.dtype)
        prior = (1.0 - noise_fraction) * torch.softmax(root_logits, -1) + noise_fraction * noise
        logits = torch.log(prior)
    tree = new_tree(logits, root_value, root_state, num_simulations)
    root = torch.zeros_like(tree.rows)
    for sim in range(num_simulations):
        bounds = q_bounds(tree, discount)
        knobs = (bounds, discount, pb_c_init, pb_c_base, min_delta)

        def inner(node: Tensor, parent_q: Tensor) -> tuple[Tensor, Tensor]:
            return puct_select(tree, node, parent_q, False, *knobs)

        action, mean_q = puct_select(tree, root, root_value, True, *knobs)
        bound = descent_bound(tree, sim, read_depth)
        parent, action, path = descend(tree, action, mean_q, inner, bound)
        backup(tree, path, sim + 1, expand(tree, sim, parent, action, step), discount)
    visits, q = child_stats(tree, root, discount)
    return SearchResult(visits.long(), tree.value_sum[:, 0] / tree.visit_count[:, 0],
                        visits / visits.sum(-1, keepdim=True),
                        select_action(visits, temperature, generator, q))
