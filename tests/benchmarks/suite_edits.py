"""Edits of a parsed suite for the schema tests: each returns a mutation ``data -> None`` that
changes one field, addressed by a dotted path (list indices as ints: ``targets.0.task``)."""
from __future__ import annotations


def _parent(data, keys: str):
    *parents, last = [int(k) if k.isdigit() else k for k in keys.split(".")]
    node = data
    for k in parents:
        node = node[k]
    return node, last


def set_key(keys: str, value):
    """Mutation setting ``keys`` to ``value``."""
    def mutate(data):
        node, last = _parent(data, keys)
        node[last] = value
    return mutate


def delete_key(keys: str):
    """Mutation removing ``keys``."""
    def mutate(data):
        node, last = _parent(data, keys)
        del node[last]
    return mutate
