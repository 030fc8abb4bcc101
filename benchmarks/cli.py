"""``python -m benchmarks``: list, run, report, regress, validate, publish, bench.

Exit codes: 0 success; 1 a run failed or a regression was found; 2 bad input (suite, result file
or arguments), with a message naming the file and field.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from benchmarks import bench
from benchmarks.names import NAME_FORM, is_name
from benchmarks.results import ResultError
from benchmarks.suite import SEED_LIMIT, SuiteError

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def _seeds(text: str) -> list[int]:
    seeds = _ints(text)
    bad = [s for s in seeds if not 0 <= s < SEED_LIMIT]
    if bad:
        raise argparse.ArgumentTypeError(f"expected seeds in [0, 2**32), got {bad[0]}")
    return seeds


def _names(text: str) -> list[str]:
    names = [x for x in text.split(",") if x]
    for name in names:
        _name(name)
    return names


def _name(text: str) -> str:
    # names become folders and run ids: refuse here what the suite schema refuses in YAML
    if not is_name(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a valid name (expected {NAME_FORM})")
    return text


#: local runs are processes on this machine, devices are per run: beyond these it is a typo
MAX_WORKERS, MAX_DEVICES = 256, 1024
#: Lightning accelerators this project runs on; tpu, ipu and hpu need backends (torch_xla, ...)
#: it neither depends on nor tests
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
#: the strategies :func:`lightning_wm.training.ddp_strategy` knows (it adds
#: find_unused_parameters where a frozen component needs it); fsdp and deepspeed shard
#: parameters, which the transfer callbacks' whole-component copies do not handle
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {value}")
        return value
    return parse


def _devices(text: str) -> int | str:
    return "auto" if text == "auto" else _int_in(1, MAX_DEVICES)(text)


def _float_from(low: float, inclusive: bool):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (value == low and not inclusive):
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text!r}")
        return value
    return parse


def _out_dir(text: str) -> Path:
    """A directory to write under: an existing directory, or a path whose nearest existing
    ancestor is a directory this process may create entries in. Checked before anything trains,
    so a bad ``--out`` does not surface as a crash after the first run finished."""
    path = Path(text).absolute()
    try:
        ancestor = next(p for p in (path, *path.parents) if p.exists())
    except ValueError:  # a NUL byte in the path
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable path") from None
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: {ancestor} exists and is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text!r}: {ancestor} is not writable")
    return Path(text)


def _add_run_parser(sub) -> None:
    r = sub.add_parser("run", help="run a suite (sources, targets, paired baselines)",
                       description="Run a suite: train sources, then targets and their paired "
                                   "scratch baselines; skip finished runs, resume interrupted ones.")
    r.add_argument("suite", help="suite name (suites/NAME.yaml) or a path to a suite YAML")
    r.add_argument("--profile", type=_name,
                   help="budget profile (default: the suite's default_profile)")
    r.add_argument("--tasks", type=_names, help="comma-separated target tasks")
    r.add_argument("--methods", type=_names, help="comma-separated methods")
    r.add_argument("--seeds", type=_seeds, help="comma-separated seeds, each in [0, 2**32)")
    r.add_argument("--out", type=_out_dir, default="runs", help="output root (default: runs/)")
    r.add_argument("--launcher", choices=("local", "ray"), default="local")
    r.add_argument("--workers", type=_int_in(1, MAX_WORKERS), default=None,
                   help=f"local: parallel runs (processes, 1 to {MAX_WORKERS}; default: the "
                        "free CPU cores for a CPU profile, 1 on an accelerator)")
    r.add_argument("--ray-address", help="ray: cluster address (default: start a local Ray)")
    r.add_argument("--gpus-per-run", type=_float_from(0.0, inclusive=True), default=0.0,
                   help="ray: GPUs requested per run")
    r.add_argument("--accelerator", choices=ACCELERATORS,
                   help="override the profile's accelerator")
    r.add_argument("--devices", type=_devices, default="1",
                   help=f"devices per run (Lightning): 1 to {MAX_DEVICES}, or auto")
    r.add_argument("--strategy", choices=STRATEGIES, default="auto", help="Lightning strategy")
    r.add_argument("--logger", choices=("csv", "tensorboard"), default="csv",
                   help="Lightning logger per run (tensorboard needs the [tensorboard] extra)")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")


def _add_publish_parser(sub) -> None:
    pub = sub.add_parser("publish", help="static HTML leaderboard site from results dirs",
                         description="Build a static site (HTML + CSS, no scripts) over every "
                                     "suite/profile in RESULTS_DIR(s): verdicts, tables with CIs, "
                                     "rliable figures, provenance, score files. Records that fail "
                                     "validation are listed as rejected, never included.")
    pub.add_argument("dirs", nargs="+", type=Path, metavar="RESULTS_DIR",
                     help="results directories; several merge into one site")
    pub.add_argument("--site", type=_out_dir, default=Path("site"),
                     help="output folder, replaced atomically (default: site/)")
    pub.add_argument("--reps", type=_int_in(100, 100_000), default=2000,
                     help="bootstrap draws per interval (default 2000)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="Transfer-learning benchmarks for world-model RL agents.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="suites, tasks, methods, profiles and rough cost",
                   description="List suites with their tasks, methods, profiles and rough cost.")
    _add_run_parser(sub)
    rep = sub.add_parser("report", help="leaderboard (markdown + JSON) and plots from a results dir",
                         description="Write leaderboard.md, leaderboard.json and learning-curve PNGs.")
    rep.add_argument("dir", type=Path)
    rep.add_argument("--out", type=_out_dir, help="where to write (default: DIR)")
    g = sub.add_parser("regress", help="nightly verdict: current runs against a baseline set",
                       description="Exit 1 when a learning or speed regression is found, else 0.")
    g.add_argument("--baseline", type=Path,
                   help="committed results to compare with; without it only the learning gate runs "
                        "(scratch, and from-scratch sources of a task with learn_within, must "
                        "reach the task's threshold in most seeds)")
    g.add_argument("--current", type=Path, required=True)
    g.add_argument("--speed-factor", type=_float_from(1.0, inclusive=True), default=1.5,
                   help="throughput drop counted as a regression (default 1.5x; at least 1)")
    v = sub.add_parser("validate", help="check a suite YAML, a result file or a results dir",
                       description="Validate a suite YAML, a record.json, a curve.csv or a directory of results.")
    v.add_argument("path")
    _add_publish_parser(sub)
    bench.add_arguments(sub.add_parser(
        "bench", help="speed benchmarks (tests/perf) with timings, as a markdown table",
        description="Run the speed benchmarks that the test run leaves out (pytest marker "
                    "'bench') with timings on; print a markdown table of the numbers."))
    return p


def cmd_list(args) -> int:
    from benchmarks.graph import expand
    from benchmarks.suite import load_suite, suite_names
    for name in suite_names():
        suite = load_suite(name)
        print(f"{suite.name}: {suite.description}")
        print(f"  tasks:   {', '.join(suite.tasks)}")
        print(f"  methods: {', '.join(suite.methods)}  (baseline: {suite.baseline})")
        for pname, prof in suite.profiles.items():
            runs = expand(suite, pname)
            # budgets count agent decisions (env.step calls), not simulator steps
            steps = sum(r.budget for r in runs)
            cost = f", ~{prof.estimated_minutes:g} min" if prof.estimated_minutes else ""
            mark = " (default)" if pname == suite.default_profile else ""
            print(f"  profile {pname}{mark}: {len(runs)} runs, {steps:,} decisions, "
                  f"{prof.accelerator}{cost}. {prof.description}")
    return EXIT_OK


def cmd_run(args) -> int:
    from benchmarks import interrupts, locks
    from benchmarks.graph import expand
    from benchmarks.launchers import run_graph
    from benchmarks.runner import ExecOptions, blocked_record, existing, run_dir
    from benchmarks.suite import load_suite

    suite = load_suite(args.suite)
    specs = expand(suite, args.profile, args.tasks, args.methods, args.seeds)
    if not specs:
        raise SuiteError(f"{args.suite}: the selection (--tasks/--methods/--seeds) matches no run")
    # a corrupt record stops the run here, before anything is written
    finished = {s.run_id: r for s in specs if (r := existing(args.out, s)) and r.status == "completed"}
    devices = int(args.devices) if str(args.devices).isdigit() else args.devices
    if args.workers is None:
        args.workers = _default_workers(args, suite.profiles[specs[0].profile].accelerator,
                                        devices, len(specs) - len(finished))
    report, shown, clock = _progress(args, suite, specs, finished)
    opts = ExecOptions(args.out, devices, args.strategy, args.accelerator, report, args.logger)
    launcher = _launcher(args, opts)
    clock.parallel = max(1, launcher.slots)  # runs in flight at once share the remaining time
    profile = specs[0].profile
    print(f"{suite.name}/{profile}: {len(specs)} runs ({len(finished)} already completed, skipped)"
          f" -> {args.out}", flush=True)
    suite_line = clock.short if shown.live else clock.line
    shown.suite(suite_line)
    t0 = time.monotonic()
    skipped = []

    def on_done(spec, record, n, total):
        clock.finished(spec.run_id, record.env_steps, record.wall_time_s)
        extra = f" ({record.error.splitlines()[0]})" if record.error else ""
        shown.clear()  # the summary goes to stdout: not into the middle of the status line
        print(f"[{n}/{total}] {record.status:9s} {spec.run_id}  {record.env_steps:,} decisions "
              f"{record.wall_time_s:.1f}s{extra}", flush=True)
        shown.suite(suite_line)

    def on_skip(spec, why):  # another `run` on this output holds it: no record is written
        clock.skipped(spec.run_id)
        skipped.append(spec.run_id)
        shown.clear()
        print(f"[skipped]  {spec.run_id}: {why}", flush=True)

    interrupts.running()  # from here a signal stops the runs at a safe point
    try:
        records = run_graph(specs, launcher, lambda s, why: blocked_record(args.out, s, why),
                            on_done, finished, claim=lambda s: locks.acquire(run_dir(args.out, s)),
                            on_skip=on_skip)
    finally:  # an error or interrupt message must start on a line of its own
        shown.clear()
    return _finish_run(args, suite, profile, records, skipped, time.monotonic() - t0)


def _finish_run(args, suite, profile: str, records, skipped: list, seconds: float) -> int:
    """The summary line and, unless another process still holds runs of this profile (it writes
    the report when they are done) or ``--no-report``, the profile's report; the exit code."""
    bad = [r for r in records if r.status != "completed"]
    held = f", {len(skipped)} skipped (held by another process)" if skipped else ""
    print(f"done in {seconds:.0f}s: {len(records) - len(bad)} completed, "
          f"{len(bad)} failed or blocked{held}")
    if skipped:
        print("report not written: another process is still running part of this profile")
    elif not args.no_report:
        from benchmarks.report import registered_suite, write_report
        # a suite run from a YAML path is not in the registry: hand the report this one
        lookup = lambda name: suite if name == suite.name else registered_suite(name)  # noqa: E731
        for path in write_report(args.out / suite.name / profile, suite_lookup=lookup):
            print(f"wrote {path}")
    return EXIT_FAIL if bad else EXIT_OK


def _default_workers(args, profile_accelerator: str | None, devices, pending: int) -> int:
    """Parallel runs when ``--workers`` is not given: one per free core on a CPU (each run
    uses one thread, so results do not depend on it), one run at a time on an accelerator or
    with several devices per run."""
    from benchmarks.launchers.local import free_cores
    accelerator = args.accelerator or profile_accelerator or "cpu"
    if args.launcher != "local" or accelerator != "cpu" or devices not in (1, "1", None):
        return 1
    return max(1, min(free_cores(), pending))


def _progress(args, suite, specs, finished):
    """Where run lines go, the display they share and the suite's clock. One run at a time in
    this process may rewrite a terminal line in place; several processes writing to one
    terminal would overwrite each other's, so they (and a pipe) get plain lines."""
    from benchmarks import progress
    live = args.launcher == "local" and args.workers == 1 and sys.stderr.isatty()
    shown = progress.Display(live=live)
    progress.use_display(shown)
    prof = suite.profiles[specs[0].profile]
    clock = progress.SuiteClock({s.run_id: s.budget for s in specs}, set(finished),
                                prof.estimated_minutes)
    # piped, run lines come every few seconds as lines of their own; live, every second in place
    return (progress.report if live else progress.report_lines), shown, clock


def _launcher(args, opts):
    if args.launcher == "ray":
        from benchmarks.launchers.ray import RayLauncher
        return RayLauncher(opts, args.ray_address, num_gpus=args.gpus_per_run)
    from benchmarks.launchers.local import LocalLauncher
    return LocalLauncher(opts, args.workers)


def cmd_report(args) -> int:
    from benchmarks.report import write_report
    for path in write_report(args.dir, args.out):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_regress(args) -> int:
    from benchmarks.regress import main_regress
    return main_regress(args.baseline, args.current, args.speed_factor, sys.stdout)


def cmd_validate(args) -> int:
    from benchmarks import results
    from benchmarks.suite import load_suite
    from benchmarks.validate import validate_results
    path = Path(args.path)
    if path.suffix in (".yaml", ".yml"):
        suite = load_suite(path)
        print(f"{path}: valid suite '{suite.name}' ({len(suite.targets)} targets, "
              f"{len(suite.profiles)} profiles)")
    elif path.is_dir():
        problems = validate_results(path)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return EXIT_INPUT
        print(f"{path}: {len(results.run_dirs(path))} runs, all valid")
    elif path.name in ("scores.json", "scores.csv"):  # benchmarks.scores' file names
        from benchmarks.scores import read_scores, read_scores_csv
        if path.suffix == ".json":
            print(f"{path}: valid scores file ({len(read_scores(path).runs)} runs)")
        else:
            print(f"{path}: valid scores table ({read_scores_csv(path)} rows)")
    elif path.suffix == ".csv":
        results.read_curve(path)
        print(f"{path}: valid curve")
    else:
        results.read_record(path)
        print(f"{path}: valid record")
    return EXIT_OK


def cmd_publish(args) -> int:
    from benchmarks.publish.site import publish
    collected = publish(args.dirs, args.site, reps=args.reps)
    runs = sum(len(v) for v in collected.groups.values())
    print(f"wrote {args.site}/index.html: {len(collected.groups)} suite/profile pages, {runs} runs, "
          f"{len(collected.rejected)} files rejected")
    for r in collected.rejected:
        print(f"rejected {r.origin}/{r.path}: {r.reason}", file=sys.stderr)
    return EXIT_OK


def cmd_bench(args) -> int:
    return EXIT_OK if bench.run(args) == 0 else EXIT_FAIL


COMMANDS = {"list": cmd_list, "run": cmd_run, "report": cmd_report, "regress": cmd_regress,
            "validate": cmd_validate, "publish": cmd_publish, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    """Exit codes as in the module docstring, and 130 / 143 when SIGINT / SIGTERM stopped it."""
    import shlex
    from benchmarks import interrupts
    argv = sys.argv[1:] if argv is None else list(argv)
    again = "python -m benchmarks " + shlex.join(argv)
    interrupts.install(main=True, resume=again)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (SuiteError, ResultError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as e:  # an output folder that cannot be written, found only when writing
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except interrupts.Interrupted as e:  # completed runs keep their records; no report
        print(f"{e}: runs completed so far are kept; resume with: {again}", file=sys.stderr,
              flush=True)
        return interrupts.exit_code(e.signum)
    finally:
        interrupts.uninstall()
