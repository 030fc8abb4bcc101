"""What the suite tests share: the check that a run reproduces the committed results."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from benchmarks.provenance import cpu
from lightning_wm.artifacts import CURVE, TASK_CURVES

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _committed_cpu(run: Path) -> str | None:
    return json.loads((run / "record.json").read_text())["provenance"].get("cpu")


def _reproduces(root: Path) -> None:
    """Every run under ``root`` (``<out>/<suite>/<profile>``) is among the runs committed under
    ``results/<suite>/<profile>`` (ids are content hashes), with the same curves byte for byte
    where it ran on the processor / instruction set the committed run records: the code still
    produces the committed numbers. On another one float32 rounding differs in the last digits and
    chaotic simulators (HalfCheetah) grow that within a few hundred steps, so there the curves
    must only have the same evaluation steps; a warning says the numbers were not compared."""
    committed = RESULTS / root.parent.name / root.name / "runs"
    runs = sorted(p for p in (root / "runs").iterdir() if p.is_dir())
    assert runs, f"no runs under {root}"
    here, elsewhere = cpu(), []
    for run in runs:
        mine = committed / run.name
        assert mine.is_dir(), f"{run.name} is not among the committed runs in {committed}"
        exact = _committed_cpu(mine) == here
        if not exact:
            elsewhere.append(run.name)
        for name in (CURVE, TASK_CURVES):
            if not ((run / name).exists() or (mine / name).exists()):
                continue
            ours, theirs = (run / name).read_text(), (mine / name).read_text()
            if exact:
                assert ours == theirs, f"{run.name}/{name} differs from the committed one"
            else:
                steps = [[row.split(",")[0] for row in t.splitlines()] for t in (ours, theirs)]
                assert steps[0] == steps[1], f"{run.name}/{name}: other evaluation steps"
    if elsewhere:
        warnings.warn(f"{len(elsewhere)} run(s) of {root.parent.name}/{root.name} were committed "
                      f"from another processor than this one ({here}): their numbers were not "
                      "compared, only their run ids and evaluation steps")


@pytest.fixture
def reproduces():
    return _reproduces
