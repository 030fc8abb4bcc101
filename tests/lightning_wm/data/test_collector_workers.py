"""Collection with the slots' envs in worker processes (``env_workers``): the same results as
in-process stepping, checkpoints that resume in either mode, clear errors, no orphan processes.

The env factories live in ``collector_worker_envs``: a worker imports the module that defines
its factory, and that one stays free of torch and Lightning so workers start in well under a
second.
"""
from __future__ import annotations

import copy
import multiprocessing as mp
import os
import threading

import numpy as np
import pytest

from lightning_wm.data.collector import Collector
from lightning_wm.data.replay import EpisodeReplay
from collector_worker_envs import Crashing, PidEnv, Unpicklable, corridor, failing_env, pendulum

ACTION_DIM = 2


def make_collector(workers, seed=7, num_envs=3, tasks=(0, 1), sampling="uniform"):
    return Collector(corridor, list(tasks), num_envs, ACTION_DIM, seed, sampling, env_workers=workers)


def right_policy(obs, is_first):
    out = np.zeros((len(obs), ACTION_DIM), np.float32)
    out[:, 1] = 1.0
    return out


def run(collector, replay):
    """Random then policy phases, with n not a multiple of the slots."""
    returns = collector.collect(None, 31, replay)
    returns += collector.collect(right_policy, 20, replay)
    return returns


def assert_same_replay(a: EpisodeReplay, b: EpisodeReplay):
    assert list(a.task_ids) == list(b.task_ids)
    assert len(a.episodes) == len(b.episodes) > 0
    for ea, eb in zip(a.episodes, b.episodes):
        assert ea.keys() == eb.keys()
        for k in ea:
            assert ea[k].dtype == eb[k].dtype, k
            np.testing.assert_array_equal(ea[k], eb[k])


def worker_children():
    return [p for p in mp.active_children() if p.name.startswith("env-worker")]


# -- the same results -----------------------------------------------------------------------------
def test_workers_collect_exactly_what_in_process_collects():
    replays, runs = [], []
    for workers in (0, 2):
        c = make_collector(workers)
        replay = EpisodeReplay(10_000)
        runs.append((run(c, replay), c.env_steps, c.episodes_started,
                     [(s.task, None if s.obs is None else s.obs.tolist(), s.ret) for s in c.slots]))
        replays.append(replay)
        c.close()
    assert runs[0] == runs[1]
    assert_same_replay(*replays)


def test_slots_are_spread_round_robin_over_worker_processes():
    c = Collector(lambda task: PidEnv(), [0], 5, ACTION_DIM, 0, env_workers=2)
    c.collect(None, 5, EpisodeReplay(100))
    pids = [int(s.obs[0]) for s in c.slots]
    assert pids[0] == pids[2] == pids[4] != pids[1] == pids[3]
    assert os.getpid() not in pids
    c.close()


def test_more_workers_than_slots_start_one_per_slot():
    c = make_collector(workers=4, num_envs=2)
    assert len(c.envs.procs) == 2
    c.close()


def test_negative_env_workers_rejected():
    with pytest.raises(ValueError, match="env_workers"):
        make_collector(workers=-1)


# -- checkpoints ----------------------------------------------------------------------------------
@pytest.mark.parametrize("resume_workers", [2, 0])
def test_state_from_workers_resumes_identically(resume_workers):
    a = make_collector(2)
    replay_a = EpisodeReplay(10_000)
    a.collect(None, 23, replay_a)
    assert any(s.obs is not None and len(s.steps["reward"]) > 1 for s in a.slots)  # mid-episode
    state = copy.deepcopy(a.state_dict())
    assert state["in_flight"] is not None
    replay_state = copy.deepcopy(replay_a.state_dict())
    ret_a = run(a, replay_a)

    # a checkpoint moves between modes: the envs are pickled wherever they live
    b = make_collector(resume_workers)
    b.collect(None, 5, EpisodeReplay(10_000))  # stale state that the load must replace
    replay_b = EpisodeReplay(10_000)
    replay_b.load_state_dict(replay_state)
    b.load_state_dict(state)
    assert run(b, replay_b) == ret_a
    assert a.env_steps == b.env_steps
    assert_same_replay(replay_a, replay_b)
    a.close(), b.close()


def test_unsigned_env_state_of_the_older_format_restarts_episodes(caplog):
    import pickle

    a = make_collector(0)
    a.collect(None, 23, EpisodeReplay(10_000))
    state = a.state_dict()
    # before signing, env state was a bare pickle: it is never unpickled now
    state["in_flight"] = pickle.dumps([(pickle.loads(blob), *rest) for blob, *rest
                                       in pickle.loads(state["in_flight"]["pickle"])])
    b = make_collector(0)
    with caplog.at_level("WARNING"):
        b.load_state_dict(copy.deepcopy(state))
    assert "not signed with this machine's key" in caplog.text
    assert all(s.obs is None for s in b.slots)  # episodes in flight restart
    assert b.env_steps == a.env_steps and b.episodes_started == a.episodes_started


def test_in_flight_none_when_worker_envs_cannot_be_pickled():
    c = Collector(Unpicklable, [0], 2, ACTION_DIM, 0, env_workers=2)
    c.collect(None, 4, EpisodeReplay(100))
    assert c.state_dict()["in_flight"] is None
    c.close()


# -- errors and shutdown --------------------------------------------------------------------------
def test_unpicklable_factory_is_named_with_env_workers():
    lock = threading.Lock()
    with pytest.raises(TypeError, match="env_workers=2.*cannot be pickled"):
        Collector(lambda task: (lock, corridor(task))[1], [0], 2, ACTION_DIM, 0, env_workers=2)
    assert not worker_children()


def test_worker_errors_reach_the_collector():
    c = Collector(failing_env, [0], 2, ACTION_DIM, 0, env_workers=2)
    with pytest.raises(RuntimeError, match="no such simulator"):
        c.collect(None, 2, EpisodeReplay(100))
    c.close()


def test_a_worker_that_dies_is_reported():
    c = Collector(lambda task: Crashing(length=5), [0], 2, ACTION_DIM, 0, env_workers=2)
    with pytest.raises(RuntimeError, match="exit code 3"):
        c.collect(None, 2, EpisodeReplay(100))
    with pytest.raises(RuntimeError, match="exit code 3"):  # and stays reported
        c.collect(None, 2, EpisodeReplay(100))
    c.close()
    assert not worker_children()


def test_close_stops_every_worker_and_is_idempotent():
    c = make_collector(2)
    c.collect(None, 6, EpisodeReplay(100))
    procs = list(c.envs.procs)
    assert all(p.is_alive() for p in procs)
    c.close()
    c.close()
    assert not any(p.is_alive() for p in procs)
    assert c.env_steps == 6  # counters stay readable after close


def test_dropped_collector_stops_its_workers():
    c = make_collector(2)
    procs = list(c.envs.procs)
    del c
    for p in procs:
        p.join(timeout=10)
    assert not any(p.is_alive() for p in procs)


# -- pybullet -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_pybullet_pixels_in_workers_match_in_process_and_resume():
    pytest.importorskip("pybullet")
    out = []
    for workers in (0, 2):
        c = Collector(pendulum, [0], 2, 1, seed=3, env_workers=workers)
        c.collect(None, 10, EpisodeReplay(1000))
        state = copy.deepcopy(c.state_dict())
        replay = EpisodeReplay(1000)
        out.append((c.collect(None, 40, replay), replay, state))
        c.close()
    assert out[0][0] == out[1][0] and len(out[0][0]) >= 2
    assert_same_replay(out[0][1], out[1][1])
    resumed = Collector(pendulum, [0], 2, 1, seed=3, env_workers=2)
    resumed.load_state_dict(out[1][2])
    replay = EpisodeReplay(1000)
    assert resumed.collect(None, 40, replay) == out[0][0]
    assert_same_replay(out[0][1], replay)
    resumed.close()


# -- the whole training path ----------------------------------------------------------------------
def _train(tmp, workers, budget=400, callbacks=()):
    import lightning as L

    from lightning_wm.agents import make_agent
    from lightning_wm.pipeline import TrainingConfig
    from lightning_wm.envs import make_env
    from lightning_wm.training import train

    L.seed_everything(0, verbose=False)
    agent = make_agent("tiny_q", (8,), 2, True, {"eps_steps": 300})
    config = TrainingConfig(collect_every=50, updates_per_collect=20, prefill=100, batch_size=32,
                            eval_every=200, eval_episodes=3, checkpoint_every=200, num_envs=4,
                            env_workers=workers)
    result = train(agent, lambda t: make_env("corridor", {"length": 8, "slip": 0.1}), [0], 2,
                   budget=budget, seed=0, config=config, run_dir=tmp, callbacks=callbacks)
    return agent, result


def _assert_same_training(a, ra, b, rb):
    import torch

    assert ra.returns == rb.returns and ra.steps == rb.steps
    assert ra.episode_returns == rb.episode_returns and ra.updates == rb.updates
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


@pytest.mark.slow
def test_training_with_workers_is_the_same_run(tmp_path):
    a, ra = _train(tmp_path / "in_process", 0)
    b, rb = _train(tmp_path / "workers", 2)
    _assert_same_training(a, ra, b, rb)
    assert not worker_children()  # stopped when training ended


@pytest.mark.slow
def test_training_with_workers_resumes_the_same_run(tmp_path):
    from lightning_wm.training import LAST

    full_agent, full = _train(tmp_path / "full", 2)

    from lightning_wm.testing import CrashAfter  # imports Lightning: here, not in the workers

    crash = CrashAfter(300, tmp_path / "cut/checkpoints" / LAST)

    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(tmp_path / "cut", 2, callbacks=[crash])
    assert not worker_children()  # stopped when training crashed
    agent, resumed = _train(tmp_path / "cut", 2)
    assert resumed.resumed_from_step > 0
    _assert_same_training(full_agent, full, agent, resumed)
