"""GridHead: shapes, the action planes, translation equivariance (map) and invariance (pooled),
and CRAR's grid heads end to end on the meta-labyrinth's 48×48 observations."""
from __future__ import annotations

import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.nets.grid import GridHead

GRID = (3, 8, 8)


def _blob(row: int, col: int) -> torch.Tensor:
    """A map that is zero except a 2×2 patch at (row, col): shifts keep it clear of the edges."""
    x = torch.zeros(1, *GRID)
    x[0, :, row:row + 2, col:col + 2] = torch.tensor([[0.5, -1.0], [1.0, 0.25]])
    return x


def test_shapes_and_action_input():
    torch.manual_seed(0)
    dense = GridHead(GRID, out_channels=3, action_dim=4)
    pooled = GridHead(GRID, out_channels=4, action_dim=0, pool=True)
    x = torch.randn(5, 3 * 8 * 8)
    a = torch.eye(4)[torch.tensor([0, 1, 2, 3, 0])]
    assert dense(torch.cat([x, a], 1)).shape == (5, 3 * 8 * 8)
    assert pooled(x).shape == (5, 4)
    assert pooled(x[0]).shape == (4,)  # unbatched, as an MLP head accepts
    # the action changes the output: it enters as constant planes
    same_x = torch.cat([x[:1].repeat(2, 1), torch.eye(4)[:2]], 1)
    out = dense(same_x)
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="expects 196 inputs, got 192"):
        dense(x)


def test_translation_equivariant_map_and_invariant_pool():
    torch.manual_seed(0)
    dense = GridHead(GRID, out_channels=3, action_dim=0, dilations=(1, 1))
    pooled = GridHead(GRID, out_channels=4, action_dim=0, dilations=(1, 1), pool=True)
    with torch.no_grad():
        # bias-free outputs make "zero far from the blob" exact, so the sums compare exactly
        for head in (dense, pooled):
            for m in head.modules():
                if isinstance(m, torch.nn.Conv2d):
                    m.bias.zero_()
        x1, x2 = _blob(2, 2), _blob(3, 4)
        y1 = dense(x1.flatten(1)).view(1, *GRID)
        y2 = dense(x2.flatten(1)).view(1, *GRID)
        assert torch.allclose(torch.roll(y1, shifts=(1, 2), dims=(2, 3)), y2, atol=1e-6)
        assert torch.allclose(pooled(x1.flatten(1)), pooled(x2.flatten(1)), atol=1e-5)


def test_crar_grid_heads_train_on_labyrinth_observations():
    torch.manual_seed(0)
    agent = make_agent("crar", (48, 48), 4, True,
                       {"conv_stem": "patch", "heads": "grid", "hidden": 8, "conv_width": 8})
    assert agent.abstract_dim == 192
    assert all(isinstance(agent.components[k], GridHead)
               for k in ("transition", "reward", "discount", "q"))
    n = 6
    batch = {"obs": torch.rand(n, 2, 48, 48) * 2 - 1,
             "action": torch.eye(4)[torch.randint(0, 4, (n, 2))],
             "reward": torch.rand(n, 2), "is_first": torch.zeros(n, 2),
             "is_terminal": torch.zeros(n, 2), "task_id": torch.zeros(n, 2, dtype=torch.long)}
    terms = agent.loss_terms(batch)
    before = {k: p.clone() for k, p in agent.components.named_parameters()}
    agent.weighted(terms).backward()
    torch.optim.SGD(agent.components.parameters(), lr=0.1).step()
    changed = {k.split(".")[0] for k, p in agent.components.named_parameters()
               if not torch.equal(p, before[k])}
    assert changed == {"encoder", "transition", "reward", "discount", "q"}
    with pytest.raises(ValueError, match="needs the conv encoder"):
        make_agent("crar", (8, 8), 4, True, {"heads": "grid"})


def test_pooling_attends_over_cells_a_convex_mix_of_their_outputs():
    torch.manual_seed(0)
    head = GridHead(GRID, out_channels=2, action_dim=0, pool=True)
    x = torch.randn(4, 3 * 8 * 8)
    per_cell = head.out(head.hidden(x.view(4, *GRID))).flatten(2)  # [4, 2, 64]
    pooled = head(x)
    assert torch.all(pooled <= per_cell.max(-1).values + 1e-6)
    assert torch.all(pooled >= per_cell.min(-1).values - 1e-6)
    # zero logits weigh every cell alike: the plain mean
    with torch.no_grad():
        head.attend.weight.zero_()
        head.attend.bias.zero_()
        uniform = head(x)
    assert torch.allclose(uniform, per_cell.mean(-1), atol=1e-6)
