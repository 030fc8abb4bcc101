"""Run one spec in its own process: ``python -m benchmarks.worker SPEC.json OUT``.

Multi-device strategies (DDP) re-launch the running script once per rank; giving each such run
its own entry point means every rank executes exactly this one run, and only rank 0 writes
records. Exit status: 0 completed, 1 failed, 130 / 143 interrupted by SIGINT / SIGTERM (the
parent, which holds the run's lock, forwards its signals here and waits).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks import interrupts
from benchmarks.graph import RunSpec
from benchmarks.runner import ExecOptions, execute


def main(argv: list[str]) -> int:
    interrupts.install()  # a worker: the parent owns the second-signal escalation
    spec_path, out, devices, strategy, accelerator, logger = argv
    spec = RunSpec.from_dict(json.loads(Path(spec_path).read_text()))
    devices = int(devices) if devices.isdigit() else devices
    opts = ExecOptions(Path(out), devices, strategy, accelerator or None,
                       report=lambda line: print(line, file=sys.stderr, flush=True),
                       logger=logger, in_worker=True)
    record = execute(spec, opts)
    if record.status == "interrupted":
        return interrupts.exit_code(interrupts.signal_in(record.error))
    return 0 if record.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
