"""`run` without --workers: one run per free core on a CPU profile, one on an accelerator."""
from __future__ import annotations

import argparse

import pytest

from benchmarks import cli


def _args(**kw):
    return argparse.Namespace(**{"accelerator": None, "launcher": "local", **kw})


@pytest.mark.parametrize("free, pending, expected", [(2, 11, 2), (2, 1, 1), (0, 5, 1), (8, 3, 3)])
def test_cpu_profiles_use_the_free_cores(monkeypatch, free, pending, expected):
    monkeypatch.setattr("benchmarks.launchers.local.free_cores", lambda: max(1, free))
    assert cli._default_workers(_args(), "cpu", 1, pending) == expected


@pytest.mark.parametrize("args, accelerator, devices", [
    (_args(), "gpu", 1),                      # the profile asks for an accelerator
    (_args(accelerator="gpu"), "cpu", 1),     # the command line does
    (_args(), "cpu", 2),                      # several devices per run (DDP)
    (_args(launcher="ray"), "cpu", 1),        # Ray schedules by its own resources
])
def test_accelerators_and_multi_device_runs_take_one_at_a_time(monkeypatch, args, accelerator,
                                                               devices):
    monkeypatch.setattr("benchmarks.launchers.local.free_cores", lambda: 8)
    assert cli._default_workers(args, accelerator, devices, 10) == 1


def test_free_cores_is_at_least_one_and_at_most_the_usable_cores(monkeypatch):
    import os
    monkeypatch.undo()  # the real function, not the tests' one-worker default

    from benchmarks.launchers.local import free_cores
    assert 1 <= free_cores() <= len(os.sched_getaffinity(0))
