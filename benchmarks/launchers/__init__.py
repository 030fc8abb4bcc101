"""Launchers execute a run graph: dependencies first, failures isolated, dependents blocked.

A launcher only knows how to start one run and wait for some to finish; the scheduling loop in
:func:`run_graph` is shared, so ``local`` and ``ray`` produce the same records.
"""
from __future__ import annotations

from typing import Callable, Protocol

from benchmarks.graph import RunSpec
from benchmarks.results import RunRecord


class Launcher(Protocol):
    slots: int  # how many runs may be in flight

    def start(self, spec: RunSpec) -> object: ...
    def wait(self, handles: list[object]) -> list[tuple[object, RunRecord]]: ...
    def close(self) -> None: ...


def run_graph(specs: list[RunSpec], launcher: Launcher,
              block: Callable[[RunSpec, str], RunRecord],
              on_done: Callable[[RunSpec, RunRecord, int, int], None] | None = None,
              finished: dict[str, RunRecord] | None = None) -> list[RunRecord]:
    """Run ``specs`` (in dependency order) and return their records in the same order.

    ``finished`` holds the records of runs already completed; they are not started again.
    """
    by_id = {s.run_id: s for s in specs}
    records: dict[str, RunRecord] = dict(finished or {})
    pending = [s for s in specs if s.run_id not in records]
    in_flight: dict[object, RunSpec] = {}
    total = len(specs)
    try:
        while pending or in_flight:
            for spec in list(pending):
                bad = [d for d in spec.deps if d in records and records[d].status != "completed"]
                if bad:  # a dependency failed or was blocked: never start this run
                    pending.remove(spec)
                    records[spec.run_id] = block(spec, f"dependency {bad[0]} is {records[bad[0]].status}")
                    if on_done:
                        on_done(spec, records[spec.run_id], len(records), total)
                elif all(d in records for d in spec.deps) and len(in_flight) < launcher.slots:
                    pending.remove(spec)
                    in_flight[launcher.start(spec)] = spec
            if not in_flight:
                continue
            for handle, record in launcher.wait(list(in_flight)):
                spec = in_flight.pop(handle)
                records[spec.run_id] = record
                if on_done:
                    on_done(spec, record, len(records), total)
    finally:
        launcher.close()
    missing = set(by_id) - set(records)
    assert not missing, missing
    return [records[s.run_id] for s in specs]
