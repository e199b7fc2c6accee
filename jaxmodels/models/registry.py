"""Model registry: config names -> Flax Linen module classes.

Every model family registers its constructors here with `@register("name")`, so an
experiment selects a model by `config.model.name` and passes the remaining keys of
`config.model` as constructor arguments. Unknown names and unknown arguments raise a
`ConfigError` that suggests the closest valid spelling.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxmodels.errors import ConfigError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class/function decorator that makes a model constructible as `config.model.name = name`."""

    def decorate(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = constructor
        return constructor

    return decorate


def available_models() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_MODELS)


def suggest(name: str, choices: list[str]) -> str:
    """' Did you mean ...?' for the closest choices, or the list of valid choices."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f" Did you mean {' or '.join(repr(c) for c in close)}?"
    return f" Valid choices: {', '.join(choices)}."


def _accepted_arguments(constructor: Callable[..., nn.Module]) -> set[str] | None:
    """The keyword arguments a module class accepts (its dataclass fields), or None if unknown."""
    if isinstance(constructor, type) and dataclasses.is_dataclass(constructor):
        return {f.name for f in dataclasses.fields(constructor) if f.init and f.name not in ("parent", "name")}
    return None


def model_fields(name: str) -> set[str]:
    """Constructor arguments of registered model `name` (empty if unknown or not a dataclass)."""
    return _accepted_arguments(_MODELS[name]) or set() if name in _MODELS else set()


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Builds the registered model `name` with constructor arguments `kwargs`."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r} (config key model.name).{suggest(name, available_models())}")
    constructor = _MODELS[name]
    accepted = _accepted_arguments(constructor)
    if accepted is not None:
        for key in kwargs:
            if key not in accepted:
                raise ConfigError(
                    f"model {name!r} has no argument {key!r} (config key model.{key}).{suggest(key, sorted(accepted))}"
                )
    try:
        return constructor(**kwargs)
    except TypeError as error:
        raise ConfigError(f"model {name!r} rejected its config arguments {kwargs}: {error}") from None
