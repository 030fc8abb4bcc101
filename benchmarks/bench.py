"""``python -m benchmarks bench``: the speed benchmarks of ``tests/perf`` with timings on.

The benchmarks are pytest-benchmark tests marked ``bench``, which the ordinary test run deselects
(``tests/conftest.py``) so that CI stays short. This runs them in a child pytest with ``--bench
--benchmark-enable``, single-threaded (``OMP_NUM_THREADS=1`` unless set) like the numbers in
``results/bench/*.md``, and prints one markdown table of the medians and the rates each
benchmark records; ``--out DIR`` keeps pytest-benchmark's JSON and the table there.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERF = ROOT / "tests" / "perf"
#: group name -> benchmark file under tests/perf (and the results/bench page it feeds)
GROUPS = {
    "env": "test_env_speed.py",               # results/bench/env_speed.md
    "collector": "test_collection_speed.py",  # results/bench/env_speed.md
    "dreamer": "test_dreamer_speed.py",       # results/bench/dreamer_update.md
    "mario": "test_mario_speed.py",           # results/bench/mario_env.md
    "efficientzero": "test_efficientzero_speed.py",  # results/bench/efficientzero.md
}
RATE = re.compile(r"_per_(cpu_)?s$")  # extra_info keys that are rates: env_steps_per_s, ...


def _group(text: str) -> str:
    if text not in GROUPS:
        raise argparse.ArgumentTypeError(f"unknown group '{text}' (expected one of {list(GROUPS)})")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("groups", nargs="*", type=_group, metavar="GROUP",
                   help=f"benchmark groups: {', '.join(GROUPS)} (default: all)")
    p.add_argument("-k", dest="select",
                   help="pytest -k expression, e.g. 'not paper and not compile'")
    p.add_argument("--min-rounds", type=int, help="at least this many timed rounds per case")
    p.add_argument("--out", type=Path, help="write bench.json (pytest-benchmark) and bench.md here")


def pytest_command(groups: list[str], json_path: Path, select: str | None = None,
                   min_rounds: int | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--bench",
           "--benchmark-enable", "--benchmark-columns=median,min,rounds",
           f"--benchmark-json={json_path}", *(str(PERF / GROUPS[g]) for g in groups)]
    if select:
        cmd += ["-k", select]
    if min_rounds:
        cmd.append(f"--benchmark-min-rounds={min_rounds}")
    return cmd


def _rates(extra: dict) -> str:
    return "; ".join(f"{k} {v:,.0f}" for k, v in sorted(extra.items())
                     if RATE.search(k) and isinstance(v, (int, float)))


def render(data: dict, command: str) -> str:
    """The markdown page for a pytest-benchmark JSON ``data``: where it ran, then one row per
    case (times in ms)."""
    cpu = data.get("machine_info", {}).get("cpu", {})
    commit = data.get("commit_info", {})
    lines = ["# Speed benchmarks", "", f"- command: `{command}`",
             f"- machine: {cpu.get('brand_raw', 'unknown CPU')}, {cpu.get('count', '?')} cores; "
             f"python {data.get('machine_info', {}).get('python_version', '?')}",
             f"- date: {data.get('datetime', '?')}; commit: {str(commit.get('id', '?'))[:12]}"
             + (" (uncommitted changes)" if commit.get("dirty") else ""), "",
             "| group | case | median (ms) | min (ms) | rounds | rates (per second) |",
             "|---|---|---|---|---|---|"]
    for b in sorted(data.get("benchmarks", []), key=lambda b: (b["group"] or "", b["name"])):
        s = b["stats"]
        lines.append(f"| {b['group'] or ''} | {b['name']} | {1e3 * s['median']:.1f} | "
                     f"{1e3 * s['min']:.1f} | {s['rounds']} | {_rates(b.get('extra_info', {}))} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks, print the table; pytest's exit code (0: every case passed)."""
    if not PERF.is_dir():
        print(f"error: {PERF}: no benchmarks here (bench runs from a source checkout)",
              file=sys.stderr)
        return 2
    groups = args.groups or list(GROUPS)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-"))
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    json_path.unlink(missing_ok=True)  # a stale file would pass for this run's numbers
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # pytest's own report goes to stderr: stdout stays the table
    code = subprocess.run(pytest_command(groups, json_path, args.select, args.min_rounds),
                          cwd=ROOT, env=env, stdout=sys.stderr).returncode
    if not json_path.exists():
        print(f"error: pytest wrote no benchmark data (exit code {code})", file=sys.stderr)
        return code or 1
    words = ["python -m benchmarks bench", *args.groups,
             *(["-k", repr(args.select)] if args.select else []),
             *([f"--min-rounds {args.min_rounds}"] if args.min_rounds else [])]
    page = render(json.loads(json_path.read_text(encoding="utf-8")), " ".join(words))
    print(page, end="")
    if args.out:
        (out / "bench.md").write_text(page, encoding="utf-8")
    return code
