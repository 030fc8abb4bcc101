"""Listing and validating suites, and the CLI's own import, load neither torch nor Lightning.

Each case runs in a fresh interpreter: the test process itself has torch loaded (conftest), so
``sys.modules`` here says nothing about what an import pulls in.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "pybullet")

PROBE = """
import json, sys
{statements}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _heavy_after(*statements: str) -> list[str]:
    code = PROBE.format(statements="\n".join(statements), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("statements", [
    ("import benchmarks.cli",),
    ("from benchmarks.suite import load_suite", "load_suite('pybullet_ftl')"),
    ("from benchmarks.suite import load_suite, suite_names",
     "from benchmarks.graph import expand",
     "[expand(s, p) for s in map(load_suite, suite_names()) for p in s.profiles]"),
    ("import lightning_wm.pipeline.config", "import lightning_wm.callbacks",
     "import lightning_wm.agents, lightning_wm.agents.configs",
     "from lightning_wm.agents import check_agent_config",
     "check_agent_config('dreamer_v2', {'size': 'tiny'})"),
], ids=["cli", "load_suite", "list", "library_tables"])
def test_validation_imports_no_torch_nor_lightning(statements):
    assert _heavy_after(*statements) == []


def test_the_lazy_exports_still_resolve():
    """The packages made lazy still hand out their names (and load what they need for it)."""
    loaded = _heavy_after("from lightning_wm.pipeline import TrainingConfig, Driver",
                          "from lightning_wm.callbacks import CALLBACK_REGISTRY",
                          "assert 'fractional' in CALLBACK_REGISTRY")
    assert {"torch", "lightning"} <= set(loaded)
