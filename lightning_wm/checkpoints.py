"""Checkpoint files on disk: written so that a crash never leaves a wrong file in use, and read
only after their digest checks out.

A checkpoints folder (see :mod:`lightning_wm.artifacts`)::

    last.ckpt                    resume state (newest)
    last.ckpt.sha256.json        its sidecar: {"file", "sha256", "bytes"}
    last.prev.ckpt (+ sidecar)   the resume state before it, the fallback
    model.ckpt (+ sidecar)       final weights
    <name>.bad                   a file that failed its check, moved aside for inspection

Writing (:func:`publish`): the new file and its sidecar are written under unique temporary names
(pid + random token, so two processes never share one) and fsynced; a sidecar for the current
file under its fallback name goes into place first, then the current file is renamed to the
fallback name, then the new file and its sidecar are renamed into place and the folder is
fsynced. At every instant at least one (file, sidecar) pair that agree is on disk, and a pair
that disagrees is never used, so a crash loses at most the newest checkpoint.

Reading (:func:`resume_point`): a file is used only when its size and sha256 match its sidecar and
a weights-only load reads it; one that fails is named, moved aside and never read again, and the
fallback (or a fresh start) takes its place.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lightning_wm.fileio import digest as file_digest
from lightning_wm.fileio import fsync_dir, temp_path

SIDECAR = ".sha256.json"
BAD = ".bad"


class CheckpointError(RuntimeError):
    """A checkpoint that must not be used; the message names the file and why."""

    def __init__(self, path: Path | str, why: str) -> None:
        super().__init__(f"checkpoint {path}: {why}")
        self.path, self.why = Path(path), why


# -- names ---------------------------------------------------------------------------------------
def sidecar_path(path: Path | str) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR)


def previous_path(path: Path | str) -> Path:
    """The fallback kept beside ``path``: ``last.ckpt`` -> ``last.prev.ckpt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _write_sidecar_tmp(path: Path, digest: str, size: int) -> Path:
    """The sidecar of ``path``, written and fsynced under a temporary name."""
    tmp = temp_path(sidecar_path(path))
    record = {"file": path.name, "sha256": digest, "bytes": size}
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def read_sidecar(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    side = sidecar_path(path)
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(path, f"no sidecar {side.name}, so it cannot be verified") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(path, f"sidecar {side.name} is unreadable ({e})") from None
    ok = (isinstance(record, dict) and isinstance(record.get("sha256"), str)
          and isinstance(record.get("bytes"), int))
    if not ok:
        raise CheckpointError(path, f"sidecar {side.name} lacks 'sha256' and 'bytes'")
    return record


# -- writing -------------------------------------------------------------------------------------
def publish(tmp: Path | str, path: Path | str, keep_previous: bool = False) -> str:
    """Move the finished file ``tmp`` to ``path`` with its sidecar (module docstring); with
    ``keep_previous`` the file it replaces stays as :func:`previous_path`. Returns its sha256."""
    tmp, path = Path(tmp), Path(path)
    digest, size = file_digest(tmp, sync=True)
    side_tmp = _write_sidecar_tmp(path, digest, size)
    try:
        if keep_previous:
            _demote(path)
        os.replace(tmp, path)
        os.replace(side_tmp, sidecar_path(path))
    finally:
        side_tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return digest


def _demote(path: Path) -> None:
    """Make ``path`` the fallback. Its sidecar's claim goes in under the fallback's name first
    (the old fallback is then unusable, ``path`` still is), then ``path`` is renamed (the new
    fallback is usable): there is no moment without a usable pair."""
    if not path.exists():
        return  # e.g. moved aside as bad: the fallback there is stays
    try:
        record = read_sidecar(path)
    except CheckpointError:
        return  # an unverifiable file is no fallback: keep the one there is
    prev = previous_path(path)
    side_tmp = _write_sidecar_tmp(prev, record["sha256"], record["bytes"])
    try:
        os.replace(side_tmp, sidecar_path(prev))
    finally:
        side_tmp.unlink(missing_ok=True)
    os.replace(path, prev)


def seal(path: Path | str) -> str:
    """Write the sidecar of an existing file (e.g. a checkpoint made elsewhere, once trusted)."""
    path = Path(path)
    digest, size = file_digest(path, sync=True)
    side_tmp = _write_sidecar_tmp(path, digest, size)
    os.replace(side_tmp, sidecar_path(path))
    fsync_dir(path.parent)
    return digest


def save(path: Path | str, write: Callable[[Path], None], keep_previous: bool = False) -> str:
    """``write(tmp)`` a checkpoint to a unique temporary name, then :func:`publish` it."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        return publish(tmp, path, keep_previous)
    finally:
        tmp.unlink(missing_ok=True)


def discard(path: Path | str) -> None:
    """Remove ``path``, its fallback and their sidecars (a finished run's resume state)."""
    for p in (path, previous_path(path)):
        Path(p).unlink(missing_ok=True)
        sidecar_path(p).unlink(missing_ok=True)
    fsync_dir(Path(path).parent)


# -- reading -------------------------------------------------------------------------------------
def verify(path: Path | str) -> str:
    """``path``'s sha256 when it matches its sidecar; raises :class:`CheckpointError` naming the
    file and why otherwise (missing sidecar, size or digest mismatch, unreadable)."""
    path = Path(path)
    record = read_sidecar(path)
    try:
        digest, size = file_digest(path)
    except FileNotFoundError:
        raise CheckpointError(path, "the file is missing") from None
    except OSError as e:
        raise CheckpointError(path, f"unreadable ({e})") from None
    if size != record["bytes"]:
        raise CheckpointError(path, f"{size} bytes where its sidecar says {record['bytes']} "
                                    "(truncated or altered)")
    if digest != record["sha256"]:
        raise CheckpointError(path, "sha256 differs from its sidecar (corrupt or altered)")
    return digest


def load(path: Path | str, mmap: bool = False) -> dict[str, Any]:
    """A weights-only ``torch.load`` of a verified file; any failure is a
    :class:`CheckpointError` naming it (a file that needs arbitrary globals is refused)."""
    verify(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as e:  # noqa: BLE001 - whatever the cause, the file is unusable
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise CheckpointError(path, f"not a weights-only checkpoint ({first})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(path, f"holds a {type(checkpoint).__name__}, not a dict")
    return checkpoint


def move_aside(path: Path | str) -> Path:
    """Rename ``path`` (and its sidecar) to ``<name>.bad``, so it is never read again but can be
    inspected."""
    path = Path(path)
    bad = path.with_name(path.name + BAD)
    for p in (path, sidecar_path(path)):
        with contextlib.suppress(FileNotFoundError):
            os.replace(p, p.with_name(p.name + BAD))
    fsync_dir(path.parent)
    return bad


def sweep_temps(path: Path | str) -> None:
    """Remove temporary files of ``path`` (and its sidecar) left by processes that died."""
    path = Path(path)
    names = (path.name, previous_path(path).name)
    for tmp in (t for name in names for t in path.parent.glob(f".{name}*.tmp")):
        try:
            pid = int(tmp.name.split(".")[-3])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, IndexError, OSError):
            continue  # not one of ours, or a process we may not signal: leave it


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resume_point(path: Path | str, say: Callable[[str], None] | None = None,
                 move_bad: bool = True) -> Path | None:
    """The checkpoint to resume from: ``path`` or else its fallback, whichever passes
    :func:`load`'s checks first; ``None`` to start afresh. Every file that fails is named
    through ``say`` (stderr by default) and, with ``move_bad``, moved aside; the last line says
    what happens instead."""
    say = say or _stderr
    path = Path(path)
    if move_bad:
        sweep_temps(path)
    failed = False
    for candidate in (path, previous_path(path)):
        if not candidate.exists():
            continue
        try:
            load(candidate, mmap=True)  # mmap: parse the structure, not every tensor
        except CheckpointError as e:
            failed = True
            where = f"; moved aside to {move_aside(candidate).name}" if move_bad else ""
            say(f"{e}{where}")
            continue
        if candidate != path:
            say(f"{path} is {'bad' if failed else 'missing'}: resuming from {candidate}")
        return candidate
    if failed:
        say(f"no good checkpoint left beside {path}: restarting from scratch")
    return None


# -- Lightning's callback states -----------------------------------------------------------------
_ARRAY_TAG = "__lightning_wm_ndarray__"


def tag_arrays(value: Any) -> Any:
    """Numpy arrays (and scalars) inside ``value`` as tagged tensors, so state of callbacks this
    library does not own still loads weights-only; :func:`untag_arrays` reverses it."""
    if isinstance(value, dict):
        return {k: tag_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(tag_arrays(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return {_ARRAY_TAG: torch.from_numpy(np.array(value, copy=True))}
    return value


def untag_arrays(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY_TAG} and isinstance(value[_ARRAY_TAG], torch.Tensor):
            return value[_ARRAY_TAG].numpy()
        return {k: untag_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(untag_arrays(v) for v in value)
    return value
