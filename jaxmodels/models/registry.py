"""Model registry: config names -> Flax Linen module classes, their published sizes and what they declare.

An experiment selects a model by `config.model.name` and passes the remaining keys of `config.model` as
constructor arguments. A name is one of two kinds:

- a *family*: one module class whose fields are free hyperparameters (`gpt`, `resnet`, `vit`, ...);
- a *variant*: a published size of a family (`gpt2_small`, `resnet50`, `vit_b16`, ...). It fixes the
  architecture's sizes (layers, widths, heads, patch or stage sizes, context length), never the sizes the data
  decides (`num_classes`, `vocab_size`), which keep the family's default unless the config or the data sets them.

Unknown names and arguments raise a `ConfigError` that suggests the closest valid spelling; asking a variant for
other sizes than its own is a `ConfigError` too (`get_model`), or, for a config file, a note that says which
keys the variant replaced (`resolve_arguments`).

Adding a model: write the module class in the family's file (or in a new file of jaxmodels/models/, which the
package imports by itself), decorate it with `@register("name")` and add a test in tests/models/. Name its
hyperparameters as the other families do: `embed_dim`, `num_layers`, `num_heads`, `mlp_dim`, `dropout`,
`num_classes`, `vocab_size`. A language model also implements the decoding protocol of `sampling.generate`. A
family may declare, for the layers above it:

- `logical_axes=`: a function from a parameter path to its logical axis names (or None), which the
  tensor-parallel strategy uses to split the parameters (`transformer.logical_axes`);
- `view_options=`: a dict of options the data layer reads to shape the batches (word2vec's
  `{"word2vec_inputs": "context"}`).

Adding a published size: one line under the family's class, with the paper (and parameter count) in a comment,

    register_variant("resnet50", "resnet", stage_sizes=(3, 4, 6, 3), block="bottleneck")

and its published parameter count in `PUBLISHED_COUNTS` of tests/models/test_registry.py.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flax.linen as nn

from jaxmodels.errors import ConfigError

Constructor = Callable[..., nn.Module]
LogicalAxes = Callable[[tuple[str, ...]], tuple[str, ...] | None]

# Sizes the data decides (the number of classes, the vocabulary): a variant never fixes them.
DATA_SIZES = ("num_classes", "vocab_size")


@dataclasses.dataclass(frozen=True)
class _Family:
    constructor: Constructor
    logical_axes: LogicalAxes | None
    view_options: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class _Variant:
    family: str
    sizes: Mapping[str, Any]


_FAMILIES: dict[str, _Family] = {}
_VARIANTS: dict[str, _Variant] = {}


def _check_new(name: str) -> None:
    if name in _FAMILIES or name in _VARIANTS:
        raise ValueError(f"model {name!r} is registered twice")


def register(
    name: str, *, logical_axes: LogicalAxes | None = None, view_options: Mapping[str, Any] | None = None
) -> Callable[[Constructor], Constructor]:
    """Class (or function) decorator that makes a model family constructible as `config.model.name = name`.

    `logical_axes` and `view_options` are what the family declares to the parallel strategy and the data layer
    (see the module docstring); its variants share them.
    """

    def decorate(constructor: Constructor) -> Constructor:
        _check_new(name)
        _FAMILIES[name] = _Family(constructor, logical_axes, dict(view_options or {}))
        return constructor

    return decorate


def register_variant(name: str, family: str, **sizes: Any) -> None:
    """Registers `name` as a published size of the registered `family`: its architecture `sizes`.

    Raises ValueError (a bug in the zoo, not a user error) for an unknown family, a size the family has no field
    for, or a data-determined size (`num_classes`, `vocab_size`).
    """
    _check_new(name)
    if family not in _FAMILIES:
        raise ValueError(f"variant {name!r}: register its family {family!r} first")
    data_sizes = sorted(set(sizes) & set(DATA_SIZES))
    if data_sizes:
        raise ValueError(f"variant {name!r} fixes {data_sizes}, which the data decides; leave them out")
    fields = _accepted_arguments(_FAMILIES[family].constructor)
    unknown = sorted(set(sizes) - fields) if fields is not None else []
    if unknown:
        raise ValueError(f"variant {name!r}: family {family!r} has no fields {unknown}")
    _VARIANTS[name] = _Variant(family, dict(sizes))


def available_models() -> list[str]:
    """Sorted names of all registered families and variants."""
    return sorted([*_FAMILIES, *_VARIANTS])


def suggest(name: str, choices: list[str]) -> str:
    """' Did you mean ...?' for the closest choices, or the list of valid choices."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f" Did you mean {' or '.join(repr(c) for c in close)}?"
    return f" Valid choices: {', '.join(choices)}."


def family_of(name: str) -> str:
    """The family of model `name`: itself for a family, the family it sizes for a variant."""
    if name in _VARIANTS:
        return _VARIANTS[name].family
    if name in _FAMILIES:
        return name
    raise ConfigError(f"unknown model {name!r} (config key model.name).{suggest(name, available_models())}")


def variant_sizes(name: str) -> dict[str, Any]:
    """The sizes variant `name` fixes; {} for a family."""
    family_of(name)  # unknown names raise
    return dict(_VARIANTS[name].sizes) if name in _VARIANTS else {}


def logical_axes_of(name: str) -> LogicalAxes | None:
    """The `logical_axes(path)` function declared by the family of `name`, or None if it declares none."""
    return _FAMILIES[family_of(name)].logical_axes


def view_options_of(name: str) -> dict[str, Any]:
    """The data-view options declared by the family of `name` ({} if none)."""
    return dict(_FAMILIES[family_of(name)].view_options)


def _accepted_arguments(constructor: Constructor) -> set[str] | None:
    """The keyword arguments a module class accepts (its dataclass fields), or None if unknown."""
    if isinstance(constructor, type) and dataclasses.is_dataclass(constructor):
        return {f.name for f in dataclasses.fields(constructor) if f.init and f.name not in ("parent", "name")}
    return None


def model_fields(name: str) -> set[str]:
    """Constructor arguments of registered model `name`, a variant's being its family's (empty if unknown)."""
    family = _VARIANTS[name].family if name in _VARIANTS else name
    if family not in _FAMILIES:
        return set()
    return _accepted_arguments(_FAMILIES[family].constructor) or set()


def _same(a: Any, b: Any) -> bool:
    """Equal values, a list equal to the tuple with the same items (config files may hold either)."""
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _show(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else repr(value)


def _conflicts(name: str, arguments: Mapping[str, Any]) -> list[str]:
    """The keys of `arguments` whose values differ from the sizes variant `name` fixes."""
    sizes = variant_sizes(name)
    return [key for key in sizes if key in arguments and not _same(arguments[key], sizes[key])]


def resolve_arguments(name: str, arguments: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The constructor arguments of model `name` given a config's `arguments`, and notes for the log.

    For a variant its sizes win: they replace conflicting keys of `arguments`, and one note lists what was
    replaced, e.g. "model gpt2_small sets its published sizes: num_layers=12 (the config had 4), embed_dim=768
    (had 128)". No note if nothing conflicted. A family's arguments are returned unchanged. The result can be
    passed to `get_model(name, **arguments)`.
    """
    sizes = variant_sizes(name)
    replaced = _conflicts(name, arguments)
    parts: list[str] = []
    for key in replaced:
        was = "had" if parts else "the config had"
        parts.append(f"{key}={_show(sizes[key])} ({was} {_show(arguments[key])})")
    notes = [f"model {name} sets its published sizes: {', '.join(parts)}"] if parts else []
    return {**arguments, **sizes}, notes


def check_arguments(name: str, arguments: Iterable[str]) -> None:
    """ConfigError for an unknown model `name` or the first of `arguments` its constructor does not take.

    Needs no data, so a config is checked before anything is read or trained for it.
    """
    accepted = _accepted_arguments(_FAMILIES[family_of(name)].constructor)
    if accepted is None:  # a function: its arguments are checked when it is called
        return
    for key in arguments:
        if key not in accepted:
            raise ConfigError(
                f"model {name!r} has no argument {key!r} (config key model.{key}).{suggest(key, sorted(accepted))}"
            )


def check_values(name: str, arguments: Mapping[str, Any]) -> None:
    """ConfigError for the first of `arguments` whose value cannot be what model `name`'s field of that name
    holds, judged by the field's default: another type (a float field takes an int too), a float that is not
    finite, or a negative integer where the default is a size or count (>= 0). Caught here, the mistake is
    named by its config key instead of failing deep inside a layer, or on the data."""
    constructor = _FAMILIES[family_of(name)].constructor
    if not (isinstance(constructor, type) and dataclasses.is_dataclass(constructor)):
        return
    defaults = {field.name: field.default for field in dataclasses.fields(constructor)}
    for key, value in arguments.items():
        if problem := _value_problem(defaults.get(key, dataclasses.MISSING), value):
            raise ConfigError(f"config key 'model.{key}' {problem}, got {value!r} (model {name!r})")


def _value_problem(default: Any, value: Any) -> str | None:
    """Why `value` cannot replace a field's `default`, or None (also for a field with no plain default)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be True or False"
    if isinstance(default, int):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):  # numpy's integers are integers
            return "must be an integer"
        return "must be >= 0 (it is a size or a count)" if default >= 0 > value else None
    if isinstance(default, float):
        finite = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        return None if finite else "must be a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be a string"
    return None


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Builds the registered model `name` with constructor arguments `kwargs`.

    A variant takes every argument of its family except other values of the sizes it fixes: those raise a
    ConfigError that points to the family, whose sizes are free.
    """
    family = family_of(name)
    conflicts = _conflicts(name, kwargs)
    if conflicts:
        fixed = ", ".join(f"{key}={_show(variant_sizes(name)[key])}" for key in conflicts)
        raise ConfigError(
            f"model {name!r} fixes {fixed} (its published sizes), so it cannot take "
            f"{', '.join(f'{key}={_show(kwargs[key])}' for key in conflicts)}; "
            f"use the family {family!r} (config key model.name) to choose sizes freely"
        )
    check_arguments(name, kwargs)
    check_values(name, kwargs)
    constructor = _FAMILIES[family].constructor
    arguments = {**variant_sizes(name), **kwargs}
    try:
        return constructor(**arguments)
    except TypeError as error:
        raise ConfigError(f"model {name!r} rejected its config arguments {arguments}: {error}") from None
