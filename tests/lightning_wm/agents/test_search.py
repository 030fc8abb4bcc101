"""The batched tree search (pUCT and Gumbel) against hand-stepped simulations on table models."""
from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_wm.agents.parts.search import (backup, dirichlet_noise, expand, gamma_sample,
                                              muzero_search, new_tree, normalise, puct_select,
                                              q_bounds, select_action)
from lightning_wm.agents.parts.search_gumbel import (_plan, completed_q, gumbel_search,
                                                     halving_phases, improved_policy)

T = torch.tensor


class Table:
    """A deterministic model read from tables over M states per root; the state is the state id.

    ``nxt`` [B, M, A] next state, ``reward`` [B, M, A], ``value`` [B, M], ``logits`` [B, M, A].
    Every call's (state, action) pairs are recorded, to check the path the search took.
    """

    def __init__(self, nxt, reward, value, logits):
        self.nxt, self.reward, self.value, self.logits = nxt, reward, value, logits
        self.rows = torch.arange(nxt.shape[0])
        self.calls: list[list[tuple[int, int]]] = []

    def root(self):
        return self.logits[:, 0], self.value[:, 0], (torch.zeros_like(self.rows),)

    def step(self, state, action):
        (node,) = state
        nxt = self.nxt[self.rows, node, action]
        self.calls.append(list(zip(node.tolist(), action.tolist())))
        return ((nxt,), self.reward[self.rows, node, action], self.value[self.rows, nxt],
                self.logits[self.rows, nxt])

    def quiet_step(self, state, action):  # no recording: reads nothing back to Python
        (node,) = state
        nxt = self.nxt[self.rows, node, action]
        return ((nxt,), self.reward[self.rows, node, action], self.value[self.rows, nxt],
                self.logits[self.rows, nxt])


def binary_table(rewards: dict, values: dict, priors: dict) -> Table:
    """Two actions, depth 2: states 0 root, 1 = (0, a0), 2 = (0, a1), 3..6 their children in
    order, 7 an absorbing sink (reward 0, value 0). Unlisted rewards and values are 0, unlisted
    priors uniform; ``rewards[(s, a)]``, ``values[s]``, ``priors[s] = [p0, p1]``."""
    nxt = T([[1, 2], [3, 4], [5, 6]] + [[7, 7]] * 5)
    reward, value, logits = torch.zeros(8, 2), torch.zeros(8), torch.zeros(8, 2)
    for (s, a), r in rewards.items():
        reward[s, a] = r
    for s, v in values.items():
        value[s] = v
    for s, p in priors.items():
        logits[s] = torch.log(T(p))
    return Table(nxt[None], reward[None], value[None], logits[None])


# The hand-stepped tree: γ = 0.5, root prior (0.6, 0.4), state 2's prior (0.7, 0.3).
# Edges: (0, a0) r 0.2 → state 1, V 0.5; (0, a1) r 0 → state 2, V 1.0;
# (2, a0) r 0.4 → state 5, V 0.2; everything else r 0, V 0.
HAND = dict(rewards={(0, 0): 0.2, (2, 0): 0.4}, values={1: 0.5, 2: 1.0, 5: 0.2},
            priors={0: [0.6, 0.4], 2: [0.7, 0.3]})


def search(table, n, **kw):
    kw = dict(discount=0.5, noise_fraction=0.0, temperature=0.0) | kw
    return muzero_search(*table.root(), table.step, n, **kw)


def test_puct_visits_by_hand():
    # c(N) = 1.25 + ln((N + 19653) / 19652); Q = r + γ V; bounds over all visited non-root nodes.
    # sim 1: no visit, prior term 0, every Q̄ = 0 → tie → larger prior: a0. Node 1 gets 0.5,
    #        root gets 0.2 + 0.5·0.5 = 0.45. Bounds: Q(1) = 0.45 only.
    # sim 2: bounds equal → Q̄ unnormalised; unvisited a1 takes the root mean Q 0.45.
    #        a0: 0.45 + c(1)·0.6·1/2 = 0.825; a1: 0.45 + c(1)·0.4·1/1 = 0.950 → a1.
    #        Node 2 gets 1.0, root 0.5. Bounds [0.45, 0.5].
    # sim 3: Q̄ = (0, 1). a0: c(2)·0.6·√2/2 = 0.530; a1: 1 + c(2)·0.4·√2/2 = 1.354 → a1.
    #        At state 2 no child is visited: Q̄ of both = mean Q (0.475 + 0)/1 → tie → prior 0.7:
    #        a0. Node 5: V 0.2; state 2 gets 0.4 + 0.5·0.2 = 0.5, root 0.5·0.5 = 0.25.
    #        Q(1) = 0.45, Q(2) = 0.5·(1 + 0.5)/2 = 0.375, Q(5) = 0.5 → bounds [0.375, 0.5].
    # sim 4: Q̄ = (0.6, 0). a0: 0.6 + c(3)·0.6·√3/2 = 1.250; a1: 0 + c(3)·0.4·√3/3 = 0.289 → a0.
    #        At state 1: tie, equal priors → lowest index a0 (state 3, V 0); state 1 gets 0,
    #        root 0.2 + 0.5·0 = 0.2. Root value (0.45 + 0.5 + 0.25 + 0.2)/4 = 0.35.
    # sim 5: Q(1) = 0.2 + 0.5·(0.5 + 0)/2 = 0.325, bounds [Q(3) = 0, 0.5]; Q̄ = (0.65, 0.75).
    #        a0: 0.65 + c(4)·0.6·2/3 = 1.150; a1: 0.75 + c(4)·0.4·2/3 = 1.083 → a0.
    #        At state 1: root mean (0.325 + 0.375)/2 = 0.35, state 1's mean (0.35 + 0)/2 = 0.175;
    #        a0: Q̄ 0 + c(1)·0.5·1/2 = 0.313; a1: 0.175/0.5 + c(1)·0.5·1/1 = 0.975 → a1.
    #        Root gets 0.2 again: value 1.6 / 5 = 0.32.
    expected = {3: ([1, 2], 0.4), 4: ([2, 2], 0.35), 5: ([3, 2], 0.32)}
    for n, (visits, value) in expected.items():
        table = binary_table(**HAND)
        result = search(table, n)
        assert result.visit_counts.tolist() == [visits]
        assert result.value.item() == pytest.approx(value)
        assert result.policy_target[0].tolist() == pytest.approx([v / n for v in visits])
    assert [c[0] for c in table.calls] == [(0, 0), (0, 1), (2, 0), (1, 0), (1, 1)]
    # the first simulation sees only ties: the largest prior wins, wherever it is
    skewed = binary_table(rewards={}, values={}, priors={0: [0.3, 0.7]})
    assert search(skewed, 1).visit_counts.tolist() == [[0, 1]]


def test_backup_and_min_max_on_a_tiny_tree():
    # the tree of sims 1-3 above, built by hand: returns 0.45, 0.5, then 0.5 → 0.25 up the path
    table = binary_table(**HAND)
    tree = new_tree(*table.root(), num_simulations=3)
    paths, actions = [T([[0, -1]]), T([[0, -1]]), T([[0, 2, -1]])], [T([0]), T([1]), T([0])]
    for sim, (path, action) in enumerate(zip(paths, actions)):
        parent = path[:, (path[0] >= 0).sum() - 1]
        backup(tree, path, sim + 1, expand(tree, sim, parent, action, table.step), 0.5)
    assert tree.visit_count[0].tolist() == [3, 1, 2, 1]
    assert tree.value_sum[0].tolist() == pytest.approx([1.2, 0.5, 1.5, 0.2])
    assert tree.children[0, 0].tolist() == [1, 2] and tree.children[0, 2].tolist() == [3, -1]
    assert tree.depth[0].tolist() == [0, 1, 1, 2] and tree.parent[0].tolist() == [-1, 0, 0, 2]
    lo, hi = q_bounds(tree, 0.5)
    assert (lo.item(), hi.item()) == pytest.approx((0.375, 0.5))
    # (0.45 − 0.375)/0.125; no clipping: a value beyond the bounds maps beyond [0, 1]
    assert normalise(T([[0.45, 0.375, 0.55]]), lo, hi, 0.01)[0].tolist() == pytest.approx(
        [0.6, 0.0, 1.4])
    # a span under the floor is divided by the floor; a zero span leaves Q as it is
    assert normalise(T([[0.452]]), T([0.45]), T([0.452]), 0.01).item() == pytest.approx(
        0.2, abs=1e-6)
    assert normalise(T([[0.3]]), T([0.45]), T([0.45]), 0.01).item() == pytest.approx(0.3)
    # pUCT's estimate for unvisited children: at the root the mean of the visited Q,
    # (0.45 + 0.375)/2 = 0.4125; at state 2, with the parent's estimate as one more sibling,
    # (0.4125 + Q(3) = 0.5)/2 = 0.45625. There a0: Q̄ 1 + c(1)·0.7/2 = 1.4375;
    # a1: (0.45625 − 0.375)/0.125 = 0.65 + c(1)·0.3 = 1.025 → a0.
    knobs = ((lo, hi), 0.5, 1.25, 19652.0, 0.01)
    _, root_mean = puct_select(tree, T([0]), T([0.0]), True, *knobs)
    action, mean = puct_select(tree, T([2]), root_mean, False, *knobs)
    assert (root_mean.item(), mean.item(), action.item()) == pytest.approx((0.4125, 0.45625, 0))

TRAP = dict(rewards={(0, 0): 1.0, (2, 0): 3.0}, values={}, priors={})


def test_search_looks_past_the_immediate_reward():
    # a0 pays 1 now and nothing after; a1 pays 0, then 3: Q(a1) = 0.9·3 = 2.7 > Q(a0) = 1
    table = binary_table(**TRAP)
    greedy = table.reward[0, 0].argmax().item()
    assert greedy == 0
    result = search(table, 30, discount=0.9)
    assert result.action.item() == 1
    assert result.visit_counts[0, 1] > result.visit_counts[0, 0]
    gumbel = gumbel_search(*table.root(), table.step, 30, discount=0.9, gumbel_scale=0.0)
    assert gumbel.action.item() == 1
    assert gumbel.policy_target[0, 1] > 0.9


def random_tables(b: int, m: int = 10, a: int = 3, seed: int = 0) -> Table:
    g = torch.Generator().manual_seed(seed)
    return Table(torch.randint(0, m, (b, m, a), generator=g), torch.rand(b, m, a, generator=g),
                 torch.rand(b, m, generator=g), torch.randn(b, m, a, generator=g))


def _row(table: Table, i: int) -> Table:
    return Table(table.nxt[i:i + 1], table.reward[i:i + 1], table.value[i:i + 1],
                 table.logits[i:i + 1])


@pytest.mark.parametrize("variant", ["puct", "gumbel"])
def test_a_batch_of_roots_matches_each_root_alone(variant):
    def run(table, read_depth=False):
        if variant == "puct":
            return search(table, 12, discount=0.9, read_depth=read_depth)
        return gumbel_search(*table.root(), table.step, 12, discount=0.9, num_considered=2,
                             gumbel_scale=0.0, read_depth=read_depth)

    batch = random_tables(3)
    together = run(batch)
    assert len(set(map(tuple, together.visit_counts.tolist()))) > 1  # the roots do differ
    for i in range(3):
        # alone, and with the descent bounded by the tree's actual depth: the same search
        alone = run(_row(batch, i), read_depth=i % 2 == 1)
        assert together.visit_counts[i].tolist() == alone.visit_counts[0].tolist()
        assert together.action[i].item() == alone.action.item()
        assert together.value[i].item() == pytest.approx(alone.value.item())
        assert together.policy_target[i].tolist() == pytest.approx(alone.policy_target[0].tolist())


def test_gamma_and_dirichlet_samples_have_the_right_moments():
    g = torch.Generator().manual_seed(3)
    for alpha in (0.3, 2.5):  # the boosted (α < 1) and the plain branch; Gamma(α): mean = var = α
        x = gamma_sample(alpha, (40000,), g)
        assert x.min() >= 0
        assert x.mean().item() == pytest.approx(alpha, rel=0.03)
        assert x.var().item() == pytest.approx(alpha, rel=0.08)
    noise = dirichlet_noise(20000, 4, 0.3, g)
    assert noise.sum(-1).tolist() == pytest.approx([1.0] * 20000)
    # Dir(α·1): mean 1/A, var (1/A)(1 − 1/A)/(Aα + 1) = 0.1875/2.2
    assert noise.mean(0).tolist() == pytest.approx([0.25] * 4, abs=0.01)
    assert noise.var(0).tolist() == pytest.approx([0.1875 / 2.2] * 4, rel=0.08)


def test_dirichlet_noise_is_seeded_and_fraction_zero_is_noiseless():
    first = dirichlet_noise(2, 5, 0.3, torch.Generator().manual_seed(7))
    assert torch.equal(first, dirichlet_noise(2, 5, 0.3, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, dirichlet_noise(2, 5, 0.3, torch.Generator().manual_seed(8)))
    table = random_tables(2, seed=1)

    def noisy(seed, fraction):
        return muzero_search(*table.root(), table.step, 10, noise_fraction=fraction,
                             generator=torch.Generator().manual_seed(seed))

    a, b = noisy(5, 0.25), noisy(5, 0.25)
    assert torch.equal(a.visit_counts, b.visit_counts) and torch.equal(a.action, b.action)
    # fraction 0: whatever the seed, the search of the unmixed prior
    plain = search(table, 10, discount=0.997).visit_counts
    assert not torch.equal(a.visit_counts, plain)  # the noise does change this search
    for seed in (1, 2):
        assert torch.equal(noisy(seed, 0.0).visit_counts, plain)
    # fraction 1: the root prior is the noise, so the first simulation takes its argmax
    hand = binary_table(**HAND)
    for seed in range(4):
        once = muzero_search(*hand.root(), hand.step, 1, noise_fraction=1.0,
                             generator=torch.Generator().manual_seed(seed))
        noise = dirichlet_noise(1, 2, 0.3, torch.Generator().manual_seed(seed))
        assert once.visit_counts[0].argmax().item() == noise[0].argmax().item()


def test_action_selection_by_temperature():
    counts = T([[1.0, 3.0]]).expand(4000, 2)
    assert select_action(T([[1.0, 3.0, 3.0]]), 0.0).tolist() == [1]  # greedy, first of the tied
    # with the children's Q, greedy ties go to the larger Q (a visit more still wins), then index
    q = T([[9.0, 0.2, 0.7]])
    assert select_action(T([[1.0, 3.0, 3.0]]), 0.0, q=q).tolist() == [2]
    assert select_action(T([[1.0, 4.0, 3.0]]), 0.0, q=q).tolist() == [1]
    assert select_action(T([[3.0, 3.0, 1.0]]), 0.0, q=T([[0.5, 0.5, 9.0]])).tolist() == [0]
    g = torch.Generator().manual_seed(0)
    # T = 1: p ∝ (1, 3) → 0.75; T = 0.5: p ∝ (1, 9) → 0.9
    assert select_action(counts, 1.0, g).float().mean().item() == pytest.approx(0.75, abs=0.025)
    assert select_action(counts, 0.5, g).float().mean().item() == pytest.approx(0.9, abs=0.02)
    again = select_action(counts, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(again, select_action(counts, 1.0, torch.Generator().manual_seed(0)))


def test_greedy_puct_breaks_a_visit_tie_by_q():
    # two simulations, uniform prior: each action once (sim 1 a0 by index, sim 2 the unvisited
    # a1 by the prior term); Q(a0) = 0.2 + 0.5·0.5 = 0.45 < Q(a1) = 0 + 0.5·1.0 = 0.5, so the
    # greedy action is a1 although the visits tie and a0 has the lower index
    table = binary_table(rewards={(0, 0): 0.2}, values={1: 0.5, 2: 1.0}, priors={})
    result = search(table, 2)
    assert result.visit_counts.tolist() == [[1, 1]]
    assert result.action.tolist() == [1]
    swapped = binary_table(rewards={(0, 0): 0.4}, values={1: 0.5, 2: 1.0}, priors={})
    assert search(swapped, 2).action.tolist() == [0]  # Q(a0) = 0.65 now


def test_sequential_halving_schedule_by_hand():
    # n = 16, m = 4: ⌈log2 4⌉ = 2 phases; phase 1 gives each of 4 actions ⌊16/(2·4)⌋ = 2
    # visits (8 sims), phase 2 each of the best 2 ⌊16/(2·2)⌋ = 4 visits (8 sims): 16 in all
    assert halving_phases(16, 4) == [(4, 2), (2, 4)]
    # n = 10, m = 4: (4, ⌊10/8⌋ = 1), (2, ⌊10/4⌋ = 2), then the leftover 2 sims on the same two
    assert halving_phases(10, 4) == [(4, 1), (2, 2), (2, 2)]
    # m = 3: ⌈log2 3⌉ = 2; (3, ⌊12/6⌋ = 2), then k = max(2, 1) = 2: (2, ⌊12/4⌋ = 3)
    assert halving_phases(12, 3) == [(3, 2), (2, 3)]
    assert halving_phases(5, 1) == [(1, 5)]
    plan = _plan(16, 4)
    assert [p[1] for p in plan] == [0] * 4 + [1] * 4 + [2, 2, 3, 3, 4, 4, 5, 5]
    assert [i for i, p in enumerate(plan) if p[2]] == [0, 8]


def one_step_table(rewards: list[float], priors: list[float], later: list[float] | None = None,
                   logits: list[float] | None = None) -> Table:
    """A root with A = len(rewards) actions into states 1..A, each followed (whatever the action)
    by its own absorbing sink A + 1..2A; the edges into a sink pay ``later[a]`` (default 0), the
    sink's own edges 0. All values are 0, so after k ≥ 1 visits (γ = 1)
    Q(a) = rewards[a] + (k − 1) later[a] / k, and every state names the root action above it.
    ``logits`` replaces log ``priors`` at the root."""
    a = len(rewards)
    sinks = torch.arange(a + 1, 2 * a + 1)
    nxt = torch.cat([torch.zeros(1, dtype=torch.long), sinks, sinks])[:, None].repeat(1, a)
    nxt[0] = torch.arange(1, a + 1)
    reward = torch.zeros(2 * a + 1, a)
    reward[0] = T(rewards)
    reward[1:a + 1] = T(later or [0.0] * a)[:, None]
    table_logits = torch.zeros(2 * a + 1, a)
    table_logits[0] = T(logits) if logits is not None else torch.log(T(priors))
    return Table(nxt[None], reward[None], torch.zeros(1, 2 * a + 1), table_logits[None])


def root_actions(table: Table, a: int) -> list[int]:
    """The root action each simulation descended from, read off the states ``step`` saw."""
    return [act if s == 0 else (s - 1) % a for (s, act), in table.calls]


def test_gumbel_visits_follow_the_halving_schedule():
    # no Gumbel noise, uniform prior: phase 2 keeps the two best Q (actions 1 and 2)
    table = one_step_table([0.1, 0.4, 0.3, 0.2], [0.25] * 4)
    result = gumbel_search(*table.root(), table.step, 16, num_considered=4, gumbel_scale=0.0)
    assert result.visit_counts.tolist() == [[2, 6, 6, 2]]
    assert result.action.item() == 1
    # round 1: all tied at first, then each visit lifts its own q̂ to the top, so index order;
    # round 2 by q̂ = (0, 1, 2/3, 1/3); phase 2 alternates the survivors, best first
    assert root_actions(table, 4) == [0, 1, 2, 3] + [1, 2, 3, 0] + [1, 2] * 4


def test_improved_policy_by_hand():
    # visits (2, 1, 0), Q (1.0, 0.5, ·), v̂ 0.4, prior (0.5, 0.3, 0.2):
    # v_mix = (0.4 + 3·(0.5·1.0 + 0.3·0.5)/(0.5 + 0.3))/(1 + 3) = (0.4 + 2.4375)/4 = 0.709375
    logits, visits = torch.log(T([[0.5, 0.3, 0.2]])), T([[2.0, 1.0, 0.0]])
    q, value = T([[1.0, 0.5, 0.0]]), T([0.4])
    assert completed_q(logits, visits, q, value)[0].tolist() == pytest.approx([1.0, 0.5, 0.709375])
    # q̂ = (1, 0, 0.209375/0.5 = 0.41875); σ = (50 + 2)·0.1·q̂ = (5.2, 0, 2.1775)
    weights = [0.5 * math.exp(5.2), 0.3, 0.2 * math.exp(2.1775)]
    by_hand = [w / sum(weights) for w in weights]
    assert improved_policy(logits, visits, q, value, 50.0, 0.1)[0].tolist() == pytest.approx(
        by_hand)


def test_improved_policy_does_not_stretch_q_below_its_floor():
    # the same node with min_range 2: Q spans 0.5 < 2, so q̂ = (Q − 0.5)/2 = (0.25, 0, 0.104688)
    # and σ = 5.2 q̂ = (1.3, 0, 0.544375); Q differing by little moves the prior by little
    logits, visits = torch.log(T([[0.5, 0.3, 0.2]])), T([[2.0, 1.0, 0.0]])
    q, value = T([[1.0, 0.5, 0.0]]), T([0.4])
    weights = [0.5 * math.exp(1.3), 0.3, 0.2 * math.exp(5.2 * 0.209375 / 2)]
    got = improved_policy(logits, visits, q, value, 50.0, 0.1, min_range=2.0)[0].tolist()
    assert got == pytest.approx([w / sum(weights) for w in weights])
    # ... and a floor below the range changes nothing
    assert improved_policy(logits, visits, q, value, 50.0, 0.1, min_range=0.4)[0].tolist() == \
        pytest.approx(improved_policy(logits, visits, q, value, 50.0, 0.1)[0].tolist())


def test_gumbel_search_with_a_q_floor_keeps_near_equal_q_close_to_the_prior():
    # Q (0.2, 0.21, 0.2): stretched, a 0.01 edge becomes σ = 5.2 for action 1; floored at 1 it
    # is 0.052, and the target stays within 2 % of the prior
    table = one_step_table([0.2, 0.21, 0.2], [0.5, 0.3, 0.2])
    stretched = gumbel_search(*table.root(), table.step, 4, num_considered=3, gumbel_scale=0.0)
    floored = gumbel_search(*table.root(), table.step, 4, num_considered=3, gumbel_scale=0.0,
                            min_range=1.0)
    assert stretched.policy_target[0, 1] > 0.9
    weights = [0.5, 0.3 * math.exp(5.2 * 0.01), 0.2]
    assert floored.policy_target[0].tolist() == pytest.approx([w / sum(weights) for w in weights],
                                                              rel=1e-4)


def test_gumbel_search_targets_and_acts_on_the_improved_policy():
    # n = 4, m = 3: phases (3, ⌊4/6⌋ → 1), (2, 1): one visit each, then the best two by
    # logits + σ(q̂) with Q = (0.2, 0.8, 0.5): q̂ = (0, 1, 0.5), σ = 5.1 q̂, scores
    # (ln 0.5, ln 0.3 + 5.1, ln 0.2 + 2.55) = (−0.69, 3.90, 0.94) → keep 1, 2; sim 4 visits 1
    table = one_step_table([0.2, 0.8, 0.5], [0.5, 0.3, 0.2])
    result = gumbel_search(*table.root(), table.step, 4, num_considered=3, gumbel_scale=0.0)
    assert result.visit_counts.tolist() == [[1, 2, 1]]
    # every action visited: completed Q = Q, σ = (50 + 2)·0.1·(0, 1, 0.5) = (0, 5.2, 2.6)
    weights = [0.5, 0.3 * math.exp(5.2), 0.2 * math.exp(2.6)]
    assert result.policy_target[0].tolist() == pytest.approx([w / sum(weights) for w in weights])
    assert result.action.item() == 1
    assert result.value.item() == pytest.approx((0.2 + 0.8 + 0.5 + 0.8) / 4)


def test_gumbel_survivors_are_chosen_at_each_phase_start():
    # n = 5, m = 3: phases (3, 1), (2, 1). Logits (0, 3, 0), Q after one visit (1, 0, 0.5); a0's
    # second visit finds −1.5 below it: Q(a0) = 1 + (0 − 1.5)/2 = 0.25.
    # Phase 1: a1 (best logit), a0, a2. Phase 2 starts with q̂ = (1, 0, 0.5), σ = 5.1 q̂:
    # scores (5.1, 3, 2.55) → survivors a0, a1. Sim 4 visits a0 (Q → 0.25), sim 5 must visit a1
    # even though a2 now scores higher: q̂ = (0.5, 0, 1), σ = 5.2 q̂ → (2.6, 3, 5.2).
    table = one_step_table([1.0, 0.0, 0.5], [], later=[-1.5, 0.0, 0.0], logits=[0.0, 3.0, 0.0])
    result = gumbel_search(*table.root(), table.step, 5, discount=1.0, num_considered=3,
                           gumbel_scale=0.0)
    assert root_actions(table, 3) == [1, 0, 2, 0, 1]
    assert result.visit_counts.tolist() == [[2, 2, 1]]
    assert result.action.item() == 1  # the better survivor, not the better-scoring a2
    weights = [math.exp(2.6), math.exp(3.0), math.exp(5.2)]  # softmax(logits + σ)
    assert result.policy_target[0].tolist() == pytest.approx([w / sum(weights) for w in weights])


def test_gumbel_inner_nodes_visit_in_proportion_to_the_improved_policy():
    # one considered root action (a0): every simulation after the first chooses at state 1, prior
    # (0.8, 0.2), all Q 0, so π' = prior and the rule is argmax π'(a) − N(a)/(1 + ΣN):
    # N (0,0): (0.8, 0.2) → a0; (1,0): (0.3, 0.2) → a0; (2,0): (0.133, 0.2) → a1;
    # (2,1): (0.3, −0.05) → a0; (3,1): (0.2, 0) → a0; (4,1): (0.133, 0.033) → a0;
    # (5,1): (0.086, 0.057) → a0; (6,1): (0.05, 0.075) → a1.
    # states: 0 root → (1, 2); state 1 → (3, 4); 2, 3, 4 absorbing, so a call names its branch
    nxt = T([[1, 2], [3, 4], [2, 2], [3, 3], [4, 4]])
    logits = torch.zeros(5, 2)
    logits[0], logits[1] = torch.log(T([0.9, 0.1])), torch.log(T([0.8, 0.2]))
    table = Table(nxt[None], torch.zeros(1, 5, 2), torch.zeros(1, 5), logits[None])
    gumbel_search(*table.root(), table.step, 9, num_considered=1, gumbel_scale=0.0)
    below = [a if s == 1 else s - 3 for (s, a), in table.calls[1:]]
    assert below == [0, 0, 1, 0, 0, 0, 0, 1]


def test_gumbel_top_k_considers_only_the_sampled_actions():
    table = one_step_table([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])
    for seed in range(3):
        result = gumbel_search(*table.root(), table.step, 8, num_considered=2,
                               generator=torch.Generator().manual_seed(seed))
        # the same draw the search makes: g = −log(−log u), u ~ U(0, 1) [B, A]
        u = torch.rand(1, 4, generator=torch.Generator().manual_seed(seed))
        top = set((-torch.log(-torch.log(u)) + table.logits[:, 0]).topk(2).indices[0].tolist())
        assert {i for i, n in enumerate(result.visit_counts[0].tolist()) if n > 0} == top


def test_gumbel_with_a_large_budget_picks_the_best_action():
    # the prior points at a poor action; 200 simulations over phases (4, 25), (2, 50) end with
    # max N = 125, so σ = (50 + 125)·0.1 = 17.5 per unit of q̂, far beyond any plausible Gumbel gap
    table = one_step_table([0.5, 0.1, 0.9, 0.3], [0.7, 0.1, 0.1, 0.1])
    for seed in range(5):
        result = gumbel_search(*table.root(), table.step, 200, num_considered=4, read_depth=True,
                               generator=torch.Generator().manual_seed(seed))
        assert result.action.item() == 2
        assert result.policy_target[0].argmax().item() == 2


class NoHostSync(TorchDispatchMode):
    """Fails on every op that reads a tensor's data back to Python or sizes its output by it."""

    SYNCING = {"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select",
               "aten::unique", "aten::_unique2", "aten::item"}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        flat = list(args) + list((kwargs or {}).values())
        indices = [x for a in flat if isinstance(a, (list, tuple)) for x in a]
        if name in self.SYNCING or (name.startswith("aten::index") and any(
                isinstance(x, torch.Tensor) and x.dtype == torch.bool for x in indices)):
            raise AssertionError(f"host sync in the search: {name}")
        return func(*args, **(kwargs or {}))


def test_the_searches_never_read_tensors_back():
    table = random_tables(2, seed=4)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(AssertionError, match="host sync"), NoHostSync():
        torch.zeros(2).sum().item()  # the guard itself works
    with pytest.raises(AssertionError, match="host sync"), NoHostSync():
        muzero_search(*table.root(), table.quiet_step, 6, generator=g, read_depth=True)
    with NoHostSync():
        muzero_search(*table.root(), table.quiet_step, 6, generator=g)
        gumbel_search(*table.root(), table.quiet_step, 6, num_considered=2, generator=g)


@pytest.mark.slow
def test_the_searches_compile_as_one_graph():
    # fullgraph: dynamo must capture each search whole; aot_eager also functionalises the in-place
    # tree updates. Inductor's code generation would add minutes on a CPU and check nothing more.
    # A Generator cannot enter the graph: the noise and draws come from the seeded global RNG.
    table = random_tables(2, seed=5)
    for fn in (muzero_search, gumbel_search):
        compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
        with torch.random.fork_rng():
            torch.manual_seed(3)
            eager = fn(*table.root(), table.quiet_step, 4)
            torch.manual_seed(3)
            graph = compiled(*table.root(), table.quiet_step, 4)
        for got, want in zip(graph, eager):
            assert torch.allclose(got, want), (fn.__name__, got, want)
