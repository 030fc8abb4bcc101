"""Option names a receiver accepts, and the error for keys it does not.

Run configs hand free-form mappings (agent configs, env options, callback arguments) to
constructors; checking their keys against the receiver's declared names lets a misspelt key fail
when a config is validated, not when a run starts. Kept free of heavy imports: the suite schema
uses it before anything trains.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Mapping


class UnknownOptionsError(TypeError):
    """Keys ``unknown`` are not options of ``owner``, which accepts ``accepted``.

    A ``TypeError``, as a constructor's own unexpected keyword argument is."""

    def __init__(self, owner: str, unknown: Iterable[str], accepted: Iterable[str]) -> None:
        self.owner, self.unknown, self.accepted = owner, sorted(unknown), sorted(accepted)
        super().__init__(f"unknown key(s) {self.unknown} for {owner} "
                         f"(accepted keys: {self.accepted})")


def check_options(owner: str, given: Mapping[str, Any], accepted: Iterable[str]) -> None:
    """Raise :class:`UnknownOptionsError` naming the keys of ``given`` not in ``accepted``."""
    accepted = set(accepted)
    unknown = set(given) - accepted
    if unknown:
        raise UnknownOptionsError(owner, unknown, accepted)


def keyword_options(receiver: Callable[..., Any], supplied: Iterable[str] = ()) -> frozenset[str]:
    """Names ``receiver`` (a function or class) takes by keyword, less those its caller
    ``supplied`` itself (an env's shapes, say). A receiver with ``**kwargs`` has no such list:
    its options must be declared beside it, so this raises rather than accept any key."""
    params = inspect.signature(receiver).parameters
    kinds = {p.kind for p in params.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        raise TypeError(f"{receiver!r} takes **kwargs: declare its option names explicitly")
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(n for n, p in params.items() if p.kind in by_keyword) - set(supplied)


def bind_options(owner: str, receiver: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Raise as ``receiver(**kwargs)`` would for its arguments (unknown keys as
    :class:`UnknownOptionsError`, missing required ones as ``TypeError``), without calling it."""
    signature = inspect.signature(receiver)
    if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        check_options(owner, kwargs, keyword_options(receiver))
    try:
        signature.bind(**kwargs)
    except TypeError as e:
        raise TypeError(f"{owner}: {e}") from None
