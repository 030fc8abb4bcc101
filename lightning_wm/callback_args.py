"""The arguments of every callback a run config can name, readable without Lightning.

Suite validation binds each callback's ``args`` to its constructor (names, required ones,
keyword-only ones) before anything trains. The callback classes subclass ``L.Callback``, and
importing Lightning costs seconds; so their constructor signatures are written out here, as
:class:`inspect.Signature` objects with the classes' own names, kinds, defaults and annotations.
A test holds each one equal to its class's signature, and the names equal to the registries of
:mod:`lightning_wm.transfer` and :mod:`lightning_wm.diagnostics`.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, NoReturn, Sequence

_P = inspect.Parameter
_REQUIRED = _P.empty


def _arg(name: str, annotation: Any, default: Any = _REQUIRED,
         kind: Any = _P.POSITIONAL_OR_KEYWORD) -> inspect.Parameter:
    return _P(name, kind, default=default, annotation=annotation)


def _signature(*params: inspect.Parameter) -> inspect.Signature:
    return inspect.Signature(list(params))


_COMPONENTS = str | Sequence[str]

#: transfer callbacks (:data:`lightning_wm.transfer.TRANSFER_CALLBACKS`) -> constructor signature
TRANSFER_ARGS: dict[str, inspect.Signature] = {
    "load_components": _signature(_arg("source", str), _arg("components", _COMPONENTS)),
    "fractional": _signature(_arg("source", str), _arg("components", _COMPONENTS),
                             _arg("fraction", float, 0.2)),
    "modular": _signature(_arg("source", str), _arg("spec", Mapping[str, str] | str, "default"),
                          _arg("fraction", float, 0.2)),
    "freeze": _signature(_arg("components", _COMPONENTS), _arg("until_step", int | None, None)),
    "reset": _signature(_arg("components", _COMPONENTS)),
    "loss_schedule": _signature(_arg("terms", _COMPONENTS), _arg("weight", float, 0.0),
                                _arg("until_step", int, kind=_P.KEYWORD_ONLY)),
    "meta_model": _signature(_arg("sources", Sequence[str])),
    "kickstart": _signature(_arg("source", str), _arg("beta", float, 1.0), _arg("steps", int, 50),
                            _arg("kind", str, "linear"), _arg("rate", float, 1.0),
                            _arg("end", float, 0.0)),
    "instance_transfer": _signature(_arg("source", str), _arg("zeta", float, 0.0),
                                    _arg("steps", int, 512), _arg("weight", float, 1.0),
                                    _arg("clip", float, 0.2), _arg("stream", str, "teacher")),
}

#: diagnostics (:data:`lightning_wm.diagnostics.DIAGNOSTICS`) -> constructor signature
DIAGNOSTIC_ARGS: dict[str, inspect.Signature] = {
    "embedding_agreement": _signature(_arg("source", str), _arg("env", str | None, None),
                                      _arg("states", int, 256), _arg("seed", int, 0)),
    "reconstruction": _signature(_arg("env", str | None, None),
                                 _arg("options", dict[str, Any] | None, None),
                                 _arg("frames", int, 5), _arg("stride", int, 8),
                                 _arg("seed", int, 0)),
}

#: every callback name a run config may use -> its constructor signature
CALLBACK_ARGS: dict[str, inspect.Signature] = {**TRANSFER_ARGS, **DIAGNOSTIC_ARGS}


class CallbackArgs:
    """Stands in for callback ``name``'s class where only its arguments matter:
    ``inspect.signature`` of it is the class's, so :func:`lightning_wm.options.bind_options`
    checks arguments against it exactly as against the class."""

    def __init__(self, name: str, signature: inspect.Signature) -> None:
        self.name = name
        self.__signature__ = signature

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        # a stand-in that built nothing silently would hide a wiring mistake
        raise TypeError(f"callback '{self.name}' is only described here; build it with "
                        "lightning_wm.callbacks.make_callback")

    def __repr__(self) -> str:
        return f"CallbackArgs({self.name!r}{self.__signature__})"


#: callback name -> its stand-in, the receivers suite validation binds arguments to
CALLBACK_RECEIVERS: dict[str, CallbackArgs] = {
    name: CallbackArgs(name, signature) for name, signature in CALLBACK_ARGS.items()
}
