"""Option names (and value types) a receiver accepts, and the errors for those it does not.

Run configs hand free-form mappings (agent configs, env options, callback arguments) to
constructors; checking their keys against the receiver's declared names, and their values against
its annotations, lets a misspelt key or a mistyped value fail when a config is validated, not
when a run starts. Kept free of heavy imports: the suite schema
uses it before anything trains.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
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


class OptionTypeError(TypeError):
    """Option ``key`` of ``owner`` holds a value of another type than the receiver declares."""

    def __init__(self, owner: str, key: str, value: Any, expected: Any) -> None:
        self.owner, self.key, self.value = owner, key, value
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"{owner}: option '{key}' expects {type_name(expected)}, got {shown}")


def declared_types(receiver: Callable[..., Any]) -> dict[str, Any]:
    """Parameter name -> declared type of ``receiver`` (a class or function): its resolved
    annotation, else the type of a simple default. Names with neither are left out."""
    target = receiver.__init__ if inspect.isclass(receiver) else receiver
    try:
        hints = typing.get_type_hints(receiver if dataclasses.is_dataclass(receiver) else target)
    except (NameError, TypeError, AttributeError):  # an annotation that cannot be resolved
        hints = {}
    found: dict[str, Any] = {}
    for name, param in inspect.signature(receiver).parameters.items():
        if name in hints:
            found[name] = hints[name]
        elif type(param.default) in (bool, int, float, str):
            found[name] = type(param.default)
    return found


def check_option_types(owner: str, declared: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """Raise :class:`OptionTypeError` for the first value of ``given`` that does not match its
    type in ``declared`` (from :func:`declared_types`). Only simple types are checked (bool, int,
    float, str, None, Literal, and lists or tuples of those): YAML can only write those, and a
    constructor given the wrong one fails, or worse, computes with it, deep inside a run."""
    for key, value in given.items():
        if key in declared and not matches(value, declared[key]):
            raise OptionTypeError(owner, key, value, declared[key])


def matches(value: Any, expected: Any) -> bool:
    """Whether ``value`` is of the simple type ``expected``; True for types not checked."""
    if expected is Any or expected is inspect.Parameter.empty:
        return True
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if expected is type(None):
        return value is None
    if expected in _SCALARS:
        return _SCALARS[expected](value)
    if origin in _SEQUENCES or expected in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(map(matches, value, args))
        return not args or all(matches(item, args[0]) for item in value)
    return True


def type_name(expected: Any) -> str:
    if isinstance(expected, type) and not typing.get_args(expected):
        return expected.__name__
    return str(expected).replace("typing.", "").replace("collections.abc.", "")


# a bool is an int to Python, never to a config: ``true`` is not a count of 1
_SCALARS: dict[Any, Callable[[Any], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}
_SEQUENCES = (list, tuple, collections.abc.Sequence)
