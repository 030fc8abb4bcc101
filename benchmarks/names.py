"""Names that become path parts, and paths that must stay under an output root.

Suite, profile, task, method, source and slot names end up in folder names and run ids
(``<out>/<suite>/<profile>/runs/<run_id>``), and results directories travel between machines, so
every name is an identifier of one pattern and every path built from one is checked to stay
under its root: no name can write or read outside ``--out``.
"""
from __future__ import annotations

import re
from pathlib import Path

#: a letter or digit first, then letters, digits, ``_``, ``.`` or ``-``; at most 64 characters.
#: No ``/``, no ``..`` (a leading dot is refused and ``..`` inside is refused below), no NUL.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
NAME_FORM = ("1-64 characters: letters, digits, '_', '.', '-', starting with a letter or digit, "
             "no '..'")
#: run ids join several names (``tgt-<task>-<method>-s<seed>-<hash>``), so they may be longer
RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}"

_NAME = re.compile(NAME_PATTERN)
_RUN_ID = re.compile(RUN_ID_PATTERN)


def is_name(text: object) -> bool:
    return isinstance(text, str) and bool(_NAME.fullmatch(text)) and ".." not in text


def is_run_id(text: object) -> bool:
    return isinstance(text, str) and bool(_RUN_ID.fullmatch(text)) and ".." not in text


def check_name(text: object, what: str) -> str:
    """``text`` if it is a valid name, else ``ValueError`` saying what and the expected form."""
    if not is_name(text):
        raise ValueError(f"{what} {text!r} is not a valid name (expected {NAME_FORM})")
    return text


class PathEscape(ValueError):
    """A path built from names would leave its root."""


def under(root: Path, *parts: str) -> Path:
    """``root/parts...``, refusing any result that resolves outside ``root`` (``..``, absolute
    parts, symlinks pointing out)."""
    root = Path(root)
    path = root.joinpath(*parts)
    base = root.resolve()
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise PathEscape(f"{path}: a name would place this outside {root}")
    return path
