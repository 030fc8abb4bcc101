"""CRAR: hand-checked loss maths, named terms and switches, shapes, acting, gradient routing,
frozen-dynamics transfer, and learning a small torus maze through a Lightning Trainer."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from lightning_wm.agents import make_agent
from lightning_wm.agents.crar import CRARAgent, ValueBumps
from lightning_wm.components import COMPONENTS
from lightning_wm.losses import crar_d1, crar_d2, crar_transition_loss

TERMS = {"q/td", "reward/mse", "discount/mse", "transition/mse",
         "structure/d1", "structure/d1_succ", "structure/d2"}
MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]
SIDE = 6  # interior of the 8×8 maze: a 6×6 torus, so every move changes the state


def render(pos: tuple[int, int]) -> torch.Tensor:
    """8×8 maze: walls 1 on the border, path 0, agent 0.5 (the simple-maze encoding of
    van Driessel and François-Lavet, "Component Transfer Learning for Deep RL Based on Abstract
    Representations", 2021, §5.1)."""
    grid = torch.zeros(8, 8)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = 1.0
    grid[pos[0] + 1, pos[1] + 1] = 0.5
    return grid


def torus_batch() -> dict[str, torch.Tensor]:
    """Every (state, action) of the torus once; entering cell (0, 0) pays 1 and ends the episode."""
    obs, act, rew, term = [], [], [], []
    for r in range(SIDE):
        for c in range(SIDE):
            for a, (dr, dc) in enumerate(MOVES):
                nxt = ((r + dr) % SIDE, (c + dc) % SIDE)
                obs.append(torch.stack([render((r, c)), render(nxt)]))
                one_hot = torch.zeros(2, 4)
                one_hot[1, a] = 1.0
                act.append(one_hot)
                goal = float(nxt == (0, 0))
                rew.append(torch.tensor([0.0, goal]))
                term.append(torch.tensor([0.0, goal]))
    n = len(obs)
    return {"obs": torch.stack(obs), "action": torch.stack(act), "reward": torch.stack(rew),
            "is_first": torch.tensor([[1.0, 0.0]]).repeat(n, 1), "is_terminal": torch.stack(term),
            "task_id": torch.zeros(n, 2, dtype=torch.long)}


def small_batch(n=16, shape=(8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    action = torch.zeros(n, 2, 4)
    action[torch.arange(n), 1, torch.randint(0, 4, (n,), generator=g)] = 1.0
    return {"obs": torch.rand(n, 2, *shape, generator=g) * 2 - 1, "action": action,
            "reward": torch.rand(n, 2, generator=g), "is_first": torch.zeros(n, 2),
            "is_terminal": (torch.rand(n, 2, generator=g) < 0.3).float(),
            "task_id": torch.zeros(n, 2, dtype=torch.long)}


def agent_88(**kw) -> CRARAgent:
    torch.manual_seed(0)
    return make_agent("crar", (8, 8), 4, True, kw)


# -- pure losses --------------------------------------------------------------------------------
def test_transition_loss_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    delta = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    x_next = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    # residuals x + Δ − x' = (0, −2) and (1, 0); squared norms 4 and 1; mean 2.5
    assert float(crar_transition_loss(x, delta, x_next)) == pytest.approx(2.5)


def test_d1_by_hand_plain_not_squared_distance():
    x1 = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    x2 = torch.zeros(2, 2)
    # distances 0 and 5; C_d = 0.5: (exp(0) + exp(−2.5)) / 2
    assert float(crar_d1(x1, x2, 0.5)) == pytest.approx((1 + math.exp(-2.5)) / 2)
    # distance 0.5, C_d = 1: exp(−0.5) (a squared distance would give exp(−0.25))
    assert float(crar_d1(torch.tensor([[0.5, 0.0]]), torch.zeros(1, 2), 1.0)) == \
        pytest.approx(math.exp(-0.5))


def test_d2_by_hand():
    x = torch.tensor([[0.5, -0.2], [2.0, -3.0], [-1.5, 1.0]])
    # ∞-norms 0.5, 3, 1.5 -> max(· − 1, 0) = 0, 2, 0.5 -> mean 2.5 / 3
    assert float(crar_d2(x)) == pytest.approx(2.5 / 3)


# -- terms and switches -------------------------------------------------------------------------
def test_term_names_and_structure_switch():
    agent = agent_88()
    with torch.no_grad():
        terms = agent.stream_terms({"main": small_batch()})
    assert set(terms) == TERMS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    full = float(agent.weighted(terms))
    assert full == pytest.approx(sum(float(v) for v in terms.values()), rel=1e-5)
    agent.set_loss_weight("structure/*", 0.0)
    kept = sum(float(v) for k, v in terms.items() if not k.startswith("structure/"))
    assert float(agent.weighted(terms)) == pytest.approx(kept, rel=1e-5)
    agent.set_loss_weight("structure/*", 1.0)
    agent.set_loss_weight("structure/d1", 0.0)  # variant (3): omit L_d1 only
    assert float(agent.weighted(terms)) == pytest.approx(full - float(terms["structure/d1"]),
                                                           rel=1e-5)


def test_components_are_the_vocabulary_and_targets_are_not_components():
    agent = agent_88()
    assert set(agent.components) == {"encoder", "transition", "reward", "discount", "q"}
    assert set(agent.components) <= set(COMPONENTS)
    component_ids = {id(p) for p in agent.components.parameters()}
    assert set(agent.target) == {"encoder", "q"}
    assert not component_ids & {id(p) for p in agent.target.parameters()}
    opt_ids = {id(p) for g in agent.configure_optimizers().param_groups for p in g["params"]}
    assert opt_ids == component_ids
    for k in ("encoder", "transition", "reward", "discount", "q"):
        assert {"hidden", "out"} <= dict(agent.components[k].named_children()).keys()


# -- shapes ---------------------------------------------------------------------------------------
def test_dense_shapes():
    agent = agent_88()
    assert agent.hparams.encoder == "dense" and agent.abstract_dim == 2
    assert agent.embed(torch.rand(5, 8, 8)).shape == (5, 2)
    assert agent.embed(torch.rand(8, 8)).shape == (2,)
    step = agent.predict(torch.zeros(5, 2), torch.eye(4)[[0, 1, 2, 3, 0]])
    assert step["x_next"].shape == (5, 2) and step["reward"].shape == (5,)
    assert ((step["discount"] >= 0) & (step["discount"] <= 1)).all()


def test_conv_shapes_and_terms():
    torch.manual_seed(0)
    agent = make_agent("crar", (48, 48), 4, True)
    assert agent.hparams.encoder == "conv" and agent.abstract_dim == 8 * 8 * 3
    assert agent.embed(torch.rand(3, 48, 48)).shape == (3, 192)
    terms = agent.stream_terms({"main": small_batch(4, (48, 48))})
    assert set(terms) == TERMS and all(torch.isfinite(v) for v in terms.values())
    with pytest.raises(ValueError):
        CRARAgent((48, 48), 4, abstract_dim=2, encoder="conv")
    with pytest.raises(ValueError, match="'pool', 'patch', 'bumps' or 'tiles'"):
        CRARAgent((48, 48), 4, encoder="conv", conv_stem="pixels")


def test_value_bumps_make_each_tile_value_its_own_channel_and_mirror_under_negation():
    bumps = ValueBumps(17)
    tiles = torch.tensor([1.0, 0.5, 0.25, 0.0, -0.25, -0.5, -1.0]).view(1, 1, 1, 7)
    out = bumps(tiles)[0, :, 0, :]  # [17 channels, 7 values]
    # a tile value sits on a centre: its channel is 1, the neighbouring centres e^-4
    assert torch.allclose(out.max(0).values, torch.ones(7))
    assert out.argmax(0).tolist() == [16, 12, 10, 8, 6, 4, 0]
    assert torch.allclose(out[9, 3], torch.tensor(math.exp(-4.0)))
    # inverse visuals are the same features in mirrored channels: neither rendering is favoured
    assert torch.allclose(bumps(-tiles), bumps(tiles).flip(1))
    agent = make_agent("crar", (48, 48), 4, True, {"conv_stem": "bumps", "heads": "grid"})
    assert agent.embed(torch.rand(2, 48, 48)).shape == (2, 192)


def test_tiles_stem_computes_what_the_bumps_stem_does_on_block_images():
    """On uniform 6×6 blocks, bumps of the block mean through a 1×1 conv equal bumps of every
    pixel through a 6×6 conv whose kernel sums to that 1×1 one."""
    torch.manual_seed(0)
    bumps = CRARAgent((48, 48), 4, encoder="conv", conv_stem="bumps").components["encoder"]
    tiles = CRARAgent((48, 48), 4, encoder="conv", conv_stem="tiles").components["encoder"]
    patch, point = bumps.hidden[1], tiles.hidden[2]
    with torch.no_grad():
        point.weight.copy_(patch.weight.sum((2, 3), keepdim=True))
        point.bias.copy_(patch.bias)
        for a, b in zip(list(bumps.hidden)[3:], list(tiles.hidden)[4:]):
            for pa, pb in zip(a.parameters(), b.parameters()):
                pb.copy_(pa)
        tiles.out.load_state_dict(bumps.out.state_dict())
    values = torch.tensor([1.0, 0.5, 0.25, 0.0, -0.25, -0.5, -1.0])
    obs = torch.kron(values[torch.randint(0, 7, (3, 8, 8))], torch.ones(6, 6))  # [3, 48, 48]
    assert torch.allclose(tiles(obs), bumps(obs), atol=1e-5)


def test_plan_q_expands_the_learned_model_and_depth_zero_is_q():
    torch.manual_seed(0)
    agent = agent_88(plan_depth=2)
    x = agent.embed(torch.stack([render((0, 0)), render((3, 4))]))
    comps = agent.components
    with torch.no_grad():
        assert torch.equal(agent.plan_q(x, 0), comps["q"](x))
        # depth 2 by hand for state 1, action 3 then the best second action
        eye = torch.eye(4)
        step = agent.predict(x[1:], eye[3:])
        second = agent.predict(step["x_next"].expand(4, -1), eye)
        leaf = (second["reward"] + second["discount"]
                * comps["q"](second["x_next"]).max(-1).values).max()
        want = step["reward"][0] + step["discount"][0] * leaf
        assert torch.allclose(agent.plan_q(x, 2)[1, 3], want, atol=1e-6)
        greedy, _ = agent.act(render((3, 4)), None, explore=False)
    assert greedy.argmax().item() == agent.plan_q(x, 2)[1].argmax().item()
    with pytest.raises(ValueError, match="plan_depth"):
        agent_88(plan_depth=-1)


# -- acting ---------------------------------------------------------------------------------------
def test_act_greedy_and_random():
    agent = agent_88(eps_start=1.0, eps_end=1.0)
    obs = render((2, 3)).expand(400, 8, 8)
    greedy, state = agent.act(obs, None, explore=False)
    assert state is None and greedy.shape == (400, 4)
    assert (greedy.sum(-1) == 1).all() and ((greedy == 0) | (greedy == 1)).all()
    with torch.no_grad():
        best = agent.components["q"](agent.embed(obs[:1])).argmax(-1)
    assert (greedy.argmax(-1) == best).all()  # same obs, same greedy action
    torch.manual_seed(1)
    explored, _ = agent.act(obs, None, explore=True)
    assert (explored.sum(-1) == 1).all()
    counts = explored.sum(0)
    assert (counts > 60).all(), counts  # ε = 1: uniform over 4 actions, about 100 each


# -- gradient routing and frozen dynamics -----------------------------------------------------------
def test_n_step_windows_q_learns_from_the_first_transition_the_model_from_the_last():
    agent = agent_88(n_step=3, gamma=0.5)
    assert agent.sequence_length == 4
    g = torch.Generator().manual_seed(1)
    n = 8
    action = torch.nn.functional.one_hot(torch.randint(0, 4, (n, 4), generator=g), 4).float()
    batch = {"obs": torch.rand(n, 4, 8, 8, generator=g) * 2 - 1, "action": action,
             "reward": torch.rand(n, 4, generator=g), "is_first": torch.zeros(n, 4),
             "is_terminal": torch.zeros(n, 4), "task_id": torch.zeros(n, 4, dtype=torch.long)}
    batch["is_terminal"][0, 2] = 1.0  # row 0 ends at its second transition: no bootstrap
    agent.sync_target()
    with torch.no_grad():
        terms = agent.loss_terms(batch)
        x = [agent.embed(batch["obs"][:, k]) for k in range(4)]
        q, r = agent.components["q"], batch["reward"]
        boot = q(x[3]).gather(1, q(x[3]).argmax(-1, keepdim=True))[:, 0]  # target = online here
        y = r[:, 1] + 0.5 * r[:, 2] + 0.25 * r[:, 3] + 0.125 * boot
        y[0] = r[0, 1] + 0.5 * r[0, 2]
        q_taken = (q(x[0]) * action[:, 1]).sum(-1)
        r_hat = agent.predict(x[2], action[:, 3])["reward"]
    torch.testing.assert_close(terms["q/td"], ((q_taken - y) ** 2).mean())
    torch.testing.assert_close(terms["reward/mse"], ((r_hat - r[:, 3]) ** 2).mean())
    torch.testing.assert_close(terms["structure/d1_succ"], crar_d1(x[2], x[3], 5.0))
    with pytest.raises(ValueError, match="n_step"):
        agent_88(n_step=0)


def test_n_step_agent_trains_on_replay_windows_and_reloads(tmp_path):
    from lightning_wm.pipeline import TrainingConfig
    from lightning_wm.envs import make_env
    from lightning_wm.training import train
    L.seed_everything(0, verbose=False)
    agent = make_agent("crar", (8, 8), 4, True, {"n_step": 3, "eps_steps": 200})
    seen = []
    agent.loss_terms = lambda batch, f=agent.loss_terms: seen.append(batch["obs"].shape) or f(batch)
    cfg = TrainingConfig(collect_every=50, updates_per_collect=5, prefill=100, batch_size=8,
                         eval_every=200, eval_episodes=1, checkpoint_every=200)
    result = train(agent, lambda t: make_env("simple_maze", {}), [0], 4, budget=200, seed=0,
                   config=cfg, run_dir=tmp_path)
    assert result.updates > 0 and set(seen) == {torch.Size([8, 4, 8, 8])}
    reloaded = CRARAgent.load_from_checkpoint(result.model_path, map_location="cpu",
                                              weights_only=False)
    assert reloaded.sequence_length == 4


def test_every_term_reaches_the_encoder():
    agent = agent_88()
    with torch.no_grad():  # push embeddings outside the unit ball so L_d2 is active
        agent.components["encoder"].out.weight.mul_(50.0)
        agent.components["encoder"].out.bias.fill_(3.0)
    batch = small_batch()
    enc = list(agent.components["encoder"].parameters())
    for name in TERMS:
        agent.zero_grad(set_to_none=True)
        agent.loss_terms(batch)[name].backward()
        grad = sum(float(p.grad.abs().sum()) for p in enc if p.grad is not None)
        assert grad > 0, name
    assert all(p.grad is None for p in agent.target.parameters())


def test_frozen_dynamics_step_moves_only_the_encoder():
    agent = agent_88()
    for name, module in agent.components.items():
        if name != "encoder":
            module.requires_grad_(False)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    opt = agent.configure_optimizers()
    agent.weighted(agent.stream_terms({"main": small_batch()})).backward()
    opt.step()
    after = agent.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    encoder_keys = {k for k in before if k.startswith("components.encoder.")}
    assert changed == encoder_keys


# -- learning ----------------------------------------------------------------------------------------
class FixedBatches(torch.utils.data.IterableDataset):
    def __init__(self, batch, n):
        self.batch, self.n = batch, n

    def __iter__(self):
        return ({"main": self.batch} for _ in range(self.n))


def test_learns_the_torus_maze_through_a_trainer():
    L.seed_everything(0, verbose=False)
    batch = torus_batch()
    agent = CRARAgent((8, 8), 4, lr=3e-3, target_every=50)  # lr above the paper's 5e-4: 300 steps
    with torch.no_grad():
        start = agent.weighted(agent.loss_terms(batch)).item()
    trainer = L.Trainer(max_steps=300, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    loader = torch.utils.data.DataLoader(FixedBatches(batch, 300), batch_size=None)
    trainer.fit(agent, loader)
    assert trainer.global_step == 300
    with torch.no_grad():
        terms = agent.loss_terms(batch)
        end = agent.weighted(terms).item()
        x, x_next = agent.embed(batch["obs"][:, 0]), agent.embed(batch["obs"][:, 1])
        pred = agent.predict(x, batch["action"][:, 1])["x_next"]
    assert end < start / 5, (start, end)  # about 2.2 -> 0.22
    # the learned model predicts x' far better than "nothing moves" would
    err = (pred - x_next).norm(dim=-1).mean()
    step = (x_next - x).norm(dim=-1).mean()
    assert err < 0.3 * step, (float(err), float(step))  # seeds 0-3 give 0.13-0.19
    # 36 states spread out in the unit ball: distinct embeddings, no collapse
    states = agent.embed(torch.stack([render((r, c)) for r in range(SIDE) for c in range(SIDE)]))
    assert torch.pdist(states).min() > 1e-2
    assert states.abs().max() < 1.5
