"""The light callback table equals the callback classes it describes, and checks as they do."""
from __future__ import annotations

import inspect

import pytest

from lightning_wm.callback_args import (CALLBACK_ARGS, CALLBACK_RECEIVERS, DIAGNOSTIC_ARGS,
                                        TRANSFER_ARGS)
from lightning_wm.callbacks import CALLBACK_REGISTRY
from lightning_wm.diagnostics import DIAGNOSTICS
from lightning_wm.options import UnknownOptionsError, bind_options
from lightning_wm.transfer import TRANSFER_CALLBACKS


def test_the_tables_name_the_registered_callbacks():
    assert set(TRANSFER_ARGS) == set(TRANSFER_CALLBACKS)
    assert set(DIAGNOSTIC_ARGS) == set(DIAGNOSTICS)
    assert set(CALLBACK_ARGS) == set(CALLBACK_REGISTRY) == set(CALLBACK_RECEIVERS)


@pytest.mark.parametrize("name", sorted(CALLBACK_ARGS))
def test_each_signature_is_its_constructors(name):
    # eval_str: the classes' modules postpone annotations; the table holds the types themselves
    actual = inspect.signature(CALLBACK_REGISTRY[name], eval_str=True).parameters
    assert list(CALLBACK_ARGS[name].parameters.values()) == list(actual.values())


@pytest.mark.parametrize("args", [
    {"source": "base", "components": ["q"]},
    {"source": "base"},                               # a required argument missing
    {"source": "base", "components": ["q"], "fraction": 0.5, "fractoin": 0.1},
])
@pytest.mark.parametrize("name", ["load_components", "fractional", "loss_schedule"])
def test_the_stand_in_binds_as_the_class(name, args):
    def outcome(receiver):
        try:
            bind_options(f"callback '{name}'", receiver, args)
        except (UnknownOptionsError, TypeError) as e:
            return type(e), str(e)
        return None

    assert outcome(CALLBACK_RECEIVERS[name]) == outcome(CALLBACK_REGISTRY[name])


def test_the_stand_in_builds_nothing():
    with pytest.raises(TypeError, match="make_callback"):
        CALLBACK_RECEIVERS["reset"](components=["q"])
