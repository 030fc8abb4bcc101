"""What ``run`` shows while it works: the suite clock's ETA, the display on a terminal and in a
pipe, the per-run line's wording, and a CLI whose light commands do not load torch."""
from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from benchmarks import progress
from benchmarks.progress import Display, SuiteClock, duration

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_duration_reads_at_a_glance():
    assert [duration(s) for s in (0, 42, 185, 7620, -3)] == ["0s", "42s", "3m05s", "2h07m", "0s"]


def test_suite_eta_is_unknown_until_a_run_finishes_then_comes_from_finished_runs():
    t = Clock()
    clock = SuiteClock({"a": 1000, "b": 2000, "c": 3000}, estimated_minutes=30, clock=t)
    assert clock.eta() is None
    assert "ETA unknown until a run finishes (profile estimate ~30m00s in all)" in clock.line()
    t.now = 100.0
    clock.finished("a", decisions=1000, wall_s=100.0)  # 10 decisions/s
    assert clock.eta() == 500.0                       # 5000 decisions left
    assert clock.line() == "suite: 1/3 runs done, 1m40s elapsed, ETA 8m20s (at 10.0 decisions/s)"
    clock.finished("b", decisions=2000, wall_s=100.0)  # 3000 decisions in 200 s: 15/s
    assert clock.eta() == 200.0
    assert clock.short() == "suite 2/3 runs, 1m40s, ETA 3m20s"


def test_parallel_runs_share_the_remaining_time_and_blocked_or_skipped_runs_cost_nothing():
    clock = SuiteClock({"a": 100, "b": 100, "c": 100, "d": 100}, {"a"}, parallel=2)
    clock.finished("b", decisions=100, wall_s=10.0)
    assert clock.eta() == 200 / (10 * 2)
    clock.finished("c")  # blocked: no decisions, no time, not part of the rate
    assert clock.rate() == 10.0 and clock.eta() == 100 / 10  # one run left: no parallelism
    clock.skipped("d")  # another process holds it
    assert clock.eta() == 0.0 and clock.line().startswith("suite: 3/3 runs done")


def test_piped_display_prints_plain_lines():
    out = io.StringIO()
    shown = Display(out, live=False)
    shown.suite(lambda: "suite: 0/2 runs done")
    shown.run("run-a: 10/100 decisions")
    shown.line("run-a: resumed")
    shown.clear()
    assert out.getvalue() == "suite: 0/2 runs done\nrun-a: 10/100 decisions\nrun-a: resumed\n"


def test_live_display_rewrites_one_line_and_keeps_lasting_lines_above_it():
    out = io.StringIO()
    shown = Display(out, live=True)
    shown.suite(lambda: "suite 0/2")
    shown.run("run-a 10/100")
    shown.run("run-a 20/100")
    shown.line("run-a: resumed")
    shown.clear()
    text = out.getvalue()
    assert "\n" not in text.replace("run-a: resumed\n", "")  # only the lasting line ends a line
    assert text.endswith("\r" + progress.CLEAR_LINE)
    frames = [f.removesuffix(progress.CLEAR_LINE) for f in text.split("\r") if f]
    assert "run-a 20/100 | suite 0/2" in frames
    assert frames[-2] == "run-a 20/100 | suite 0/2"  # redrawn under the lasting line


def test_report_callables_pickle_by_name_for_worker_processes():
    for fn in (progress.report, progress.report_lines):
        assert pickle.loads(pickle.dumps(fn)) is fn
    assert callable(progress.report.live) and not hasattr(progress.report_lines, "live")


def _started_progress(budget: int, interval: float):
    """A run's Progress callback, started on a stand-in trainer; its lines collect in a list."""
    from lightning_wm.training import Progress
    lines: list[str] = []
    driver = SimpleNamespace(env_steps=0, phase_listeners=[])
    trainer = SimpleNamespace(is_global_zero=True, datamodule=SimpleNamespace(driver=driver))
    p = Progress("run-a", lines.append, budget=budget, interval=interval)
    p.setup(trainer, None, "fit")
    p.on_train_start(trainer, None)
    return p, lines, driver, trainer


def test_run_line_counts_decisions_with_a_smooth_eta():
    p, lines, driver, trainer = _started_progress(budget=1000, interval=0.0)
    assert lines == ["run-a: 0/1,000 decisions (0%), 0s elapsed, ETA ?"]
    # on a made-up clock: the attempt started at t=0, the last phase ended at t=100 with 250
    p._t0, p._s0, p._seen, p._t_seen = 0.0, 0, 250, 100.0
    lines += [f"run-a: {p.line(250, now)}" for now in (100.0, 150.0)]
    # 250 decisions in 100 s: 750 more take 300 s; 50 s later the ETA counts down, not up
    assert lines[1] == "run-a: 250/1,000 decisions (25%), 2.5/s, 1m40s elapsed, ETA 5m00s"
    assert lines[2] == "run-a: 250/1,000 decisions (25%), 2.5/s, 2m30s elapsed, ETA 4m10s"
    assert p.line(1000, 400.0).endswith("done")


def test_the_final_line_comes_once_though_updates_follow_the_last_phase():
    p, lines, driver, trainer = _started_progress(budget=100, interval=3600.0)
    driver.env_steps = 100
    for listener in driver.phase_listeners:
        listener(100)
    for i in range(5):
        p.on_train_batch_end(trainer, None, None, None, i)
    assert len(lines) == 2 and lines[-1].endswith("done")


def test_list_wording_counts_decisions():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "list"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert " decisions, " in out.stdout and "env steps" not in out.stdout


def test_the_cli_module_and_help_load_no_torch():
    """``--help`` (and whatever imports the CLI) answers without torch or Lightning; they
    load where training starts."""
    code = ("import sys, contextlib, io\n"
            "import benchmarks.cli as cli\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    cli.main(['--help'])\n"
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
