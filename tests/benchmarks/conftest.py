"""What the suite tests share: the check that a run reproduces the committed results."""
from __future__ import annotations

from pathlib import Path

import pytest

from lightning_wm.artifacts import CURVE, TASK_CURVES

RESULTS = Path(__file__).resolve().parents[2] / "results"


def _reproduces(root: Path) -> None:
    """Every run under ``root`` (``<out>/<suite>/<profile>``) has the curves committed under
    ``results/<suite>/<profile>`` for the same run id, byte for byte: the code still produces
    the committed numbers. A run id the commit lacks fails too (ids are content hashes)."""
    committed = RESULTS / root.parent.name / root.name / "runs"
    runs = sorted(p for p in (root / "runs").iterdir() if p.is_dir())
    assert runs, f"no runs under {root}"
    for run in runs:
        mine = committed / run.name
        assert mine.is_dir(), f"{run.name} is not among the committed runs in {committed}"
        for name in (CURVE, TASK_CURVES):
            if (run / name).exists() or (mine / name).exists():
                assert (run / name).read_bytes() == (mine / name).read_bytes(), \
                    f"{run.name}/{name} differs from the committed one"


@pytest.fixture
def reproduces():
    return _reproduces
