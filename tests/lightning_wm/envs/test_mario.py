"""Super Mario Bros adapter: action set, sticky actions, reward clipping, the multi-level env,
seeding, pickling mid-episode, and the adapter under the project's NumPy with nothing patched or
imported from gym / nes-py's Python layer.

The emulator tests skip without nes-py and gym-super-mario-bros. They are detected with
``find_spec`` rather than ``pytest.importorskip``, which would import them (and gym 0.26, whose
import registers envs and prints a notice) into the test process; the adapter itself never
imports them, and the leak test checks that in a fresh interpreter.
"""
from __future__ import annotations

import copy
import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lightning_wm.envs import ENVS
from lightning_wm.envs.mario import (ACTION_BYTES, ACTION_NAMES, LEVELS, area_matrix, clip_reward,
                                     sticky_buttons)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HAVE_NES = all(importlib.util.find_spec(m) is not None for m in ("nes_py", "gym_super_mario_bros"))
needs_nes = pytest.mark.skipif(not HAVE_NES, reason="needs nes-py and gym-super-mario-bros")
RIGHT, RUN_RIGHT = 1, 3


def run_python(code: str, timeout: int = 120) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


# --- pure parts (no emulator) -----------------------------------------------------------------

def test_complex_movement_action_set():
    assert len(ACTION_BYTES) == len(ACTION_NAMES) == 12
    # NES pad bits: right 0x80, left 0x40, down 0x20, up 0x10, B 0x02, A 0x01
    assert ACTION_BYTES == (0, 0x80, 0x81, 0x82, 0x83, 0x01, 0x40, 0x41, 0x42, 0x43, 0x20, 0x10)
    assert ACTION_NAMES[0] == "NOOP" and ACTION_NAMES[4] == "right, A, B"
    assert len(LEVELS) == 32 and LEVELS[0] == "1-1" and LEVELS[-1] == "8-4"
    assert "mario" in ENVS


def test_sticky_buttons_follow_machado_per_frame():
    rng = np.random.default_rng(0)
    assert sticky_buttons(rng, 7, 3, 4, 0.0) == [7, 7, 7, 7]
    assert sticky_buttons(rng, 7, 3, 4, 1.0) == [3, 3, 3, 3]
    runs = np.array([sticky_buttons(rng, 7, 3, 4, 0.2) for _ in range(20000)])
    # once the new buttons are pressed they are the "previous" ones: never back to the old
    assert np.all(np.diff((runs == 7).astype(int), axis=1) >= 0)
    old = (runs == 3).mean(0)  # frame k keeps the old buttons with probability 0.2 ** k
    np.testing.assert_allclose(old, [0.2, 0.04, 0.008, 0.0016], atol=0.012)


def test_reward_clip_and_area_resize():
    assert clip_reward(-25.0, 15) == -15 and clip_reward(20.0, 15) == 15
    assert clip_reward(3.0, 15) == 3 and clip_reward(-40.0, None) == -40
    rows, cols = area_matrix(240, 64), area_matrix(256, 64)
    assert rows.shape == (64, 240) and cols.shape == (64, 256)
    np.testing.assert_allclose(rows.sum(1), 1, rtol=1e-6)
    np.testing.assert_allclose(cols, np.kron(np.eye(64), np.full((1, 4), 0.25)), atol=1e-7)
    np.testing.assert_allclose(rows[0, :4], [1 / 3.75] * 3 + [0.75 / 3.75], rtol=1e-6)


def test_bad_options_fail_before_the_emulator():
    from lightning_wm.envs.mario import MarioEnv

    with pytest.raises(ValueError):
        MarioEnv(level="9-1")
    with pytest.raises(ValueError):
        MarioEnv(level="1-1", levels=["1-2"])
    with pytest.raises(ValueError):
        MarioEnv(sticky=1.5)


# --- the emulator -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env():
    from lightning_wm.envs.mario import MarioEnv

    e = MarioEnv(level="1-1")
    yield e
    e.close()


def rollout(env, actions):
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs.copy(), reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return out


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:]


@needs_nes
def test_spaces_and_observation(env):
    obs, info = env.reset(seed=0)
    assert obs.shape == (1, 64, 64) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert env.action_space.n == 12
    assert info == {"level": "1-1", "x_pos": 40, "time": 400, "flag_get": False, "frames": 0}
    assert 60 < obs.mean() < 200 and obs.std() > 10  # a real picture, not a blank screen
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert isinstance(reward, float) and not terminated and not truncated and info["frames"] == 4


@needs_nes
def test_seeded_reset_is_deterministic(env):
    from lightning_wm.envs.mario import MarioEnv

    acts = np.random.default_rng(1).integers(0, 12, 15)
    env.reset(seed=3)
    first = rollout(env, acts)
    log = bytes(env._log)
    env.reset(seed=3)  # after an episode
    assert_same(first, rollout(env, acts))
    other = MarioEnv(level="1-1")  # a fresh emulator
    other.reset(seed=3)
    assert_same(first, rollout(other, acts))
    other.reset(seed=4)  # other sticky draws: other buttons pressed
    rollout(other, acts)
    assert bytes(other._log) != log
    other.close()


@needs_nes
def test_sticky_actions_in_the_emulator():
    from lightning_wm.envs.mario import MarioEnv

    frozen = MarioEnv(level="1-1", sticky=1.0)  # always the previous buttons: NOOP from reset
    frozen.reset(seed=0)
    steps = rollout(frozen, [RUN_RIGHT] * 8)
    assert {s[4]["x_pos"] for s in steps} == {40} and set(frozen._log) == {0}
    free = MarioEnv(level="1-1", sticky=0.0)
    free.reset(seed=0)
    assert rollout(free, [RUN_RIGHT] * 8)[-1][4]["x_pos"] > 60
    for e in (frozen, free):
        e.close()


@needs_nes
def test_reward_clipping_and_death_terminates(env):
    from lightning_wm.envs.mario import MarioEnv

    env.reset(seed=0)  # sticky 0.2; walking right runs into the first goomba
    steps = rollout(env, [RIGHT] * 120)
    rewards = [s[1] for s in steps]
    assert steps[-1][2] and not steps[-1][3]  # terminated, not truncated
    assert all(-15 <= r <= 15 for r in rewards) and rewards[-1] <= -10  # death: -25 -> -15
    assert max(s[4]["x_pos"] for s in steps) > 255  # past the first page of RAM x (uint8 * 256)
    with pytest.raises(RuntimeError):
        env.step(0)
    tight = MarioEnv(level="1-1", sticky=0.0, clip=2.0)
    tight.reset(seed=0)
    rewards = [s[1] for s in rollout(tight, [RUN_RIGHT] * 10)]
    assert max(rewards) == 2.0 and all(-2 <= r <= 2 for r in rewards)
    tight.close()


@needs_nes
def test_max_steps_truncates():
    from lightning_wm.envs import make_env

    e = make_env("mario", {"level": "1-2", "max_steps": 3, "size": 32, "grayscale": False})
    obs, info = e.reset(seed=0)
    assert obs.shape == (3, 32, 32) and info["level"] == "1-2"
    steps = rollout(e, [0] * 5)
    assert [s[2:4] for s in steps] == [(False, False), (False, False), (False, True)]
    assert e.render() is None
    e.close()


@needs_nes
def test_multi_level_env_draws_uniformly():
    from lightning_wm.envs import make_env

    e = make_env("mario", {"levels": ["1-1", "3-1"]})
    drawn = [e.reset(seed=s)[1]["level"] for s in range(100)]
    assert set(drawn) == {"1-1", "3-1"} and 30 <= drawn.count("3-1") <= 70
    assert drawn == [e.reset(seed=s)[1]["level"] for s in range(100)]  # seeded draws
    day = e.reset(options={"level": "1-1"})[0]
    obs, info = e.reset(options={"level": "3-1"})
    assert info["level"] == "3-1" and obs.mean() < day.mean() - 30  # 3-1 is a night level
    rollout(e, [RIGHT] * 3)
    assert sorted(e._consoles) == ["1-1", "3-1"]  # one emulator per level, made on first draw
    e.close()


@needs_nes
def test_pickle_mid_episode_continues_identically():
    from lightning_wm.envs.mario import MarioEnv

    e = MarioEnv(levels=["1-1", "1-2"])
    assert pickle.loads(pickle.dumps(e))._level is None  # before any reset
    e.reset(seed=5)
    rollout(e, np.random.default_rng(2).integers(0, 12, 8))
    clone, twin = pickle.loads(pickle.dumps(e)), copy.deepcopy(e)
    assert clone._level == twin._level == e._level and clone._consoles.keys() == {e._level}
    acts = np.random.default_rng(3).integers(0, 12, 6)
    expected = rollout(e, acts)
    assert_same(expected, rollout(clone, acts))  # same emulator state and same sticky draws
    assert_same(expected[:1], rollout(twin, acts[:1]))
    assert clone.np_random.random() == e.np_random.random()  # the RNG goes on identically
    for x in (e, clone, twin):
        x.close()


@needs_nes
def test_no_leaks_under_the_projects_numpy():
    """In a fresh interpreter: the envs package and the adapter import none of gym / nes_py /
    gym_super_mario_bros; using the adapter adds no ``np.bool8`` and leaves gym's registry, gym's
    env checker and nes-py's classes as they were (nes-py's own ROM parser still overflows under
    NumPy 2, which is why the adapter does not use it)."""
    out = run_python("""
        import sys
        import numpy as np
        heavy = ("gym", "nes_py", "gym_super_mario_bros")
        import lightning_wm.envs, lightning_wm.envs.mario
        from lightning_wm.envs import make_env
        assert not [m for m in heavy if m in sys.modules]
        e = make_env("mario", {"level": "1-1"})
        e.reset(seed=0)
        for _ in range(3):
            e.step(1)
        e.close()
        assert not [m for m in heavy if m in sys.modules], "adapter imported a heavy module"
        assert not hasattr(np, "bool8")
        # now with gym, nes-py and gym-super-mario-bros imported first
        import gym, gym_super_mario_bros, nes_py, nes_py._rom as rom
        from gym.utils import passive_env_checker as checker
        before = (set(gym.envs.registry), dict(vars(checker)), dict(vars(rom.ROM)),
                  dict(vars(nes_py.NESEnv)), dict(vars(gym_super_mario_bros.SuperMarioBrosEnv)))
        e = make_env("mario", {"levels": ["1-1", "2-1"]})
        e.reset(seed=1)
        e.step(2)
        e.close()
        after = (set(gym.envs.registry), dict(vars(checker)), dict(vars(rom.ROM)),
                 dict(vars(nes_py.NESEnv)), dict(vars(gym_super_mario_bros.SuperMarioBrosEnv)))
        assert before == after and not hasattr(np, "bool8")
        path = lightning_wm.envs.mario.rom_path()
        if int(np.__version__.split(".")[0]) >= 2:
            try:
                rom.ROM(path).prg_rom
                raise AssertionError("nes-py's ROM parser no longer overflows")
            except OverflowError:
                pass
        print("ok", np.__version__)
    """)
    assert out.strip().startswith("ok")


REFERENCE = """
    import sys
    import numpy as np
    from nes_py import _rom
    from gym_super_mario_bros import SuperMarioBrosEnv
    from lightning_wm.envs.mario import ACTION_BYTES, _Console, clip_reward

    # the reference under NumPy 2 needs its uint8 arithmetic cast to int (this process only)
    _rom.ROM.prg_rom_size = property(lambda self: 16 * int(self.header[4]))
    _rom.ROM.chr_rom_size = property(lambda self: 8 * int(self.header[5]))
    SuperMarioBrosEnv._x_position = property(
        lambda self: int(self.ram[0x6D]) * 0x100 + int(self.ram[0x86]))
    level, frames = sys.argv[1], int(sys.argv[2])
    ref, ours = SuperMarioBrosEnv(target=tuple(map(int, level.split("-")))), _Console(level)
    rng = np.random.default_rng(0)
    probs = [.02, .2, .15, .2, .25, .04, .04, .02, .02, .02, .02, .02]
    first = np.asarray(ref.reset())
    ours.reset()
    assert (first == ours.screen).all()
    episodes = 0
    for i in range(frames):
        if i % 8 == 0:
            buttons = ACTION_BYTES[rng.choice(12, p=probs)]
        screen, r1, d1, info = ref.step(buttons)
        r2, d2 = ours.frame(buttons)
        assert (r1, d1, info["x_pos"], info["time"]) == (clip_reward(r2, 15), d2, ours.x_pos(),
                                                        ours.time()), i
        assert (np.asarray(screen) == ours.screen).all(), i
        if d1:
            episodes += 1
            ref.reset()
            ours.reset()
    print("episodes", episodes)
"""


@needs_nes
@pytest.mark.slow
@pytest.mark.parametrize("level", ["1-1", "4-2"])
def test_matches_gym_super_mario_bros_frame_by_frame(level):
    """The ported RAM logic gives gym-super-mario-bros' own per-frame rewards, episode ends and
    screens (the reference runs in a subprocess, patched there so it works under NumPy 2)."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(REFERENCE), level, "800"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout.split("episodes")[-1]) >= 1


@needs_nes
def test_creating_a_mario_env_prints_nothing(capfd):
    """The emulator is C++: whatever it printed would bypass ``sys.stdout``; a run's output
    must carry only the benchmark's own lines."""
    from lightning_wm.envs import make_env
    capfd.readouterr()
    env = make_env("mario", {"level": "1-1"})
    env.reset(seed=0)
    env.step(RIGHT)
    env.close()
    assert capfd.readouterr() == ("", "")
