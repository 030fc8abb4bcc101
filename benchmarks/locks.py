"""One writer per run: a lock file in each run folder, held while the run executes.

Protocol: the process that launches a run (the CLI process, also for pool and per-run worker
launchers, whose children it waits on) takes ``<run_dir>/.lock`` with ``flock(LOCK_EX |
LOCK_NB)`` before starting it and releases it when the run's record is back. The file holds
``pid host`` of the holder, for the message a second ``run`` on the same output prints when it
finds the lock taken; that second ``run`` skips the run and its dependents.

A lock left by a process that died (SIGKILL, power loss) is no obstacle: the kernel drops a
``flock`` with the last descriptor of its holder, so the next process simply takes it and
overwrites the stale ``pid host``. On release the file is removed, so finished results carry
no lock files; :func:`acquire` re-checks after locking that the file it locked is still the one
at the path, since a holder may remove it between our ``open`` and our ``flock``.
flock is per host on some network filesystems: two hosts sharing an output folder over NFS
should not run the same suite at once.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

LOCK = ".lock"


class Held(Exception):
    """Another live process holds the run's lock; the message says which."""


class RunLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            # remove while still holding it: a waiter that opened this file re-checks and retries
            self.path.unlink(missing_ok=True)
        except OSError:  # an unwritable folder: the lock still goes with the descriptor
            pass
        os.close(self._fd)
        self._fd = -1


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        text = []
    if len(text) >= 2 and text[0].isdigit():
        return f"held by pid {text[0]} on {text[1]}"
    return "held by another process"


def acquire(run_dir: Path) -> RunLock:
    """Lock ``run_dir`` for this process or raise :class:`Held` naming the holder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            who = _holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise Held(who) from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder removed the file as we locked it: lock the current one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return RunLock(path, fd)
