"""Super Mario Bros levels as gymnasium envs (suite mario_levels; Voskuil, "Pre-training World
Models to efficiently learn related tasks", Master's thesis, Leiden University, 2022).

Protocol (Voskuil (2022), §5.1-5.2, DreamerV2's Atari preprocessing): one env per level ``"1-1"`` …
``"8-4"`` (gym-super-mario-bros' single-stage mode: the episode ends when Mario dies or reaches the
flag), the 12-action complex movement set, grayscale 64×64 observations ``uint8 [1, 64, 64]``
(channels first; ``grayscale=False`` gives ``[3, size, size]`` RGB), action repeat 4, sticky
actions 0.2 and rewards clipped to [-15, 15]. ``levels=[...]`` makes the multi-level env of the
thesis: each ``reset`` draws one of them uniformly with the env's ``np_random`` (``reset(options=
{"level": "3-1"})`` forces one, e.g. for evaluation); ``info["level"]`` says which.

* Reward: gym-super-mario-bros' per-frame reward (x progress, -1 per in-game clock tick, -25 on
  death), clipped per frame to [-clip, clip] as that package's ``reward_range`` does (so death
  costs -15, as the thesis says), summed over the repeated frames, and the sum clipped again, so
  every decision's reward lies in [-clip, clip] (``clip=None`` turns both off).
* Sticky actions follow Machado et al. (2018) and ALE: at *every emulator frame*, with probability
  ``sticky`` the previously executed buttons are pressed again instead of the agent's action; the
  previous buttons start as NOOP at reset. Drawn from ``self.np_random``.
* Observation: the last of the repeated frames, converted to luminance (0.299 R + 0.587 G +
  0.114 B, as OpenCV) and area-averaged (OpenCV's INTER_AREA) from 240×256 to ``size``×``size``;
  no max-pool over frames.
* ``terminated``: death (including the in-game clock running out) or flag / axe reached
  (``info["flag_get"]``); ``truncated``: ``max_steps`` *decisions* (agent steps; default 27000,
  i.e. 108k frames, DreamerV2's Atari time limit; the 400-tick clock normally ends episodes far
  earlier). Never both.

Compatibility (NumPy 2 on Python 3.11, no pin): gym-super-mario-bros 9 needs Python ≥ 3.13, so the
ROM comes from gym-super-mario-bros 7.4 and the emulator from nes-py 8.2.1 (built from source, about
a minute). Their Python layers are never imported: nes-py 8's ``ROM`` header parser and SMB's
``_x_position`` multiply uint8 scalars by Python ints (OverflowError under NumPy 2), importing
``gym_super_mario_bros`` registers ids in gym 0.26's registry, and gym 0.26's env checker uses
``np.bool8`` (gone in NumPy 2). Instead this module loads nes-py's compiled ``lib_nes_env`` with
ctypes, reads the ROM file shipped in gym-super-mario-bros' package folder, and ports SMB's RAM
logic (reward, episode end, start-screen and animation skips) with plain ints. Nothing is patched
and none of ``gym``, ``nes_py`` or ``gym_super_mario_bros`` is imported; importing this module
needs neither package, creating an env does.

Pickling (the collector's exact resume): nes-py can only back up the emulator inside C++ memory, so
the env logs the buttons pressed at each emulator frame of the running episode (one byte each) and
``__setstate__`` rebuilds the level, restores its start state and replays them; the emulator is
deterministic, so the unpickled env continues bit for bit. Pickles are small (one byte per frame),
but loading replays the episode so far: at most ~8000 frames (the 400-tick clock), about 20 CPU-s
on a slow shared core (see results/bench/mario_env.md), typically a few seconds.
"""
from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import sys
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

LEVELS = tuple(f"{w}-{s}" for w in range(1, 9) for s in range(1, 5))
#: NES joypad bits as nes-py lays them out (its JoypadSpace wrapper uses the same map)
BUTTONS = {"right": 0x80, "left": 0x40, "down": 0x20, "up": 0x10, "start": 0x08, "select": 0x04,
           "B": 0x02, "A": 0x01}
#: gym-super-mario-bros' COMPLEX_MOVEMENT, the thesis' 12 discrete actions
COMPLEX_MOVEMENT = ((), ("right",), ("right", "A"), ("right", "B"), ("right", "A", "B"), ("A",),
                    ("left",), ("left", "A"), ("left", "B"), ("left", "A", "B"), ("down",), ("up",))
ACTION_BYTES = tuple(sum(BUTTONS[b] for b in combo) for combo in COMPLEX_MOVEMENT)
ACTION_NAMES = tuple(", ".join(c) or "NOOP" for c in COMPLEX_MOVEMENT)
HEIGHT, WIDTH = 240, 256  # the NES picture
_INSTALL = "pip install 'nes-py==8.2.1' 'gym-super-mario-bros==7.4.0'"
_LIB: Any = None


def _package_dir(name: str) -> str:
    """A package's folder, found without importing (running) the package."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the mario envs need {name}: {_INSTALL}")
    return list(spec.submodule_search_locations)[0]


def _lib() -> Any:
    """nes-py's compiled emulator, loaded once per process with our own ctypes signatures."""
    global _LIB
    if _LIB is None:
        found = sorted(glob.glob(os.path.join(_package_dir("nes_py"), "lib_nes_env*")))
        if not found:
            raise ImportError(f"nes-py is installed without its lib_nes_env library: {_INSTALL}")
        lib, ptr = ctypes.CDLL(found[0]), ctypes.c_void_p
        for name, args, res in (("Initialize", [ctypes.c_wchar_p], ptr),
                                ("Controller", [ptr, ctypes.c_uint], ptr), ("Screen", [ptr], ptr),
                                ("Memory", [ptr], ptr), ("Reset", [ptr], None),
                                ("Step", [ptr], None), ("Backup", [ptr], None),
                                ("Restore", [ptr], None), ("Close", [ptr], None)):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
        if (lib.Height(), lib.Width()) != (HEIGHT, WIDTH):
            raise ImportError("unexpected nes-py screen size")
        _LIB = lib
    return _LIB


def rom_path() -> str:
    """The (vanilla) Super Mario Bros. ROM that gym-super-mario-bros ships, header checked."""
    path = os.path.join(_package_dir("gym_super_mario_bros"), "_roms", "super-mario-bros.nes")
    with open(path, "rb") as f:
        head = f.read(16)
    mapper = (head[7] & 0xF0) | (head[6] >> 4)
    if head[:4] != b"NES\x1a" or mapper != 0 or head[6] & 0x04 or head[9] & 0x01:
        raise ValueError(f"{path} is not the NROM NTSC Super Mario Bros. ROM")
    return path


def parse_level(level: str) -> tuple[int, int]:
    if level not in LEVELS:
        raise ValueError(f"unknown Mario level {level!r} (known: 1-1 … 8-4)")
    world, stage = level.split("-")
    return int(world), int(stage)


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of an area-averaging resize (each output pixel is the mean of the
    input interval it covers, fractional pixels weighted; OpenCV's INTER_AREA)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0, None)
    return (overlap / overlap.sum(1, keepdims=True)).astype(np.float32)


def sticky_buttons(rng: np.random.Generator, buttons: int, previous: int, repeat: int,
                   p: float) -> list[int]:
    """The buttons pressed at each of ``repeat`` frames: at each frame, with probability ``p``,
    the previously pressed ones, else the agent's (which then become the previous ones)."""
    if p <= 0:
        return [buttons] * repeat
    out = []
    for stick in rng.random(repeat) < p:
        previous = previous if stick else buttons
        out.append(previous)
    return out


def clip_reward(r: float, clip: float | None) -> float:
    return r if clip is None else min(max(r, -clip), clip)


class _Console:
    """One emulator parked at the start of one level, with gym-super-mario-bros 7.4's RAM logic
    (``SuperMarioBrosEnv`` in single-stage mode) ported to plain ints."""

    def __init__(self, level: str):
        lib = self.lib = _lib()
        self.world, self.stage = parse_level(level)
        # SMB numbers areas past the pipe cut-scene of x-2 in worlds 1, 2, 4 and 7
        self.area = self.stage + (self.world in (1, 2, 4, 7) and self.stage >= 2)
        self.ptr = lib.Initialize(rom_path())

        def view(address: int, n: int) -> np.ndarray:
            return np.frombuffer((ctypes.c_uint8 * n).from_address(address), dtype=np.uint8)

        self.ram = view(lib.Memory(self.ptr), 0x800)
        self.pad = view(lib.Controller(self.ptr, 0), 1)
        bgrx = view(lib.Screen(self.ptr), HEIGHT * WIDTH * 4).reshape(HEIGHT, WIDTH, 4)
        # the C++ pixels are 32-bit xRGB words: bytes B, G, R, x on little-endian machines
        self.screen = bgrx[:, :, 2::-1] if sys.byteorder == "little" else bgrx[:, :, 1:]
        self.time_last = self.x_last = 0
        lib.Reset(self.ptr)
        self._skip_start_screen()
        lib.Backup(self.ptr)

    def close(self) -> None:
        if self.ptr is not None:
            self.lib.Close(self.ptr)
            self.ptr = None

    # RAM reads (gym-super-mario-bros' properties, as ints)
    def _digits(self, address: int, n: int) -> int:  # one decimal digit per byte
        value = 0
        for digit in self.ram[address:address + n]:
            value = value * 10 + int(digit)
        return value

    def time(self) -> int:
        return self._digits(0x07F8, 3)

    def x_pos(self) -> int:
        return int(self.ram[0x6D]) * 0x100 + int(self.ram[0x86])

    def _dying(self) -> bool:
        return int(self.ram[0x0E]) == 0x0B or int(self.ram[0xB5]) > 1

    def _dead(self) -> bool:
        return int(self.ram[0x0E]) == 0x06

    def _busy(self) -> bool:
        return int(self.ram[0x0E]) in (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07)

    def _world_over(self) -> bool:
        return int(self.ram[0x0770]) == 2

    def flag_get(self) -> bool:
        if self._world_over():
            return True
        for address in range(0x16, 0x1B):  # enemy slots: Bowser (0x2D) or flagpole (0x31)
            if int(self.ram[address]) in (0x2D, 0x31):
                return int(self.ram[0x1D]) == 3  # sliding down the pole
        return False

    def _advance(self, buttons: int) -> None:
        self.pad[0] = buttons
        self.lib.Step(self.ptr)

    def _skip_start_screen(self) -> None:
        self._advance(8)  # press and release start
        self._advance(0)
        while self.time() == 0:
            self._advance(8)
            self.ram[0x075F], self.ram[0x075C], self.ram[0x0760] = (
                self.world - 1, self.stage - 1, self.area - 1)
            self._advance(0)
            self.ram[0x07A0] = 0  # run out the pre-level timer
        self.time_last = self.time()
        while self.time() >= self.time_last:
            self.time_last = self.time()
            self._advance(8)
            self._advance(0)

    def reset(self) -> None:
        self.lib.Restore(self.ptr)
        self.time_last, self.x_last = self.time(), self.x_pos()

    def frame(self, buttons: int) -> tuple[float, bool]:
        """One emulator frame: SMB's unclipped reward and whether the episode ended, then (if not)
        its skips of the dying, area-change and busy animations."""
        self._advance(buttons)
        x, t = self.x_pos(), self.time()
        dx, dt = x - self.x_last, t - self.time_last
        self.x_last, self.time_last = x, t
        dying = self._dying() or self._dead()
        reward = (dx if -5 <= dx <= 5 else 0) + min(dt, 0) - 25 * dying
        done = dying or self.flag_get()
        if not done:
            if self._dying():
                self.ram[0x0E] = 0x06
                self._advance(0)
            if 1 < int(self.ram[0x06DE]) < 255:
                self.ram[0x06DE] = 1
            while self._busy() or self._world_over():
                self.ram[0x07A0] = 0
                self._advance(0)
        return float(reward), done


class MarioEnv(gym.Env):
    """One Super Mario Bros level (``level``), or a uniform draw per episode among ``levels``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, level: str | None = None, levels: Sequence[str] | None = None,
                 size: int = 64, action_repeat: int = 4, sticky: float = 0.2,
                 clip: float | None = 15.0, max_steps: int | None = 27000, grayscale: bool = True,
                 render_mode: str | None = None):
        if level is not None and levels is not None:
            raise ValueError("give either level or levels, not both")
        self.levels = tuple(levels) if levels is not None else (level or "1-1",)
        for name in self.levels:
            parse_level(name)
        if not self.levels or action_repeat < 1 or not 0 <= sticky <= 1 or size < 1:
            raise ValueError("need levels, action_repeat >= 1, 0 <= sticky <= 1 and size >= 1")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self._config = dict(levels=self.levels, size=size, action_repeat=action_repeat,
                            sticky=sticky, clip=clip, max_steps=max_steps, grayscale=grayscale,
                            render_mode=render_mode)
        self.size, self.action_repeat, self.sticky, self.clip = size, action_repeat, sticky, clip
        self.max_steps, self.grayscale, self.render_mode = max_steps, grayscale, render_mode
        shape = (1 if grayscale else 3, size, size)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(len(ACTION_BYTES))
        self._rows, self._cols = area_matrix(HEIGHT, size), area_matrix(WIDTH, size).T.copy()
        self._luma = np.array([0.299, 0.587, 0.114], np.float32)
        self._consoles: dict[str, _Console] = {}
        self._level: str | None = None  # the running episode's level
        self._log = bytearray()  # buttons pressed at each frame of the running episode
        self._previous, self._steps, self._over = 0, 0, True

    # gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        level = (options or {}).get("level")
        if level is None:
            level = self.levels[int(self.np_random.integers(len(self.levels)))] \
                if len(self.levels) > 1 else self.levels[0]
        parse_level(level)
        self._start(level)
        return self._observe(), self._info()

    def step(self, action):
        if self._over:
            raise RuntimeError("step() after the episode ended: call reset()")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}")
        console = self._consoles[self._level]
        frames = sticky_buttons(self.np_random, ACTION_BYTES[int(action)], self._previous,
                                self.action_repeat, self.sticky)
        total, terminated = 0.0, False
        for buttons in frames:
            reward, terminated = console.frame(buttons)
            self._log.append(buttons)
            total += clip_reward(reward, self.clip)
            if terminated:
                break
        self._previous = self._log[-1]
        self._steps += 1
        truncated = not terminated and self.max_steps is not None and self._steps >= self.max_steps
        self._over = terminated or truncated
        return self._observe(), clip_reward(total, self.clip), terminated, truncated, self._info()

    def render(self):
        if self.render_mode == "rgb_array" and self._level is not None:
            return self._consoles[self._level].screen.copy()
        return None

    def close(self) -> None:
        for console in self._consoles.values():
            console.close()
        self._consoles.clear()
        self._level, self._over = None, True

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def get_action_meanings(self) -> list[str]:
        return list(ACTION_NAMES)

    # internals
    def _start(self, level: str) -> None:
        if level not in self._consoles:
            self._consoles[level] = _Console(level)
        self._consoles[level].reset()
        self._level, self._log, self._previous, self._steps, self._over = (
            level, bytearray(), 0, 0, False)

    def _observe(self) -> np.ndarray:
        screen = self._consoles[self._level].screen
        if self.grayscale:
            planes = (screen.astype(np.float32) @ self._luma)[None]
        else:
            planes = screen.astype(np.float32).transpose(2, 0, 1)
        out = self._rows @ planes @ self._cols
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def _info(self) -> dict[str, Any]:
        console = self._consoles[self._level]
        return {"level": self._level, "x_pos": console.x_pos(), "time": console.time(),
                "flag_get": console.flag_get(), "frames": len(self._log)}

    # pickling: config + RNG + the running episode's button log, replayed on load
    def __getstate__(self) -> dict[str, Any]:
        return {"config": self._config, "rng": self._np_random, "rng_seed": self._np_random_seed,
                "level": self._level, "log": bytes(self._log), "previous": self._previous,
                "steps": self._steps, "over": self._over}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])
        self._np_random, self._np_random_seed = state["rng"], state["rng_seed"]
        if state["level"] is not None:
            self._start(state["level"])
            console = self._consoles[state["level"]]
            for buttons in state["log"]:
                console.frame(buttons)
            self._log = bytearray(state["log"])
            self._previous, self._steps = state["previous"], state["steps"]
            self._over = state["over"]
