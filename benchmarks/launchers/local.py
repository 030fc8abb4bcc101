"""Local launcher: in this process one run at a time, or a pool of worker processes."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from benchmarks import interrupts
from benchmarks.graph import RunSpec
from benchmarks.runner import ExecOptions, Factories, blocked_record, execute


class _Done:
    def __init__(self, record) -> None:
        self.record = record


class LocalLauncher:
    def __init__(self, opts: ExecOptions, workers: int = 1, factories: Factories | None = None):
        self.opts, self.workers, self.factories = opts, max(1, workers), factories
        self.slots = self.workers
        self.pool = None
        self._specs: dict[Future, RunSpec] = {}
        if self.workers > 1:
            # spawn: a forked child would inherit torch's threads and Lightning's state. Each
            # worker catches signals itself (a terminal's Ctrl-C reaches the whole group) and
            # gets ours forwarded (a scheduler's SIGTERM may reach only this process)
            self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                            initializer=interrupts.install)
            # the pool's own table of its processes: the only place their pids are kept
            interrupts.forward_to(self, lambda: list(getattr(self.pool, "_processes", None) or ()))

    def start(self, spec: RunSpec):
        if self.pool is None:
            return _Done(_in_process(spec, self.opts, self.factories))
        future = self.pool.submit(_worker, spec.to_dict(), self.opts)
        self._specs[future] = spec
        return future

    def wait(self, handles):
        done = [h for h in handles if isinstance(h, _Done)]
        if done:
            return [(h, h.record) for h in done]
        finished, _ = wait([h for h in handles if isinstance(h, Future)], return_when=FIRST_COMPLETED)
        return [(h, self._result(h)) for h in finished]

    def _result(self, future: Future):
        spec = self._specs.pop(future)
        try:
            return future.result()
        except BaseException:
            # a worker hit by the signal before it could catch it (still starting) dies, and
            # the pool breaks: the run was stopped, not failed
            if not interrupts.requested():
                raise
            return blocked_record(self.opts.out_root, spec, interrupts.describe(interrupts.received()),
                                  status="interrupted")

    def close(self) -> None:
        if self.pool is not None:
            interrupts.forward_to(self, None)
            self.pool.shutdown(wait=True, cancel_futures=True)


def _in_process(spec: RunSpec, opts: ExecOptions, factories: Factories | None):
    """One run here, on one intra-op thread as in a worker: a CPU reduction split over threads
    sums in another order, and a run's numbers must not depend on ``--workers``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return execute(spec, opts, factories)
    finally:
        torch.set_num_threads(threads)


def _worker(spec: dict, opts: ExecOptions):
    import torch
    torch.set_num_threads(1)  # several runs share the cores; and see _in_process
    return execute(RunSpec.from_dict(spec), opts)


def free_cores() -> int:
    """Cores this process may use that are not busy now (at least 1): the default number of
    parallel runs, so a laptop's idle cores are used and a loaded machine is not oversubscribed."""
    import os
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, min(usable or 1, (os.cpu_count() or 1) - busy))
