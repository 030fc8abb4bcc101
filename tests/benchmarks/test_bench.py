"""The speed benchmarks: out of the README's test command, run by ``python -m benchmarks bench``."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench
from benchmarks.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _case(group: str, name: str, median: float, extra: dict) -> dict:
    return {"group": group, "name": name, "extra_info": extra,
            "stats": {"median": median, "min": median / 2, "rounds": 7}}


def test_readme_test_command_selects_no_benchmark():
    # the README's `-m "not gpu"` must not bring the bench-marked tests back
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "--continue-on-collection-errors", "-m", "not gpu", "tests/perf"],
        cwd=ROOT, capture_output=True, text=True).stdout
    selected = [line for line in out.splitlines()
                if line.startswith("tests/perf/") and "::" in line]
    assert not selected
    assert int(re.search(r"(\d+) deselected", out).group(1)) > 0


def test_every_benchmark_file_belongs_to_a_group():
    files = {p.name for p in (ROOT / "tests" / "perf").glob("test_*.py")}
    assert files == set(bench.GROUPS.values())


def test_pytest_command_enables_timings_for_the_chosen_groups(tmp_path):
    cmd = bench.pytest_command(["mario", "env"], tmp_path / "b.json", "not paper", 10)
    assert {"--bench", "--benchmark-enable", f"--benchmark-json={tmp_path / 'b.json'}",
            "--benchmark-min-rounds=10"} <= set(cmd)
    assert cmd[cmd.index("-k") + 1] == "not paper"
    files = [Path(c).name for c in cmd if c.endswith(".py")]
    assert files == ["test_mario_speed.py", "test_env_speed.py"]


def test_cli_parses_groups_and_rejects_unknown_ones(capsys):
    args = build_parser().parse_args(["bench", "dreamer", "-k", "smoke", "--min-rounds", "3"])
    assert (args.groups, args.select, args.min_rounds, args.out) == (["dreamer"], "smoke", 3, None)
    assert build_parser().parse_args(["bench"]).groups == []
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["bench", "gpu"])
    assert exit_.value.code == 2
    assert "unknown group 'gpu'" in capsys.readouterr().err


def test_render_gives_one_row_per_case_in_ms_with_its_rates():
    machine = {"python_version": "3.11.7", "cpu": {"brand_raw": "AMD EPYC", "count": 2}}
    data = {"machine_info": machine,
            "commit_info": {"id": "0123456789abcdef", "dirty": True}, "datetime": "2026-01-01",
            "benchmarks": [
                _case("single env", "test_single[hopper]", 0.025,
                      {"env_steps_per_s": 4000.4, "decisions_per_call": 50}),
                _case("mario", "test_mario", 1.5,
                      {"decisions_per_s": 66.6, "decisions_per_cpu_s": 90.2, "torch": "2.13"})]}
    page = bench.render(data, "python -m benchmarks bench")
    rows = [line for line in page.splitlines() if line.startswith("| ") and "ms" not in line]
    assert rows == [
        "| mario | test_mario | 1500.0 | 750.0 | 7 | decisions_per_cpu_s 90; decisions_per_s 67 |",
        "| single env | test_single[hopper] | 25.0 | 12.5 | 7 | env_steps_per_s 4,000 |"]
    assert "AMD EPYC, 2 cores" in page and "0123456789ab (uncommitted changes)" in page
