"""The one vocabulary of component names, and selection of components by name.

Every agent exposes its parts as ``agent.components`` (an ``nn.ModuleDict``) keyed by the names
below. Transfer code addresses parts only through :func:`select`, which accepts a component name
(``"reward"``), a dotted path into it (``"transition.action_input"``, ``"reward.out"``) or a glob
(``"*"``), and raises :class:`UnknownComponentError` when a pattern matches nothing: a silent
no-op transfer is the worst kind of bug in a transfer benchmark.
"""
from __future__ import annotations

import fnmatch
from typing import Iterable, Mapping

from torch import nn

#: name -> what it is. Agents may only use these names (checked at construction).
COMPONENTS: dict[str, str] = {
    "encoder": "observation -> embedding (CNN or MLP)",
    "representation": "posterior q(s_t | h_t, e_t) of a latent world model; in the MuZero "
                      "family, observation -> latent state s_0 = h(o_t)",
    "transition": "latent dynamics (GRU + prior for an RSSM, x' = x + p(x, a) for CRAR)",
    "decoder": "observation model p(o_t | h_t, s_t)",
    "reward": "reward model r(latent[, action])",
    "discount": "discount / continuation model",
    "value": "state-value critic",
    "actor": "policy head",
    "q": "action-value head",
    "dynamics": "MuZero-family latent dynamics (s, a) -> s' with its value-prefix (reward) head",
    "prediction": "MuZero-family prediction function s -> (policy, value)",
    "projection": "SimSiam projection MLP of a latent (EfficientZero's consistency loss)",
    "predictor": "SimSiam predictor MLP applied after the projection on the online branch",
}

#: Sub-module names with a fixed meaning inside any component.
SUBMODULES: dict[str, str] = {
    "out": "the component's output layer",
    "hidden": "the component's layers before its output layer",
    "action_input": "the weights that read the action (transition and dynamics only)",
    "value_prefix": "dynamics' value-prefix head: reduction, LSTM, MLP (has lstm, hidden, out)",
    "lstm": "the recurrent cell of a value-prefix head",
    "policy_head": "prediction's policy head (has reduce, hidden, out)",
    "value_head": "prediction's value head (has reduce, hidden, out)",
    "reduce": "a head's 1x1 convolution to a few channels, before its MLP",
    "stem": "representation's observation encoder before its residual blocks",
    "blocks": "the residual blocks of a representation, dynamics or prediction function",
}


class UnknownComponentError(KeyError):
    """A component pattern matched nothing, or an agent used a name outside the vocabulary."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def check_vocabulary(names: Iterable[str]) -> None:
    """Raise if any name is not in :data:`COMPONENTS`."""
    unknown = sorted(set(names) - set(COMPONENTS))
    if unknown:
        raise UnknownComponentError(
            f"component name(s) {unknown} are not in the vocabulary {sorted(COMPONENTS)}"
        )


def _submodule(root: nn.Module, path: str, full: str) -> nn.Module:
    module = root
    for part in path.split("."):
        children = dict(module.named_children())
        if part not in children:
            raise UnknownComponentError(
                f"'{full}': no sub-module '{part}' (has {sorted(children)})"
            )
        module = children[part]
    return module


def select(components: Mapping[str, nn.Module], patterns: str | Iterable[str]) -> dict[str, nn.Module]:
    """Resolve component patterns to ``{address: module}``; raise when a pattern matches nothing.

    ``"reward"`` -> the reward component; ``"reward.out"`` -> its output layer;
    ``"*"`` or ``"re*"`` -> every component whose name matches the glob.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    found: dict[str, nn.Module] = {}
    for pattern in patterns:
        head, _, rest = pattern.partition(".")
        names = [n for n in components if fnmatch.fnmatchcase(n, head)]
        if not names:
            raise UnknownComponentError(
                f"component pattern '{pattern}' matches nothing; this agent has {sorted(components)}"
            )
        for name in names:
            module = components[name]
            address = name
            if rest:
                module = _submodule(module, rest, pattern)
                address = f"{name}.{rest}"
            found[address] = module
    return found


def parameters_of(components: Mapping[str, nn.Module], patterns: str | Iterable[str]):
    """All parameters of the selected components, each once."""
    seen: dict[int, nn.Parameter] = {}
    for module in select(components, patterns).values():
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())
