"""Atari 2600 games as gymnasium envs, built directly on ale-py's ``ALEInterface`` (suite
atari100k), so that every protocol setting is written out here rather than inherited from the
defaults of gymnasium's registered ``ALE/...-v5`` ids.

Defaults are the Atari-100k protocol as Kaiser et al., "Model-Based Reinforcement Learning for
Atari" (ICLR 2020), Ye, Liu, Kurutach, Abbeel and Gao, "Mastering Atari Games with Limited Data"
(EfficientZero, NeurIPS 2021) and Xu et al., "On the Feasibility of Cross-Task Transfer with
Model-Based Reinforcement Learning" (XTRA, 2022) ran it; most choices go back to Mnih et al.,
"Human-level control through deep reinforcement learning" (Nature, 2015):

* ``game``: an ALE ROM id (``"pong"``, ``"ms_pacman"``) or the score table's name (``"MsPacman"``,
  :mod:`lightning_wm.envs.atari_scores`); the game's default mode and difficulty.
* ``frame_skip=4``: each agent action is repeated for 4 emulator frames and the rewards summed; the
  observed frame is the pixel-wise maximum of the step's last two frames, which removes the
  flicker of objects drawn on alternate frames (Mnih et al. 2015). An episode ending mid-step ends
  the step there (its last two emulated frames are pooled).
* ``sticky=0.0``: no sticky actions, as the Atari-100k papers ran (gym's ``NoFrameskip-v4`` games).
  This differs from ALE v5's default of 0.25, the stochasticity Machado et al. recommend in
  "Revisiting the Arcade Learning Environment: Evaluation Protocols and Open Problems for General
  Agents" (JAIR, 2018); DreamerV2's protocol (Hafner et al., "Mastering Atari with Discrete World
  Models", ICLR 2021) uses ``sticky=0.25``. Stickiness follows Machado et al. and ALE: at every
  emulator frame, with probability ``sticky`` the previously executed action is repeated instead
  of the agent's; the previous action is NOOP when a game starts. It is drawn here from the env's
  ``np_random`` rather than by ALE (whose option stays 0): a state ALE saves does not bring its
  previous action into a new emulator, and an exact resume needs it.
* ``noop_max=30``: a full reset plays a number of NOOPs drawn uniformly from 1..``noop_max`` with
  the env's ``np_random`` (Mnih et al. 2015), one emulator frame each (as the DQN wrappers
  EfficientZero builds on apply them, before frame skipping); ``0`` disables them.
* ``terminal_on_life_loss=True`` (for *training*; Mnih et al. 2015): losing a life while lives
  remain returns ``terminated=True`` with ``info["life_loss"]``, and the next ``reset()``
  *continues the same game* (no emulator reset, no no-ops, the frame stack refilled with the
  current frame), as DQN's episodic-life training did; the game itself ends only at game over
  (``info["game_over"]``) or the frame cap. ``reset(options={"full_reset": True})`` starts a new
  game regardless. Evaluation plays whole games: build evaluation envs with
  :func:`evaluation_options` (``terminal_on_life_loss=False, clip_rewards=False``).
  ``info["lives"]`` always carries the lives left.
* ``clip_rewards=True`` (training; Mnih et al. 2015): the reward is the sign of the step's summed
  game score, ``info["raw_reward"]`` always carries the unclipped score, so returns in game points
  are available whatever the setting.
* ``max_frames=108_000``: a game is cut after 108,000 emulator frames (30 minutes at 60 Hz,
  Machado et al. 2018), counted by ALE from the game's reset, no-op frames included, across the
  life-loss episodes of one game; the step reaching it returns ``truncated=True`` (never together
  with ``terminated``). ``None`` disables the cap.
* The minimal action set of the game (ALE's ``getMinimalActionSet``), as ``Discrete(n)``.
* Observation: ``uint8 [C * frame_stack, size, size]``, channels first, the oldest frame first
  (a reset fills the stack with the first frame). ``size=96, grayscale=False, frame_stack=4`` is
  EfficientZero's ``[12, 96, 96]`` RGB; DreamerV2's is ``size=64, grayscale=True,
  frame_stack=1``. Grayscale is ALE's palette luminance (``getScreenGrayscale``); the 210×160
  screen is resized by area averaging (OpenCV's INTER_AREA, as EfficientZero and DreamerV2 resize).
* ``info``: from ``step``, ``lives``, ``raw_reward``, ``frame`` (emulator frames since the game's
  reset), ``life_loss`` and ``game_over``; from ``reset``, ``lives``, ``frame``, ``noops`` and
  ``continued`` (whether the reset continued a game after a life loss).

Seeding: every random draw (no-op counts, sticky actions) comes from ``np_random``, which
``reset(seed=s)`` seeds, so a seed fixes a game's whole course under the same actions. A reset that
continues a game after a life loss reseeds ``np_random`` too (the collector seeds every reset), but
leaves the emulator where it is, so the game's course then depends on the seeds given. ALE's own
generator drives only its sticky actions, which are off; it gets a fixed seed (the emulation of
these games does not depend on it) and travels in the pickled state anyway.

Pickling (the collector's exact resume): the emulator state is serialised with ALE's
``cloneState(include_rng=True)`` (RAM, CPU, frame counters, ALE's generator), together with the
env's ``np_random``, the previous action (sticky actions), the frame stack and life counter, so
an unpickled env continues bit for bit, sticky actions and later no-op draws included.

ale-py is imported only when an env is built: listing or validating a suite never needs it.
"""
from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
import numpy as np

from lightning_wm.envs.atari_scores import ROM_IDS
from lightning_wm.envs.mario import area_matrix, sticky_buttons

#: ALE's code of the no-op action (``ale_py.Action.NOOP``)
NOOP = 0

#: option overrides that turn a training env into the protocol's evaluation env: whole games (a
#: life loss is no episode end) scored in game points (Mnih et al. 2015; Ye et al. 2021)
EVALUATION_OPTIONS: dict[str, Any] = {"terminal_on_life_loss": False, "clip_rewards": False}


def evaluation_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A task's training ``options`` with :data:`EVALUATION_OPTIONS` applied."""
    return {**dict(options), **EVALUATION_OPTIONS}


def rom_id(game: str) -> str:
    """ale-py's ROM id for ``game`` (a ROM id itself or a score-table name such as
    ``"MsPacman"``); ``ValueError`` naming the accepted ids otherwise."""
    from ale_py import roms

    known = roms.get_all_rom_ids()
    if game in known:
        return game
    if game in ROM_IDS:
        return ROM_IDS[game]
    raise ValueError(f"unknown Atari game {game!r}: give an ALE ROM id (one of "
                     f"{', '.join(sorted(known))}) or one of {', '.join(sorted(ROM_IDS))}")


def _ale_module() -> Any:
    import ale_py

    # ALE prints a banner and ROM notes through its logger; errors still show
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    return ale_py


class AtariEnv(gym.Env):
    """One Atari 2600 game under the Atari-100k protocol (module docstring: every option)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, game: str, frame_skip: int = 4, sticky: float = 0.0, noop_max: int = 30,
                 terminal_on_life_loss: bool = True, clip_rewards: bool = True,
                 max_frames: int | None = 108_000, size: int = 96, grayscale: bool = False,
                 frame_stack: int = 4, render_mode: str | None = None):
        if frame_skip < 1 or frame_stack < 1 or size < 1 or noop_max < 0:
            raise ValueError("need frame_skip, frame_stack, size >= 1 and noop_max >= 0")
        if not 0.0 <= sticky <= 1.0:
            raise ValueError(f"sticky must lie in [0, 1], not {sticky}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, not {max_frames}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}")
        self._config = dict(game=game, frame_skip=frame_skip, sticky=sticky, noop_max=noop_max,
                            terminal_on_life_loss=terminal_on_life_loss,
                            clip_rewards=clip_rewards, max_frames=max_frames, size=size,
                            grayscale=grayscale, frame_stack=frame_stack, render_mode=render_mode)
        self.game, self.frame_skip, self.sticky, self.noop_max = game, frame_skip, sticky, noop_max
        self.terminal_on_life_loss, self.clip_rewards = terminal_on_life_loss, clip_rewards
        self.max_frames, self.size, self.grayscale = max_frames, size, grayscale
        self.frame_stack, self.render_mode = frame_stack, render_mode
        self.metadata = {**self.metadata, "render_fps": 60 // frame_skip}

        ale_py = _ale_module()
        self._rom_path = ale_py.roms.get_rom_path(rom_id(game))
        self.ale = ale_py.ALEInterface()
        # stickiness, frame skipping and pooling are done here; ALE's generator then draws nothing
        self.ale.setFloat("repeat_action_probability", 0.0)
        self.ale.setInt("frame_skip", 1)
        self.ale.setInt("random_seed", 0)
        self.ale.loadROM(self._rom_path)
        minimal = self.ale.getMinimalActionSet()
        self._codes = [int(a.value) for a in minimal]  # ALE action codes, by agent action
        self._names = [a.name for a in minimal]
        self.action_space = gym.spaces.Discrete(len(self._codes))

        height, width = self.ale.getScreenDims()
        channels = 1 if grayscale else 3
        self._screens = np.zeros((2, height, width) if grayscale else (2, height, width, 3),
                                 np.uint8)  # the last two emulated frames of a step
        self._rows = area_matrix(height, size)
        self._cols = area_matrix(width, size).T.copy()
        self._stack = np.zeros((frame_stack, channels, size, size), np.uint8)
        self.observation_space = gym.spaces.Box(0, 255, (channels * frame_stack, size, size),
                                                np.uint8)
        self._previous = NOOP  # the ALE action executed at the last emulated frame
        self._lives = 0
        self._over = True  # no episode in flight: step() needs a reset first
        self._continues = False  # the last episode ended by a life loss: reset continues the game

    # gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        full = not self._continues or bool((options or {}).get("full_reset", False))
        noops = 0
        if full:
            noops = self._new_game()
            self._stack[:] = self._process(self._grab(0))
        else:
            # a life-loss episode: the game goes on from its current frame
            self._stack[:] = self._stack[-1]
        self._lives = self.ale.lives()
        self._over, self._continues = False, False
        info = {"lives": self._lives, "frame": self.ale.getEpisodeFrameNumber(),
                "noops": noops, "continued": not full}
        return self._observation(), info

    def step(self, action):
        if self._over:
            raise RuntimeError("step() after the episode ended: call reset()")
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}")
        raw, emulated = 0.0, 0
        for code in sticky_buttons(self.np_random, self._codes[int(action)], self._previous,
                                   self.frame_skip, self.sticky):
            raw += self.ale.act(code)
            self._previous = code
            self._grab(emulated % 2)
            emulated += 1
            if self.ale.game_over() or self._capped():
                break
        if emulated > 1:
            frame = np.maximum(self._screens[0], self._screens[1])
        else:
            frame = self._screens[0]
        self._stack[:-1] = self._stack[1:]
        self._stack[-1] = self._process(frame)

        lives, game_over = self.ale.lives(), self.ale.game_over()
        life_loss = lives < self._lives and not game_over
        self._lives = lives
        terminated = game_over or (self.terminal_on_life_loss and life_loss)
        truncated = not terminated and self._capped()
        self._over = terminated or truncated
        self._continues = terminated and not game_over
        reward = float(np.sign(raw)) if self.clip_rewards else raw
        info = {"lives": lives, "raw_reward": raw, "frame": self.ale.getEpisodeFrameNumber(),
                "life_loss": life_loss, "game_over": game_over}
        return self._observation(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode == "rgb_array":
            return self.ale.getScreenRGB()
        return None

    def get_action_meanings(self) -> list[str]:
        return list(self._names)

    # internals
    def _new_game(self) -> int:
        """Reset the emulator and play the no-op start; returns the number of no-ops."""
        self.ale.reset_game()
        noops = int(self.np_random.integers(1, self.noop_max + 1)) if self.noop_max else 0
        for _ in range(noops):
            self.ale.act(NOOP)
            if self.ale.game_over():  # the no-ops alone ended the game: start it again
                self.ale.reset_game()
        self._previous = NOOP
        return noops

    def _capped(self) -> bool:
        return self.max_frames is not None and \
            self.ale.getEpisodeFrameNumber() >= self.max_frames

    def _grab(self, slot: int) -> np.ndarray:
        """The current screen, written into buffer ``slot`` (no allocation per frame)."""
        if self.grayscale:
            self.ale.getScreenGrayscale(self._screens[slot])
        else:
            self.ale.getScreenRGB(self._screens[slot])
        return self._screens[slot]

    def _process(self, frame: np.ndarray) -> np.ndarray:
        """``[C, size, size]`` uint8: the screen area-averaged to ``size`` × ``size``."""
        planes = frame[None] if self.grayscale else frame.transpose(2, 0, 1)
        out = self._rows @ planes.astype(np.float32) @ self._cols
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def _observation(self) -> np.ndarray:
        return self._stack.reshape(self.observation_space.shape).copy()

    # pickling: config + RNG + ALE's serialised state + previous action + the frame stack
    def __getstate__(self) -> dict[str, Any]:
        return {"config": self._config, "rng": self._np_random, "rng_seed": self._np_random_seed,
                "ale": self.ale.cloneState(include_rng=True).serialize(),
                "previous": self._previous, "stack": self._stack.copy(), "lives": self._lives,
                "over": self._over, "continues": self._continues}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["config"])
        self._np_random, self._np_random_seed = state["rng"], state["rng_seed"]
        self.ale.restoreState(_ale_module().ALEState(state["ale"]))
        self._previous, self._stack = state["previous"], state["stack"].copy()
        self._lives, self._over, self._continues = state["lives"], state["over"], state["continues"]
