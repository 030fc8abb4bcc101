"""Ray launcher: each run a Ray task with its CPU/GPU request, records in the same layout.

Connects to an existing cluster (``address="auto"`` or a ``ray://`` address) or starts a local
one. Ray is an optional extra (``pip install -e ".[ray]"``). Workers write to the shared output
directory, so on a multi-node cluster it must be on a shared filesystem.
"""
from __future__ import annotations

from benchmarks.graph import RunSpec
from benchmarks.runner import ExecOptions


def _execute(spec: dict, opts: ExecOptions):
    import torch
    from benchmarks.runner import execute
    torch.set_num_threads(1)
    return execute(RunSpec.from_dict(spec), opts)


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

    def start(self, spec: RunSpec):
        return self.remote.remote(spec.to_dict(), self.opts)

    def wait(self, handles):
        ready, _ = self.ray.wait(handles, num_returns=1)
        return [(h, self.ray.get(h)) for h in ready]

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
