"""Durable-file helpers shared by everything that writes or checks files: checkpoints, the signing
key, records and reports. Standard library only, so the light paths (suite validation, reports)
can use them without importing torch."""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

_CHUNK = 1 << 20


def temp_path(path: Path | str) -> Path:
    """A name in ``path``'s folder that no other process (or call) uses."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def digest(path: Path | str, sync: bool = False) -> tuple[str, int]:
    """sha256 (hex) and size of the file at ``path``; with ``sync``, also fsync it, so the bytes
    just hashed are the bytes on disk before any rename points at them."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(f.fileno())
    return h.hexdigest(), size


def sha256_file(path: Path | str) -> str:
    return digest(path)[0]


def fsync_dir(folder: Path | str) -> None:
    """Make renames in ``folder`` durable; best effort, as some platforms and filesystems cannot
    open or sync a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
