"""Signed pickles: the one kind of pickle a checkpoint may carry.

Envs in flight (PyBullet, NES, mazes) can only be saved as pickles, and unpickling runs whatever
the pickle says. A results folder moves between machines, so a pickle read from one is trusted
only when it carries an HMAC-SHA256 made with this user's secret key, a key that lives outside
every results folder (``~/.config/lightning-wm/secret``, or the file ``LIGHTNING_WM_SECRET_FILE``
names). A blob that fails the check is never unpickled: :func:`open_signed` says so by name and
the caller carries on without it.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

from lightning_wm.fileio import fsync_dir, temp_path

ENV_VAR = "LIGHTNING_WM_SECRET_FILE"
KEY_BYTES = 32
# binds a tag to its use, so a tag made for something else never vouches for env state
_DOMAIN = b"lightning-wm signed pickle v1\0"

log = logging.getLogger(__name__)

#: the file a checkpoint is being read from, for messages about what it holds
_ORIGIN: ContextVar[str] = ContextVar("lightning_wm_origin", default="checkpoint")


def secret_path() -> Path:
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".config" / "lightning-wm" / "secret"


def _create_key(path: Path) -> None:
    """Write a fresh key to a private temp file, then hard-link it into place: a link never
    replaces an existing file, so of racing processes exactly one key wins and nobody reads a
    half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_bytes(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process was first: its key is the key
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def secret_key() -> bytes:
    """This user's key, created on first use (32 random bytes, mode 0600)."""
    path = secret_path()
    if not path.exists():
        _create_key(path)
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise RuntimeError(f"secret key file {path} holds {len(key)} bytes, expected "
                           f"{KEY_BYTES}: remove it to have a new one made")
    return key


def _tag(blob: bytes, key: bytes) -> str:
    return hmac.new(key, _DOMAIN + blob, hashlib.sha256).hexdigest()


def sign(blob: bytes) -> dict[str, Any]:
    """``{"pickle": blob, "hmac": hex}``: plain bytes and a string, so a weights-only load
    reads it back."""
    return {"pickle": bytes(blob), "hmac": _tag(blob, secret_key())}


def open_signed(signed: Any, what: str = "env state") -> bytes | None:
    """The blob of ``signed`` when its HMAC is this machine's, else ``None`` (after one warning
    naming the file being read)."""
    ok = (isinstance(signed, dict) and isinstance(signed.get("pickle"), bytes)
          and isinstance(signed.get("hmac"), str))
    if ok:
        expected = _tag(signed["pickle"], secret_key())
        ok = hmac.compare_digest(expected, signed["hmac"])
    if not ok:
        log.warning("%s: %s is not signed with this machine's key; episodes in flight restart",
                    _ORIGIN.get(), what)
        return None
    return signed["pickle"]


@contextlib.contextmanager
def reading(origin: str) -> Iterator[None]:
    """Name ``origin`` in the messages of :func:`open_signed` calls made inside."""
    token = _ORIGIN.set(str(origin))
    try:
        yield
    finally:
        _ORIGIN.reset(token)
