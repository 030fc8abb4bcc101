"""Ray launcher: each run a Ray task with its CPU/GPU request, records in the same layout.

Connects to an existing cluster (``address="auto"`` or a ``ray://`` address) or starts a local
one. Ray is an optional extra (``pip install -e ".[ray]"``). Workers write to the shared output
directory, so on a multi-node cluster it must be on a shared filesystem.

Signals are handled on a best-effort basis: once one arrives, in-flight tasks are cancelled
(Ray delivers that as an interrupt in the task, which stops the run at its next update) and
runs whose task did not record themselves are recorded ``interrupted`` by the driver.
"""
from __future__ import annotations

from benchmarks import interrupts
from benchmarks.graph import RunSpec
from benchmarks.runner import ExecOptions, blocked_record

_POLL_S = 0.5  # how often the driver looks at the signal flag while waiting on tasks


def _execute(spec: dict, opts: ExecOptions):
    import torch
    from benchmarks.runner import execute
    torch.set_num_threads(1)
    # Ray reuses worker processes and has handlers of its own: catch SIGINT (what a cancel
    # delivers) only for this task, starting from a clear flag
    interrupts.install()
    try:
        return execute(RunSpec.from_dict(spec), opts)
    finally:
        interrupts.uninstall()


class RayLauncher:
    def __init__(self, opts: ExecOptions, address: str | None = None, num_cpus: float = 1,
                 num_gpus: float = 0, max_in_flight: int | None = None,
                 local_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError as e:
            raise RuntimeError("the ray launcher needs Ray: pip install -e '.[ray]'") from e
        self.ray, self.opts = ray, opts
        self._started = not ray.is_initialized()
        if self._started:
            kwargs = {"address": address} if address else {"num_cpus": local_cpus}
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        total = ray.cluster_resources().get("CPU", 1)
        self.slots = max_in_flight or max(1, int(total // max(num_cpus, 1e-9)))
        self.remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus)(_execute)
        self._specs: dict[object, RunSpec] = {}
        self._cancelled = False

    def start(self, spec: RunSpec):
        ref = self.remote.remote(spec.to_dict(), self.opts)
        self._specs[ref] = spec
        return ref

    def wait(self, handles):
        while True:
            ready, _ = self.ray.wait(handles, num_returns=1, timeout=_POLL_S)
            if ready:
                return [(h, self._result(h)) for h in ready]
            if interrupts.requested() and not self._cancelled:
                self._cancelled = True
                for h in handles:
                    self.ray.cancel(h)

    def _result(self, ref):
        spec = self._specs.pop(ref)
        try:
            return self.ray.get(ref)
        except Exception:  # a cancelled task raises here
            if not interrupts.requested():
                raise
            return blocked_record(self.opts.out_root, spec, interrupts.describe(interrupts.received()),
                                  status="interrupted")

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
