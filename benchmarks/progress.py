"""What ``run`` shows while it works: a suite line and per-run lines, on stderr.

Units: a budget counts agent *decisions* (calls to ``env.step``; an env with action repeat k
simulates k steps per decision), and so does every number here.

* The suite line: runs done of the total, time elapsed, and an ETA from the rate of the runs
  finished in this invocation (decisions per wall second, summed over them) times the decisions
  still budgeted. Before any run finishes the ETA is unknown and the profile's
  ``estimated_minutes`` is shown instead, where it has one.
* A run line (built by :class:`lightning_wm.training.Progress`): decisions of the budget, rate
  and ETA of that run.

On a terminal both share one line rewritten in place (``\\r``); piped, each is a line of its own,
the suite line once per finished run. A run's ``report`` callable is a module-level function here
so that it pickles by name into worker processes; :func:`report` has a ``live`` attribute that
``Progress`` uses for its ticks, :func:`report_lines` (for several workers sharing one terminal)
has none.
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import Callable, TextIO

CLEAR_LINE = "\x1b[K"  # erase to the end of the line: a shorter update leaves no tail behind


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: short and sortable by eye."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Display:
    """One process's stderr: permanent lines, and on a terminal one status line kept last."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.suite_line: Callable[[], str] | None = None
        self.run_text = ""
        self._shown = False

    def line(self, text: str) -> None:
        """A line that stays (a finished run, a resume notice)."""
        self.clear()
        print(text, file=self.stream, flush=True)
        self._redraw()

    def run(self, text: str) -> None:
        """The current run's progress: replaces the last one on a terminal, a line otherwise."""
        if not self.live:
            print(text, file=self.stream, flush=True)
            return
        self.run_text = text
        self._redraw()

    def suite(self, line: Callable[[], str]) -> None:
        """The suite's line: on a terminal kept and asked again at every redraw (its elapsed
        time moves), piped printed once now."""
        if self.live:
            self.suite_line, self.run_text = line, ""  # a new suite line: the last run ended
            self._redraw()
        else:
            print(line(), file=self.stream, flush=True)

    def clear(self) -> None:
        """Erase the status line, so the next write (to stdout as well) starts a clean line."""
        if self._shown:
            self.stream.write("\r" + CLEAR_LINE)
            self.stream.flush()
            self._shown = False

    def _redraw(self) -> None:
        if not self.live:
            return
        # the run first: it moves every second, and a narrow terminal cuts the end off
        suite = self.suite_line() if self.suite_line else ""
        text = " | ".join(t for t in (self.run_text, suite) if t)
        if not text:
            return
        # a line longer than the terminal wraps, and \r then rewrites only its last row
        width = shutil.get_terminal_size((120, 24)).columns - 1
        if len(text) > width:
            text = text[: max(0, width - 1)] + "…"
        self.stream.write("\r" + text + CLEAR_LINE)
        self.stream.flush()
        self._shown = True


_DISPLAY: Display | None = None


def display() -> Display:
    """This process's display, made on first use (a spawned worker makes its own)."""
    global _DISPLAY
    if _DISPLAY is None:
        _DISPLAY = Display()
    return _DISPLAY


def use_display(d: Display | None) -> None:
    """Install ``d`` as this process's display (``None``: make a fresh one on next use)."""
    global _DISPLAY
    _DISPLAY = d


def report(text: str) -> None:
    """A run's lasting message; its ticks go through ``report.live``."""
    display().line(text)


def _report_tick(text: str) -> None:
    display().run(text)


report.live = _report_tick  # type: ignore[attr-defined]


def report_lines(text: str) -> None:
    """Plain lines only: what several processes writing to one terminal can share."""
    print(text, file=sys.stderr, flush=True)


class SuiteClock:
    """Runs done, elapsed time and ETA for one ``run`` invocation.

    ``budgets`` maps every selected run id to its budget (decisions); ``finished`` are the ids
    already completed before this invocation (counted done, not timed). ``parallel`` is how many
    runs are in flight at once, which divides the remaining time.
    """

    def __init__(self, budgets: dict[str, int], finished: set[str] = frozenset(),
                 estimated_minutes: float | None = None, parallel: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budgets, self.parallel, self.clock = dict(budgets), max(1, parallel), clock
        self.estimated_minutes = estimated_minutes
        self.done: set[str] = set(finished)
        self.steps = 0      # decisions of runs finished here, over
        self.seconds = 0.0  # their wall time
        self.t0 = clock()

    def finished(self, run_id: str, decisions: int = 0, wall_s: float = 0.0) -> None:
        """A run ended (completed, failed or blocked): its decisions and wall time feed the rate
        (a blocked run has neither)."""
        self.done.add(run_id)
        if decisions > 0 and wall_s > 0:
            self.steps += decisions
            self.seconds += wall_s

    def skipped(self, run_id: str) -> None:
        """Another process holds this run: it is not this invocation's work."""
        self.budgets.pop(run_id, None)

    def rate(self) -> float | None:
        """Decisions per wall second over the runs finished here; None before the first."""
        return self.steps / self.seconds if self.seconds > 0 else None

    def eta(self) -> float | None:
        rate = self.rate()
        if rate is None:
            return None
        left = [b for run, b in self.budgets.items() if run not in self.done]
        if not left:
            return 0.0
        return sum(left) / (rate * min(self.parallel, len(left)))

    def line(self) -> str:
        """The suite line as a log reads it: every number named."""
        head = f"suite: {self._done()}/{len(self.budgets)} runs done, " \
               f"{duration(self.clock() - self.t0)} elapsed"
        eta = self.eta()
        if eta is not None:
            return f"{head}, ETA {duration(eta)} (at {self.rate():,.1f} decisions/s)"
        if self.estimated_minutes:
            return f"{head}, ETA unknown until a run finishes (profile estimate " \
                   f"~{duration(self.estimated_minutes * 60)} in all)"
        return f"{head}, ETA unknown until a run finishes"

    def short(self) -> str:
        """The suite line for a terminal's status line, which it shares with a run's."""
        eta = self.eta()
        if eta is not None:
            when = f"ETA {duration(eta)}"
        elif self.estimated_minutes:
            when = f"ETA ? (est. {duration(self.estimated_minutes * 60)})"
        else:
            when = "ETA ?"
        return f"suite {self._done()}/{len(self.budgets)} runs, " \
               f"{duration(self.clock() - self.t0)}, {when}"

    def _done(self) -> int:
        return len(self.done & set(self.budgets))
