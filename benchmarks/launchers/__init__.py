"""Launchers execute a run graph: dependencies first, failures isolated, dependents blocked.

A launcher only knows how to start one run and wait for some to finish; the scheduling loop in
:func:`run_graph` is shared, so ``local`` and ``ray`` produce the same records. The loop also
takes each run's lock before starting it (see :mod:`benchmarks.locks`) and stops starting runs
once a signal arrives (see :mod:`benchmarks.interrupts`).
"""
from __future__ import annotations

from typing import Callable, Protocol

from benchmarks import interrupts
from benchmarks.graph import RunSpec
from benchmarks.locks import Held
from benchmarks.results import RunRecord


class Launcher(Protocol):
    slots: int  # how many runs may be in flight

    def start(self, spec: RunSpec) -> object: ...
    def wait(self, handles: list[object]) -> list[tuple[object, RunRecord]]: ...
    def close(self) -> None: ...


class _Graph:
    """The scheduling state of one :func:`run_graph` call."""

    def __init__(self, specs, launcher, block, on_done, finished, claim, on_skip) -> None:
        self.launcher, self.block, self.on_done = launcher, block, on_done
        self.claim, self.on_skip = claim, on_skip
        self.records: dict[str, RunRecord] = dict(finished or {})
        self.skipped: dict[str, str] = {}
        self.pending = [s for s in specs if s.run_id not in self.records]
        self.in_flight: dict[object, tuple[RunSpec, object]] = {}  # handle -> (spec, lock)
        self.total = len(specs)

    def _done(self, spec: RunSpec, record: RunRecord) -> None:
        self.records[spec.run_id] = record
        if record.status == "interrupted":  # a signal reached that run's process: stop all
            interrupts.note(interrupts.signal_in(record.error))
        if self.on_done:
            self.on_done(spec, record, len(self.records) + len(self.skipped), self.total)

    def _skip(self, spec: RunSpec, why: str) -> None:
        self.pending.remove(spec)
        self.skipped[spec.run_id] = why
        if self.on_skip:
            self.on_skip(spec, why)

    def start_ready(self) -> None:
        for spec in list(self.pending):
            if interrupts.requested():
                return
            held = [d for d in spec.deps if d in self.skipped]
            bad = [d for d in spec.deps if d in self.records and self.records[d].status != "completed"]
            if held:  # another process runs that dependency and will run this one after it
                self._skip(spec, f"depends on {held[0]}, which another process holds, skipped")
            elif bad:  # a dependency failed or was blocked: never start this run
                self.pending.remove(spec)
                self._done(spec, self.block(spec, f"dependency {bad[0]} is {self.records[bad[0]].status}"))
            elif all(d in self.records for d in spec.deps) and len(self.in_flight) < self.launcher.slots:
                self._start(spec)

    def _start(self, spec: RunSpec) -> None:
        try:
            lock = self.claim(spec) if self.claim else None
        except Held as e:
            self._skip(spec, f"{e}, skipped")
            return
        self.pending.remove(spec)
        try:
            handle = self.launcher.start(spec)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        self.in_flight[handle] = (spec, lock)

    def collect(self) -> None:
        for handle, record in self.launcher.wait(list(self.in_flight)):
            spec, lock = self.in_flight.pop(handle)
            if lock is not None:
                lock.release()  # the record is written: the next writer may come
            self._done(spec, record)

    def release_all(self) -> None:
        for _, lock in self.in_flight.values():
            if lock is not None:
                lock.release()


def run_graph(specs: list[RunSpec], launcher: Launcher,
              block: Callable[[RunSpec, str], RunRecord],
              on_done: Callable[[RunSpec, RunRecord, int, int], None] | None = None,
              finished: dict[str, RunRecord] | None = None,
              claim: Callable[[RunSpec], object] | None = None,
              on_skip: Callable[[RunSpec, str], None] | None = None) -> list[RunRecord]:
    """Run ``specs`` (in dependency order) and return their records in the same order.

    ``finished`` holds the records of runs already completed; they are not started again.
    ``claim(spec)`` locks a run before it starts (an object with ``release()``) or raises
    :class:`~benchmarks.locks.Held`; such a run and its dependents are skipped: ``on_skip`` is
    told, no record is written and the returned list leaves them out. After a signal no run
    starts; those in flight are waited for, then :class:`~benchmarks.interrupts.Interrupted`
    is raised.
    """
    g = _Graph(specs, launcher, block, on_done, finished, claim, on_skip)
    try:
        while (g.pending and not interrupts.requested()) or g.in_flight:
            g.start_ready()
            if g.in_flight:
                g.collect()
    finally:
        g.release_all()
        launcher.close()
    if interrupts.requested():
        raise interrupts.Interrupted(interrupts.received())
    missing = {s.run_id for s in specs} - set(g.records) - set(g.skipped)
    assert not missing, missing
    return [g.records[s.run_id] for s in specs if s.run_id in g.records]
