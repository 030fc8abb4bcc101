"""Atari adapter (atari100k): observation layout, frame skip and max-pooling checked against a
second ALE driven by hand, reward clipping, life loss as a training-only episode end, the frame
cap, seeded no-op starts, pickling mid-episode, and the reference score table.

The emulator tests skip without ale-py; the score-table tests need nothing but the module.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from lightning_wm.envs import ENV_OPTIONS, PAD_OPTIONS, check_env_options, make_env
from lightning_wm.envs.atari import EVALUATION_OPTIONS, AtariEnv, evaluation_options
from lightning_wm.envs.atari_scores import (ATARI100K_GAMES, ROM_IDS, SCORES, XTRA_EXTRA_GAMES,
                                            game_name, has_human_score, human_normalised)
from lightning_wm.envs.mario import area_matrix
from lightning_wm.options import UnknownOptionsError, declared_types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
needs_ale = pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py")
# Breakout's minimal action set
NOOP, FIRE, RIGHT, LEFT = 0, 1, 2, 3


def _serve_and_wait(env: AtariEnv):
    """Launch Breakout's ball and wait, paddle still, until a life is lost (about 25 steps)."""
    for i in range(200):
        obs, reward, terminated, truncated, info = env.step(FIRE if i == 0 else NOOP)
        if info["life_loss"]:
            return i, obs, terminated, truncated, info
    raise AssertionError("no life lost in 200 steps")


# -- the option table -----------------------------------------------------------------------------
def test_declared_options_equal_the_constructor_keywords():
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    keywords = {n for n, p in inspect.signature(AtariEnv).parameters.items() if p.kind in kinds}
    assert ENV_OPTIONS["atari"] == keywords | set(PAD_OPTIONS)
    assert ENV_OPTIONS["atari"] - set(PAD_OPTIONS) <= set(declared_types(AtariEnv))
    with pytest.raises(UnknownOptionsError, match="'frame_skip'"):
        check_env_options("atari", {"game": "pong", "frameskip": 4})


def test_listing_never_imports_ale():
    code = ("import sys\n"
            "import lightning_wm.envs, lightning_wm.envs.atari, lightning_wm.envs.atari_scores\n"
            "assert 'ale_py' not in sys.modules")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_evaluation_options_turn_off_life_loss_and_clipping_only():
    training = {"game": "pong", "size": 64, "terminal_on_life_loss": True, "clip_rewards": True}
    assert evaluation_options(training) == {"game": "pong", "size": 64,
                                            "terminal_on_life_loss": False, "clip_rewards": False}
    assert training["clip_rewards"] is True  # the training options are left as they were
    assert set(EVALUATION_OPTIONS) <= ENV_OPTIONS["atari"]


# -- observations, frame skip, max-pool -----------------------------------------------------------
@needs_ale
def test_observation_layout_rgb_stack_and_grayscale():
    env = make_env("atari", {"game": "Breakout"})
    obs, info = env.reset(seed=0)
    assert obs.shape == (12, 96, 96) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs) and env.action_space.n == 4
    assert env.get_action_meanings() == ["NOOP", "FIRE", "RIGHT", "LEFT"]
    # a reset fills the stack with its first frame, oldest first
    assert all(np.array_equal(obs[:3], obs[k:k + 3]) for k in (3, 6, 9))
    assert obs.max() > 0 and info["lives"] == 5

    dreamer = AtariEnv("breakout", size=64, grayscale=True, frame_stack=1)
    obs, _ = dreamer.reset(seed=0)
    assert obs.shape == (1, 64, 64) and obs.dtype == np.uint8
    assert dreamer.observation_space.shape == (1, 64, 64)


@needs_ale
@pytest.mark.parametrize("skip", [4, 2])
def test_frame_skip_advances_that_many_emulator_frames(skip):
    env = AtariEnv("pong", frame_skip=skip, noop_max=0)
    _, info = env.reset(seed=0)
    assert info["frame"] == 0
    for k in range(1, 6):
        _, _, _, _, info = env.step(NOOP)
        assert info["frame"] == env.ale.getEpisodeFrameNumber() == k * skip


@needs_ale
def test_observation_is_the_max_of_the_last_two_frames():
    """A second ALE, stepped frame by frame under the same actions, gives the frames; the env's
    newest observation is their area-resized pixel-wise maximum, not the last frame alone."""
    import ale_py
    from ale_py import roms

    env = AtariEnv("breakout", noop_max=0, frame_stack=1)
    env.reset(seed=0)
    ale = ale_py.ALEInterface()
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.loadROM(roms.get_rom_path("breakout"))
    ale.reset_game()
    codes = [a.value for a in ale.getMinimalActionSet()]
    rows, cols = area_matrix(210, 96), area_matrix(160, 96).T

    def resize(frame):
        return np.clip(np.rint(rows @ frame.transpose(2, 0, 1).astype(np.float32) @ cols),
                       0, 255).astype(np.uint8)

    pooled_differs = 0
    for i, action in enumerate([FIRE] + [RIGHT, LEFT, NOOP] * 6):
        obs, *_ = env.step(action)
        frames = []
        for _ in range(4):
            ale.act(codes[action])
            frames.append(ale.getScreenRGB())
        assert np.array_equal(obs, resize(np.maximum(frames[-2], frames[-1])))
        pooled_differs += not np.array_equal(obs, resize(frames[-1]))
    assert pooled_differs > 0  # the pooling is visible: the ball moves between the two frames


# -- rewards, lives, the frame cap ----------------------------------------------------------------
@needs_ale
@pytest.mark.parametrize("clip", [True, False])
def test_reward_clipping_keeps_the_raw_score_in_info(clip):
    env = AtariEnv("ms_pacman", noop_max=0, clip_rewards=clip)
    env.reset(seed=0)
    for _ in range(150):  # Ms. Pac-Man eats 10-point pellets once the intro music ends
        _, reward, _, _, info = env.step(3)  # LEFT
        if info["raw_reward"] > 1:
            break
    assert info["raw_reward"] == 10.0
    assert reward == (1.0 if clip else 10.0)


@needs_ale
def test_life_loss_ends_the_training_episode_only_and_the_game_continues():
    training = AtariEnv("breakout", noop_max=0)
    training.reset(seed=0)
    step, obs, terminated, truncated, info = _serve_and_wait(training)
    assert terminated and not truncated
    assert info["lives"] == 4 and not info["game_over"]
    with pytest.raises(RuntimeError, match="reset"):
        training.step(NOOP)
    frame = info["frame"]
    obs2, info2 = training.reset(seed=123)  # the collector seeds every reset
    assert info2["continued"] and info2["lives"] == 4 and info2["frame"] == frame
    assert all(np.array_equal(obs2[k:k + 3], obs[-3:]) for k in (0, 3, 6, 9))
    _, _, _, _, after = training.step(FIRE)
    assert after["frame"] == frame + 4  # the same game goes on

    evaluation = AtariEnv("breakout", noop_max=0, **EVALUATION_OPTIONS)
    evaluation.reset(seed=0)
    step2, _, terminated, truncated, info = _serve_and_wait(evaluation)
    assert step2 == step and info["lives"] == 4
    assert not terminated and not truncated
    evaluation.step(FIRE)  # the episode goes on


@needs_ale
def test_full_reset_option_and_game_over_start_a_new_game():
    env = AtariEnv("breakout", noop_max=0)
    env.reset(seed=0)
    _serve_and_wait(env)
    _, info = env.reset(options={"full_reset": True})
    assert not info["continued"] and info["lives"] == 5 and info["frame"] == 0


@needs_ale
def test_frame_cap_truncates_exactly_at_max_frames():
    env = AtariEnv("pong", noop_max=0, max_frames=40)
    env.reset(seed=0)
    for k in range(1, 11):
        _, _, terminated, truncated, info = env.step(NOOP)
        assert not terminated and truncated == (k == 10)
    assert info["frame"] == 40
    _, info = env.reset()
    assert not info["continued"] and info["frame"] == 0

    # with a no-op start the cap still counts emulator frames: the last step stops at the cap
    env = AtariEnv("pong", max_frames=41)
    _, info = env.reset(seed=1)
    truncated = False
    while not truncated:
        _, _, _, truncated, info = env.step(NOOP)
    assert info["frame"] == 41


# -- seeding --------------------------------------------------------------------------------------
@needs_ale
def test_noop_starts_are_drawn_from_the_seed():
    env, other = AtariEnv("pong"), AtariEnv("pong")
    starts = {}
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        obs2, info2 = other.reset(seed=seed)
        assert info["noops"] == info2["noops"] and np.array_equal(obs, obs2)
        assert 1 <= info["noops"] <= 30 and info["frame"] == info["noops"]
        starts[seed] = info["noops"]
    assert len(set(starts.values())) > 1
    assert env.reset(seed=3)[1]["noops"] == starts[3]
    assert AtariEnv("pong", noop_max=0).reset(seed=3)[1]["noops"] == 0


@needs_ale
def test_pickled_mid_episode_env_continues_bit_for_bit():
    """Sticky actions (whose previous action the pickle must hold), life-loss resets and later
    no-op draws all continue identically; the copy is itself re-pickled every 20 steps (sticky
    0.5 makes a lost previous action show within a few of them)."""
    env = AtariEnv("breakout", sticky=0.5, size=64)
    env.reset(seed=7)
    rng = np.random.default_rng(0)
    for _ in range(40):
        *_, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            env.reset()
    clone = pickle.loads(pickle.dumps(env))
    resets = 0
    for k, action in enumerate(rng.integers(4, size=200)):
        if k and k % 20 == 0:
            clone = pickle.loads(pickle.dumps(clone))
        a, b = env.step(int(action)), clone.step(int(action))
        assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]
        if a[2] or a[3]:
            ra, rb = env.reset(), clone.reset()
            assert np.array_equal(ra[0], rb[0]) and ra[1] == rb[1]
            resets += 1
    assert resets > 0  # the window crosses an episode end


@needs_ale
def test_pickling_around_a_life_loss():
    """Pickled the step before a life loss, the copy still sees the loss; pickled between the
    loss and the reset, the copy's reset still continues the game."""
    env = AtariEnv("breakout", noop_max=0)
    env.reset(seed=0)
    step, *_ = _serve_and_wait(env)
    before = AtariEnv("breakout", noop_max=0)
    before.reset(seed=0)
    for i in range(step):
        before.step(FIRE if i == 0 else NOOP)
    copy = pickle.loads(pickle.dumps(before))
    _, _, terminated, _, info = copy.step(NOOP)
    assert terminated and info["life_loss"] and info["lives"] == 4

    after = pickle.loads(pickle.dumps(env))
    (obs, info), (obs2, info2) = env.reset(), after.reset()
    assert info == info2 and info["continued"] and np.array_equal(obs, obs2)


@needs_ale
def test_unknown_game_names_the_accepted_ids():
    with pytest.raises(ValueError, match="unknown Atari game 'pongg'") as info:
        AtariEnv("pongg")
    assert "pong" in str(info.value) and "ms_pacman" in str(info.value)
    assert "MsPacman" in str(info.value)


# -- reference scores -----------------------------------------------------------------------------
def test_score_table_has_the_26_and_8_games():
    assert len(ATARI100K_GAMES) == len(set(ATARI100K_GAMES)) == 26
    assert len(XTRA_EXTRA_GAMES) == len(set(XTRA_EXTRA_GAMES)) == 8
    assert set(SCORES) == set(ATARI100K_GAMES) | set(XTRA_EXTRA_GAMES) == set(ROM_IDS)
    assert {g for g in SCORES if not has_human_score(g)} == {"Carnival", "Pooyan"}
    for game in ATARI100K_GAMES:
        assert SCORES[game].human > SCORES[game].random


@pytest.mark.parametrize("game, random, human", [
    ("Assault", 222.4, 742.0), ("BattleZone", 2360.0, 37187.5), ("Hero", 1027.0, 30826.4),
    ("Krull", 1598.0, 2665.5), ("Seaquest", 68.4, 42054.7)])
def test_known_reference_values(game, random, human):
    assert SCORES[game] == (random, human)


def test_human_normalised_by_hand():
    assert human_normalised("Pong", 14.6) == pytest.approx(1.0)
    assert human_normalised("pong", -20.7) == 0.0
    # Krull: (7735.8 - 1598) / (2665.5 - 1598) = 6137.8 / 1067.5
    assert human_normalised("Krull", 7735.8) == pytest.approx(6137.8 / 1067.5)
    assert human_normalised("ms_pacman", 1281.4) == pytest.approx(974.1 / 6644.3)
    with pytest.raises(ValueError, match="'Carnival' has no published human score"):
        human_normalised("Carnival", 3000.0)
    with pytest.raises(KeyError, match="no reference scores"):
        game_name("Tetris")


@needs_ale
def test_every_table_game_has_its_rom():
    from ale_py import roms

    known = set(roms.get_all_rom_ids())
    assert set(ROM_IDS.values()) <= known
