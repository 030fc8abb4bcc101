"""Local launcher: in this process one run at a time, or a pool of worker processes."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from benchmarks.graph import RunSpec
from benchmarks.runner import ExecOptions, Factories, execute


class _Done:
    def __init__(self, record) -> None:
        self.record = record


class LocalLauncher:
    def __init__(self, opts: ExecOptions, workers: int = 1, factories: Factories | None = None):
        self.opts, self.workers, self.factories = opts, max(1, workers), factories
        self.slots = self.workers
        self.pool = None
        if self.workers > 1:
            # spawn: a forked child would inherit torch's threads and Lightning's state
            self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))

    def start(self, spec: RunSpec):
        if self.pool is None:
            return _Done(execute(spec, self.opts, self.factories))
        return self.pool.submit(_worker, spec.to_dict(), self.opts)

    def wait(self, handles):
        done = [h for h in handles if isinstance(h, _Done)]
        if done:
            return [(h, h.record) for h in done]
        finished, _ = wait([h for h in handles if isinstance(h, Future)], return_when=FIRST_COMPLETED)
        return [(h, h.result()) for h in finished]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _worker(spec: dict, opts: ExecOptions):
    import torch
    torch.set_num_threads(1)  # several runs share the cores
    return execute(RunSpec.from_dict(spec), opts)
