"""Small synthetic results directories for the scores, rliable-figure and site tests.

Curves are straight lines over ``STEPS``, so every metric has a value worked out by hand:
scratch returns ``steps / 1000 + 0.1 * seed`` (AUC = 0.5 + 0.1 * seed), a transfer method the same
plus ``lift``; each transfer run is paired with the scratch run of its seed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.report import SuiteFacts
from benchmarks.results import Provenance, RunRecord, write_curve, write_record

STEPS = np.arange(0, 1001, 100)
SHA = "ab" * 32
#: slippery normalised with random 0 and reference 1: normalised scores equal the raw ones
FACTS = SuiteFacts(baseline="scratch", thresholds={"slippery": 0.8},
                   random_scores={"slippery": 0.0}, reference_scores={"slippery": 1.0})


def save_run(root: Path, run_id: str, returns=None, **kw) -> Path:
    base = dict(run_id=run_id, suite="fake_transfer", profile="smoke", kind="target",
                task="slippery", tasks=["slippery"], method="scratch", seed=0,
                status="completed", budget=1000, env_steps=1000, wall_time_s=2.0,
                model_sha256=SHA,
                provenance=Provenance(config_hash=f"cfg-{run_id}", git_commit="c0ffee",
                                      packages={}, python="3.11", platform="x"))
    record = RunRecord(**{**base, **kw})
    run_dir = Path(root) / record.suite / record.profile / "runs" / run_id
    write_record(run_dir, record)
    if returns is not None:
        write_curve(run_dir, STEPS, returns)
    return run_dir


def make_results(root: Path, seeds=(0, 1, 2), profile="smoke", lift=0.2,
                 methods=("finetune",)) -> Path:
    """Scratch and ``methods`` on fake_transfer/slippery, one run per seed each."""
    for seed in seeds:
        sid = f"tgt-slippery-scratch-s{seed}-{profile}"
        save_run(root, sid, STEPS / 1000 + 0.1 * seed, seed=seed, is_baseline=True,
                 profile=profile)
        for m in methods:
            save_run(root, f"tgt-slippery-{m}-s{seed}-{profile}",
                     STEPS / 1000 + 0.1 * seed + lift, method=m, seed=seed,
                     baseline_run_id=sid, profile=profile)
    return Path(root)


def lookup(name: str) -> SuiteFacts:
    return FACTS
