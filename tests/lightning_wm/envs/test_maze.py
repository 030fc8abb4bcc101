"""The inverse-maze envs: encodings, moves, seeding, keys and rewards, rendering, pickling."""
from __future__ import annotations

import pickle
import warnings
from collections import deque

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lightning_wm.envs import ENVS, make_env
from lightning_wm.envs.maze import (
    BLOCK, GRID, SIMPLE_LAYOUT, MazeState, MetaLabyrinth, SimpleMaze, all_states, free_cells,
    random_layout, render_meta_labyrinth, render_simple_maze,
)

UP, DOWN, LEFT, RIGHT = range(4)


def _reachable(layout, start):
    seen, todo = {start}, deque([start])
    while todo:
        r, c = todo.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            n = (r + dr, c + dc)
            if layout[n[0]][n[1]] != "#" and n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _tiles(obs):
    """A 48×48 observation back to its 8×8 tiles, checking every block is constant."""
    blocks = obs.reshape(GRID, BLOCK, GRID, BLOCK).transpose(0, 2, 1, 3).reshape(GRID, GRID, -1)
    assert (blocks == blocks[..., :1]).all()
    return blocks[..., 0]


def _placed(env, agent):
    env.agent = agent
    return env


# -- simple maze ------------------------------------------------------------------------------------
def test_registered():
    assert ENVS["simple_maze"] is SimpleMaze and ENVS["meta_labyrinth"] is MetaLabyrinth
    env = make_env("meta_labyrinth", {"inverse": True, "max_steps": 20})
    assert env.inverse and env.max_steps == 20


def test_simple_maze_encoding_normal_and_inverse():
    env = SimpleMaze()
    obs, _ = env.reset(seed=0)
    walls = np.array([[c == "#" for c in row] for row in SIMPLE_LAYOUT])
    expected = np.where(walls, 1.0, 0.0)
    expected[env.agent] = 0.5
    assert obs.dtype == np.float32 and obs.shape == (8, 8)
    np.testing.assert_array_equal(obs, expected)
    inv = SimpleMaze(inverse=True)
    inv_obs, _ = inv.reset(seed=0)
    assert inv.agent == env.agent
    np.testing.assert_array_equal(inv_obs, -expected)
    assert set(np.unique(inv_obs)) == {-1.0, -0.5, 0.0}
    assert not np.signbit(inv_obs[inv_obs == 0]).any()  # no -0.0 path tiles


def test_simple_maze_layout_is_connected_and_nontrivial():
    cells = free_cells(SIMPLE_LAYOUT)
    assert _reachable(SIMPLE_LAYOUT, cells[0]) == set(cells)
    assert 8 < len(cells) < 36  # interior walls exist
    assert all(row[0] == row[-1] == "#" for row in SIMPLE_LAYOUT)
    assert SIMPLE_LAYOUT[0] == SIMPLE_LAYOUT[-1] == "#" * 8


def test_simple_maze_moves_and_walls():
    env = SimpleMaze()
    env.reset(seed=0)
    for action, target in ((UP, (3, 3)), (DOWN, (3, 3)), (LEFT, (3, 2)), (RIGHT, (3, 4))):
        _placed(env, (3, 3))  # the open row joining the rooms
        obs, reward, terminated, truncated, _ = env.step(action)
        assert env.agent == target and obs[target] == 0.5 and reward == 0.0 and not terminated
    _placed(env, (1, 1))
    env.step(UP)
    env.step(LEFT)
    assert env.agent == (1, 1)  # border walls block
    _placed(env, (1, 2))
    env.step(RIGHT)
    assert env.agent == (1, 2)  # interior wall at (1, 3) blocks
    env.step(DOWN)
    assert env.agent == (2, 2)


def test_simple_maze_seeding_and_truncation():
    env = SimpleMaze(max_steps=5)
    starts = set()
    for seed in range(20):
        env.reset(seed=seed)
        starts.add(env.agent)
    assert len(starts) > 5 and starts <= set(free_cells(SIMPLE_LAYOUT))
    a, _ = env.reset(seed=7)
    b, _ = SimpleMaze().reset(seed=7)
    np.testing.assert_array_equal(a, b)
    flags = [env.step(RIGHT)[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_all_states_renderings_and_transitions():
    env = SimpleMaze()
    states = all_states(env)
    n = len(free_cells(SIMPLE_LAYOUT))
    assert states.normal.shape == states.inverse.shape == (n, 8, 8)
    assert states.next_index.shape == (n, 4) and states.positions.shape == (n, 2)
    np.testing.assert_array_equal(states.inverse, -states.normal)
    for i, pos in enumerate(states.positions):
        env.reset(seed=0)
        for a in range(4):
            _placed(env, tuple(pos))
            obs = env.step(a)[0]
            np.testing.assert_array_equal(obs, states.normal[states.next_index[i, a]])


# -- meta-labyrinth ---------------------------------------------------------------------------------
def test_meta_labyrinth_blocks_encoding_and_keys():
    env, inv = MetaLabyrinth(), MetaLabyrinth(inverse=True)
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        inv_obs, _ = inv.reset(seed=seed)
        assert obs.shape == (48, 48) and obs.dtype == np.float32
        np.testing.assert_array_equal(inv_obs, -obs)
        tiles = _tiles(obs)
        layout = env.layout
        assert all(row[0] == row[-1] == "#" for row in layout) and layout[0] == layout[-1] == "#" * 8
        free = set(free_cells(layout))
        assert _reachable(layout, env.agent) == free
        assert len(set(env.keys)) == 3 and set(env.keys) <= free and env.agent not in env.keys
        for r in range(8):
            for c in range(8):
                want = 0.5 if (r, c) == env.agent else 0.25 if (r, c) in env.keys else (
                    1.0 if layout[r][c] == "#" else 0.0)
                assert tiles[r, c] == want
        assert set(np.unique(_tiles(inv_obs))) == {-1.0, -0.5, -0.25, 0.0}


def test_meta_labyrinth_new_maze_each_reset_and_seeded():
    env = MetaLabyrinth()
    layouts = set()
    for _ in range(5):
        env.reset()
        layouts.add(env.layout)
    assert len(layouts) == 5  # unseeded resets continue the generator: new mazes
    a, _ = env.reset(seed=3)
    b, _ = MetaLabyrinth().reset(seed=3)
    c, _ = MetaLabyrinth().reset(seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _path_actions(layout, start, goal):
    """Shortest action sequence from start to goal (BFS over the maze)."""
    moves = ((-1, 0), (1, 0), (0, -1), (0, 1))
    prev, todo = {start: None}, deque([start])
    while todo:
        cell = todo.popleft()
        for a, (dr, dc) in enumerate(moves):
            n = (cell[0] + dr, cell[1] + dc)
            if layout[n[0]][n[1]] != "#" and n not in prev:
                prev[n] = (cell, a)
                todo.append(n)
    actions, cell = [], goal
    while prev[cell] is not None:
        cell, a = prev[cell]
        actions.append(a)
    return actions[::-1]


def test_meta_labyrinth_rewards_and_termination():
    env = MetaLabyrinth(max_steps=1000)
    env.reset(seed=1)
    rewards, terminated = [], False
    while env.keys:
        key = env.keys[0]
        for a in _path_actions(env.layout, env.agent, key):
            keys_before = env.keys
            obs, reward, terminated, truncated, _ = env.step(a)
            rewards.append(reward)
            if env.agent in keys_before:
                assert reward == 1.0 and env.agent not in env.keys
                assert len(env.keys) == len(keys_before) - 1
                assert _tiles(obs)[env.agent] == 0.5
            else:
                assert reward == pytest.approx(-0.1)
            assert not truncated
            assert terminated == (not env.keys)
            if env.agent == key:
                break
    assert terminated and rewards.count(1.0) == 3


def test_meta_labyrinth_wall_bump_costs_and_truncates():
    env = MetaLabyrinth()
    env.reset(seed=2)
    # a free cell next to the top border: "up" from there always hits the wall
    start = next(cell for cell in free_cells(env.layout) if cell[0] == 1)
    env.agent, env.keys = start, ((0, 0),)  # a key inside the border wall cannot be taken
    results = [env.step(UP) for _ in range(50)]
    assert env.agent == start
    assert all(res[1] == pytest.approx(-0.1) for res in results)
    assert [res[3] for res in results] == [False] * 49 + [True]
    assert not any(res[2] for res in results)


# -- state, rendering, pickling, gymnasium checks ---------------------------------------------------
@pytest.mark.parametrize("cls, renderer", [(SimpleMaze, render_simple_maze),
                                           (MetaLabyrinth, render_meta_labyrinth)])
def test_render_state_matches_observation(cls, renderer):
    for inverse in (False, True):
        env = cls(inverse=inverse)
        obs, _ = env.reset(seed=5)
        for a in (0, 3, 1, 2, 3):
            state = env.state()
            assert isinstance(state, MazeState) and hash(state) is not None
            np.testing.assert_array_equal(renderer(state, inverse), obs)
            np.testing.assert_array_equal(cls.render_state(state, inverse), obs)
            np.testing.assert_array_equal(renderer(state, not inverse), -obs)
            obs = env.step(a)[0]


@pytest.mark.parametrize("cls", [SimpleMaze, MetaLabyrinth])
def test_pickle_round_trip_mid_episode(cls):
    env = cls()
    env.reset(seed=11)
    rng = np.random.default_rng(0)
    for a in rng.integers(4, size=5):
        env.step(int(a))
    copy = pickle.loads(pickle.dumps(env))
    assert copy.state() == env.state()
    actions = [int(a) for a in rng.integers(4, size=20)]
    for a in actions:
        o1, r1, te1, tr1, _ = env.step(a)
        o2, r2, te2, tr2, _ = copy.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert (r1, te1, tr1) == (r2, te2, tr2)
        if te1 or tr1:
            break
    np.testing.assert_array_equal(env.reset()[0], copy.reset()[0])  # generator state carried too


def test_random_layout_is_a_connected_tree():
    rng = np.random.default_rng(0)
    for _ in range(50):
        layout = random_layout(rng)
        cells = free_cells(layout)
        assert len(cells) >= 4 and _reachable(layout, cells[0]) == set(cells)
        edges = sum(layout[r + 1][c] != "#" for r, c in cells) + sum(layout[r][c + 1] != "#" for r, c in cells)
        assert edges == len(cells) - 1


@pytest.mark.parametrize("cls", [SimpleMaze, MetaLabyrinth])
def test_gymnasium_check_env(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings count as failures
        check_env(cls(), skip_render_check=True)
        check_env(cls(inverse=True), skip_render_check=True)
