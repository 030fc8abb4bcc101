"""SIGINT and SIGTERM: stop at a safe point, record the run as ``interrupted``, exit 130 / 143.

The handler never stops a run where it happens to be: it sets a process-wide flag and forwards
the signal to the processes this one started (pool workers, the per-run worker). Training checks
the flag before each update (``runner``'s safe-point callback) and raises :class:`Interrupted`;
the runner records the run as ``interrupted``, the scheduling loop starts nothing more, and the
CLI prints one line saying how to resume. The resume checkpoint is the last phase-boundary
``last.ckpt``: no checkpoint is written on the way out, so a resumed run stays bit-exact.

Lightning installs its own SIGTERM handler inside ``fit`` and calls the one it replaced (ours)
after its own; its handler makes the loop raise ``SIGTERMException``, a ``SystemExit``. The flag
is how the runner tells that exit, and ours, from any other ``SystemExit``.

Roles:

* the CLI process (``main=True``): before the runs start nothing has been written, so the
  handler raises at once (no traceback, exit 130); a second signal kills the workers and exits
  at once, leaving in-flight runs ``running`` (a rerun resumes them too);
* a worker process (``main=False``): a repeated signal is ignored, since a terminal's SIGINT and
  the parent's forwarded copy both arrive; the parent decides when to give up waiting.

Kept free of heavy imports: pool workers import it first, to catch signals early.
"""
from __future__ import annotations

import os
import re
import signal
import threading
from typing import Callable, Iterable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A signal asked this process to stop. A ``BaseException``, so that the ``except Exception``
    which isolates a failing run (or one inside a library) does not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(describe(signum))
        self.signum = signum


_received = 0          # the first signal caught, 0 while none
_main = False
_raise_now = False     # the CLI process before its first run: nothing to save, stop where we are
_resume = ""           # the command line that resumes, for the second-signal message
_previous: dict[int, object] = {}
_children: dict[object, Callable[[], Iterable[int]]] = {}


def describe(signum: int) -> str:
    return f"interrupted by {signal.Signals(signum).name}"


def signal_in(text: str | None) -> int:
    """The signal a :func:`describe` text names (SIGINT when none is named)."""
    m = re.search(r"\bSIG(INT|TERM)\b", text or "")
    return int(signal.Signals[m.group(0)]) if m else int(signal.SIGINT)


def exit_code(signum: int) -> int:
    return 128 + int(signum)  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


def received() -> int:
    return _received


def requested() -> bool:
    return _received != 0


def note(signum: int) -> None:
    """Act as if ``signum`` had arrived here: a run elsewhere was stopped by it."""
    global _received
    if not _received:
        _received = int(signum)
        _forward(int(signum))


def reset() -> None:
    global _received
    _received = 0


def running() -> None:
    """The runs start: from now on a signal waits for a safe point."""
    global _raise_now
    _raise_now = False


def install(main: bool = False, resume: str = "") -> None:
    """Catch SIGINT and SIGTERM in this process (main thread only; elsewhere a no-op)."""
    global _main, _raise_now, _resume
    if threading.current_thread() is not threading.main_thread():
        return
    reset()
    _main, _raise_now, _resume = main, main, resume
    for s in SIGNALS:
        _previous.setdefault(s, signal.getsignal(s))
        signal.signal(s, _handle)


def uninstall() -> None:
    """Put back the handlers :func:`install` replaced (tests call the CLI many times)."""
    global _main, _raise_now
    if threading.current_thread() is not threading.main_thread():
        return
    for s, handler in _previous.items():
        signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    _previous.clear()
    _main = _raise_now = False
    reset()


def forward_to(key: object, pids: Callable[[], Iterable[int]] | None) -> None:
    """Forward signals to the processes ``pids()`` names (``None`` stops forwarding for ``key``):
    a scheduler's SIGTERM may reach only this process, not the workers it started."""
    if pids is None:
        _children.pop(key, None)
    else:
        _children[key] = pids
        if _received:  # the signal came before the worker existed
            _send(pids, _received)


def _send(pids: Callable[[], Iterable[int]], signum: int) -> None:
    try:
        targets = list(pids())
    except Exception:  # a pool shutting down: nothing left to tell
        return
    for pid in targets:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _forward(signum: int) -> None:
    for pids in list(_children.values()):
        _send(pids, signum)


def _handle(signum: int, frame) -> None:
    global _received
    if _received:
        if _main:  # a second Ctrl-C: the user will not wait for the safe point
            for pids in list(_children.values()):
                _send(pids, signal.SIGKILL)
            # os.write, not print: print is not reentrant and this may interrupt a print
            os.write(2, f"{describe(signum)} again: stopped at once; "
                        f"resume with: {_resume}\n".encode())
            os._exit(exit_code(signum))
        return
    _received = signum
    _forward(signum)
    if _raise_now:
        raise Interrupted(signum)
