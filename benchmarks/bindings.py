"""Bind a suite's free-form mappings to what receives them, when the suite is loaded.

Agent configs, env options and callback arguments are plain dicts in the schema: only their
receivers (the agent, env and callback registries) know the keys. Each is checked here as a run
gets it, its layers merged the way :mod:`benchmarks.graph` merges them (``_Builder._common``,
``_Builder.target``): a suite entry's own dict, a target's overrides, then the profile's. A bad
key is reported at the layer that brought it, so a misspelt key fails at ``validate`` (and before
``run`` writes anything) rather than when its run starts, after sources spent their budget.

The receivers' checks are passed in (:func:`benchmarks.checks.cross_check` supplies the library's)
so this module imports nothing heavy and a caller can pass a wider callback registry.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from functools import cache
from typing import Any, Callable, Iterable, Mapping

from lightning_wm.options import (UnknownOptionsError, bind_options, check_option_types,
                                  check_options, declared_types)
from lightning_wm.pipeline.config import TrainingConfig

#: a dict as the suite writes it: its field path and its keys
Layer = tuple[str, Mapping[str, Any]]
AgentCheck = Callable[[str, Mapping[str, Any]], None]   # (agent name, config)
EnvCheck = Callable[[str, Mapping[str, Any]], None]     # (env id, options)

#: callback -> (argument naming an env id, argument holding that env's options): a diagnostic
#: that plays an env of its own gets options as a task does, and they are bound the same way
ENV_OPTION_ARGS: dict[str, tuple[str, str]] = {"reconstruction": ("env", "options")}


def check_bindings(suite, check_agent: AgentCheck, check_env: EnvCheck,
                   callbacks: Mapping[str, Callable[..., Any]]) -> None:
    """Raise ``ValueError('<field path>: <problem>')`` for the first dict of ``suite`` (a
    :class:`benchmarks.suite.Suite` whose names are already checked) its receiver rejects."""
    agents = {m.agent for m in suite.methods.values()} | {s.agent for s in suite.sources.values()}
    for pname, prof in suite.profiles.items():
        for agent in prof.agent_configs:
            if agent not in agents:
                raise ValueError(f"profiles.{pname}.agent_configs.{agent}: no method or source "
                                 f"of the suite uses agent {agent!r} (expected one of "
                                 f"{sorted(agents)})")
        _bind_envs(suite, pname, prof, check_env)

        def profile_agent(agent: str) -> list[Layer]:
            return [(f"profiles.{pname}.agent_config", prof.agent_config),
                    (f"profiles.{pname}.agent_configs.{agent}", prof.agent_configs.get(agent, {}))]

        for sname, src in suite.sources.items():
            _bind([(f"sources.{sname}.config", src.config), *profile_agent(src.agent)],
                  lambda config, agent=src.agent: check_agent(agent, config))
            _bind_callbacks(f"sources.{sname}", src.callbacks, pname, prof, callbacks, check_env)
        for i, tgt in enumerate(suite.targets):
            for mname in tgt.methods:
                method = suite.methods[mname]
                _bind([(f"methods.{mname}.config", method.config),
                       (f"targets.{i}.agent_config", tgt.agent_config),
                       *profile_agent(method.agent)],
                      lambda config, agent=method.agent: check_agent(agent, config))
        for mname, method in suite.methods.items():
            _bind_callbacks(f"methods.{mname}", method.callbacks, pname, prof, callbacks,
                            check_env)


def _bind_envs(suite, pname: str, prof, check_env: EnvCheck) -> None:
    """Every task's options under profile ``pname``; with its evaluation options; with the task
    options of every method run on it."""
    for tname, task in suite.tasks.items():
        layers = [(f"tasks.{tname}.options", task.options),
                  (f"profiles.{pname}.task_options", prof.task_options)]
        check = (lambda options, env=task.env: check_env(env, options))
        _bind(layers, check)
        if task.eval_options:
            _bind([*layers, (f"tasks.{tname}.eval_options", task.eval_options)], check)
    for tgt in suite.targets:
        task = suite.tasks[tgt.task]
        for mname in tgt.methods:
            method = suite.methods[mname]
            if method.task_options:
                _bind([(f"tasks.{tgt.task}.options", task.options),
                       (f"profiles.{pname}.task_options", prof.task_options),
                       (f"methods.{mname}.task_options", method.task_options)],
                      lambda options, env=task.env: check_env(env, options))


def _bind_callbacks(where: str, specs, pname: str, prof, registry: Mapping[str, Callable],
                    check_env: EnvCheck) -> None:
    for j, cb in enumerate(specs):
        overrides = prof.callback_args.get(cb.name, {})
        layers = [(f"{where}.callbacks.{j}.args", cb.args),
                  (f"profiles.{pname}.callback_args.{cb.name}", overrides)]
        if cb.source is not None:  # the runner passes the slot as the ``source`` argument
            layers.append((f"{where}.callbacks.{j}.source", {"source": cb.source}))
        _bind(layers, lambda kwargs, name=cb.name: bind_options(f"callback '{name}'",
                                                                 registry[name], kwargs))
        if cb.name in ENV_OPTION_ARGS:
            _bind_env_args(f"{where}.callbacks.{j}.args", cb.name, {**cb.args, **overrides},
                           check_env)


def _bind_env_args(where: str, name: str, args: Mapping[str, Any], check_env: EnvCheck) -> None:
    """The options of an env a callback plays itself (:data:`ENV_OPTION_ARGS`), bound to it."""
    env_arg, options_arg = ENV_OPTION_ARGS[name]
    env, options = args.get(env_arg), args.get(options_arg) or {}
    if env is None:  # the callback plays the run's own env, built from the task's options
        return
    if not isinstance(options, Mapping):
        raise ValueError(f"{where}.{options_arg}: expected a mapping of env options")
    _bind([(f"{where}.{options_arg}", options)], lambda opts: check_env(env, opts))


def _bind(layers: list[Layer], check: Callable[[dict[str, Any]], None]) -> None:
    """Run ``check`` on the merged ``layers`` (later ones override earlier ones, as in a run)."""
    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged.update(layer)
    try:
        check(merged)
    except UnknownOptionsError as e:
        path, keys = _origin(layers, e.unknown)
        raise ValueError(f"{path}: {UnknownOptionsError(e.owner, keys, e.accepted)}") from None
    except (KeyError, TypeError, ValueError) as e:
        # a value (or a missing argument) may come from any layer: name them all
        used = [path for path, layer in layers[1:] if layer]
        merged_in = f" ({', '.join(used)} merged in)" if used else ""
        problem = e.args[0] if isinstance(e, KeyError) else e  # str(KeyError) adds quotes
        raise ValueError(f"{layers[0][0]}: {problem}{merged_in}") from None


def _origin(layers: list[Layer], unknown: Iterable[str]) -> tuple[str, list[str]]:
    """The layer that brought the first unknown key (the last that sets it: its value is the one
    a run would get), and the unknown keys it holds."""
    for path, layer in reversed(layers):
        keys = sorted(k for k in unknown if k in layer)
        if keys:
            return path, keys
    raise AssertionError(f"unknown keys {sorted(unknown)} are in no layer")  # merged from layers


def bind_training(block: Mapping[str, Any]) -> dict[str, Any]:
    """A profile's ``training`` block bound to the library's own
    :class:`~lightning_wm.pipeline.config.TrainingConfig` (its fields, types, defaults and range
    checks): every field, as a plain dict, coerced as pydantic coerces (``0`` -> ``0.0`` for a
    float field), so the run hashes built from it do not change."""
    owner = TrainingConfig.__name__
    try:
        check_options(owner, block, [f.name for f in fields(TrainingConfig)])
        # strictly typed first: pydantic's coercion would take ``true`` or ``"64"`` for an int
        check_option_types(owner, declared_types(TrainingConfig), block)
    except TypeError as e:
        raise ValueError(str(e)) from None  # pydantic reports a ValueError at the block's path
    # a field's bad type or range (``__post_init__``) surfaces as pydantic errors at its path
    return asdict(_training_adapter().validate_python(dict(block)))


@cache
def _training_adapter():
    from pydantic import TypeAdapter
    return TypeAdapter(TrainingConfig)
