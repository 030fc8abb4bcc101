"""The inverse-maze suite: a fixed 8×8 maze without reward and a 48×48 meta-labyrinth of keys.

Both environments are tile worlds on an 8×8 grid. A tile is a wall, a path, the agent or (in the
meta-labyrinth) a key, encoded as

    wall 1.0, path 0.0, agent 0.5, key 0.25           (normal visuals)
    wall -1.0, path 0.0, agent -0.5, key -0.25        (``inverse=True``: every value negated)

so an inverse observation is exactly the elementwise negation of the normal one for the same
state. The simple maze shows the tiles directly (8×8); the meta-labyrinth draws each tile as a
6×6-pixel block (48×48). Actions: 0 up, 1 down, 2 left, 3 right (row/column moves); moving into
a wall leaves the agent in place.

The hidden state is exposed as an immutable ``MazeState`` and rendered by the pure functions
``render_simple_maze`` / ``render_meta_labyrinth``, so the embedding-agreement diagnostic can show
one state to a base model in normal visuals and to a transferred model in inverse visuals.
Everything is plain Python + numpy, so envs in flight pickle.
"""
from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import numpy as np

WALL, PATH, AGENT, KEY = 1.0, 0.0, 0.5, 0.25
GRID = 8  # tiles per side, both envs
BLOCK = 6  # pixels per tile side in the meta-labyrinth
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # up, down, left, right as (d_row, d_col)

# The simple maze: two rooms (left, right) joined by the open row 3, so the embedding figure
# has a left/right split to colour, as in the paper's Figure 5.
SIMPLE_LAYOUT = (
    "########",
    "#..#...#",
    "#..#.#.#",
    "#......#",
    "#.##...#",
    "#..#.#.#",
    "#..#...#",
    "########",
)

Cell = tuple[int, int]


class MazeState(NamedTuple):
    """Everything that determines an observation. ``layout`` rows use '#' for wall, '.' for path."""

    layout: tuple[str, ...]
    agent: Cell
    keys: tuple[Cell, ...] = ()

    def walls(self) -> np.ndarray:
        return np.array([[c == "#" for c in row] for row in self.layout], bool)


def render(state: MazeState, inverse: bool = False, block: int = 1) -> np.ndarray:
    """Tile values of ``state`` (negated if ``inverse``), each tile a ``block``×``block`` square."""
    tiles = np.where(state.walls(), WALL, PATH).astype(np.float32)
    for key in state.keys:
        tiles[key] = KEY
    tiles[state.agent] = AGENT
    if inverse:
        tiles = -tiles + 0.0  # "+ 0.0" turns -0.0 path tiles into plain 0.0
    if block > 1:
        tiles = np.kron(tiles, np.ones((block, block), np.float32))
    return tiles


def render_simple_maze(state: MazeState, inverse: bool = False) -> np.ndarray:
    """The simple maze's observation of ``state``: an (8, 8) float32 array."""
    return render(state, inverse, 1)


def render_meta_labyrinth(state: MazeState, inverse: bool = False) -> np.ndarray:
    """The meta-labyrinth's observation of ``state``: a (48, 48) float32 array of 6×6 blocks."""
    return render(state, inverse, BLOCK)


def free_cells(layout: tuple[str, ...]) -> list[Cell]:
    return [(r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch != "#"]


def move(layout: tuple[str, ...], cell: Cell, action: int) -> Cell:
    """The cell reached from ``cell`` by ``action``; a wall (or the grid edge) blocks the move."""
    dr, dc = MOVES[int(action)]
    r, c = cell[0] + dr, cell[1] + dc
    if 0 <= r < len(layout) and 0 <= c < len(layout[r]) and layout[r][c] != "#":
        return (r, c)
    return cell


class _TileEnv(gym.Env):
    """Shared plumbing: a layout, an agent cell, a step counter and four moves."""

    metadata = {"render_modes": []}
    block = 1

    def __init__(self, inverse: bool, max_steps: int) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.inverse, self.max_steps = bool(inverse), int(max_steps)
        side = GRID * self.block
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (side, side), np.float32)
        self.action_space = gym.spaces.Discrete(len(MOVES))
        self.layout: tuple[str, ...] = ()
        self.agent: Cell = (0, 0)
        self.keys: tuple[Cell, ...] = ()
        self.t = 0

    def state(self) -> MazeState:
        return MazeState(self.layout, self.agent, self.keys)

    def _obs(self) -> np.ndarray:
        return render(self.state(), self.inverse, self.block)


class SimpleMaze(_TileEnv):
    """The fixed 8×8 maze of ``SIMPLE_LAYOUT`` without reward (the paper's low-dimensional maze).

    Each reset draws the start cell uniformly from the free cells with ``self.np_random``; reward
    is always 0.0, nothing terminates, and episodes truncate after ``max_steps`` steps.
    """

    def __init__(self, inverse: bool = False, max_steps: int = 50) -> None:
        super().__init__(inverse, max_steps)
        self.layout = SIMPLE_LAYOUT
        self.agent = free_cells(SIMPLE_LAYOUT)[0]

    render_state = staticmethod(render_simple_maze)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cells = free_cells(self.layout)
        self.agent = cells[int(self.np_random.integers(len(cells)))]
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.agent = move(self.layout, self.agent, int(action))
        self.t += 1
        return self._obs(), 0.0, False, self.t >= self.max_steps, {}


class SimpleMazeStates(NamedTuple):
    """Every state of the simple maze, for embedding figures and agreement metrics."""

    positions: np.ndarray  # [N, 2] agent (row, col)
    normal: np.ndarray  # [N, 8, 8] normal visuals
    inverse: np.ndarray  # [N, 8, 8] inverse visuals of the same states
    next_index: np.ndarray  # [N, 4] index of the state each action leads to


def all_states(env: SimpleMaze | None = None) -> SimpleMazeStates:
    """Each free agent position of ``env``'s layout (default: the simple maze), both renderings,
    and the transition table ``next_index[i, a]``."""
    layout = env.layout if env is not None else SIMPLE_LAYOUT
    cells = free_cells(layout)
    index = {cell: i for i, cell in enumerate(cells)}
    states = [MazeState(layout, cell) for cell in cells]
    nxt = [[index[move(layout, cell, a)] for a in range(len(MOVES))] for cell in cells]
    return SimpleMazeStates(
        positions=np.array(cells, np.int64),
        normal=np.stack([render(s, False) for s in states]),
        inverse=np.stack([render(s, True) for s in states]),
        next_index=np.array(nxt, np.int64),
    )


def random_layout(rng: np.random.Generator, min_free: int = 4) -> tuple[str, ...]:
    """A random tree-shaped maze on the 6×6 inner cells, the border all wall.

    A randomised depth-first backtracker carves a cell only if it touches exactly one carved cell,
    so the carved cells form a tree: every free cell is reachable and corridors are one tile
    wide. Redrawn in the (rare) case of fewer than ``min_free`` free cells.
    """
    while True:
        carved = np.zeros((GRID, GRID), bool)
        start = (int(rng.integers(1, GRID - 1)), int(rng.integers(1, GRID - 1)))
        carved[start] = True
        stack = [start]
        while stack:
            options = [cell for cell in _inner_neighbours(stack[-1]) if _carvable(carved, cell)]
            if not options:
                stack.pop()
                continue
            cell = options[int(rng.integers(len(options)))]
            carved[cell] = True
            stack.append(cell)
        if carved.sum() >= min_free:
            return tuple("".join("." if v else "#" for v in row) for row in carved)


def _inner_neighbours(cell: Cell) -> list[Cell]:
    out = []
    for dr, dc in MOVES:
        r, c = cell[0] + dr, cell[1] + dc
        if 1 <= r < GRID - 1 and 1 <= c < GRID - 1:
            out.append((r, c))
    return out


def _carvable(carved: np.ndarray, cell: Cell) -> bool:
    if carved[cell]:
        return False
    return sum(bool(carved[n]) for n in _inner_neighbours(cell)) == 1


class MetaLabyrinth(_TileEnv):
    """A new random 8×8-tile maze each episode, drawn as a 48×48 image, with three keys to collect.

    Reset generates the maze with ``self.np_random`` (see ``random_layout``) and puts the agent and
    three keys on distinct free cells. Reward, as in the paper's §5.2 ("each action that yields to
    a key leads to a reward of +1 and otherwise a reward of -0.1"): a step onto a key pays +1.0
    *instead of* the step cost (the key disappears); every other step, including a step blocked by
    a wall, pays -0.1. The episode terminates when the third key is taken and truncates after
    ``max_steps`` (default 50) steps, so the next reset brings a new maze either way.
    """

    block = BLOCK

    def __init__(self, inverse: bool = False, max_steps: int = 50, n_keys: int = 3,
                 key_reward: float = 1.0, step_cost: float = 0.1) -> None:
        super().__init__(inverse, max_steps)
        if n_keys < 1:
            raise ValueError("n_keys must be at least 1")
        self.n_keys, self.key_reward, self.step_cost = int(n_keys), float(key_reward), float(step_cost)
        self.layout = tuple("#" * GRID for _ in range(GRID))  # all walls until reset() draws the first maze

    render_state = staticmethod(render_meta_labyrinth)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.layout = random_layout(self.np_random, min_free=self.n_keys + 1)
        cells = free_cells(self.layout)
        picks = self.np_random.choice(len(cells), size=self.n_keys + 1, replace=False)
        self.agent = cells[int(picks[0])]
        self.keys = tuple(sorted(cells[int(i)] for i in picks[1:]))
        self.t = 0
        return self._obs(), {"keys_left": len(self.keys)}

    def step(self, action):
        self.agent = move(self.layout, self.agent, int(action))
        self.t += 1
        if self.agent in self.keys:
            self.keys = tuple(k for k in self.keys if k != self.agent)
            reward = self.key_reward
        else:
            reward = -self.step_cost
        terminated = not self.keys
        truncated = not terminated and self.t >= self.max_steps
        return self._obs(), reward, terminated, truncated, {"keys_left": len(self.keys)}
