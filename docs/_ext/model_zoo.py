"""The model zoo page, generated from the model registry: every family (its class, fields and docstring) and every
published size (variant) with its parameter count, counted with `jax.eval_shape` (nothing allocated, nothing
compiled) on the inputs and data sizes tests/models/test_registry.py checks the published count on."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import Any

from jaxmodels.errors import ConfigError
from jaxmodels.models.registry import (
    _FAMILIES,
    available_models,
    family_of,
    get_model,
    model_fields,
    variant_sizes,
)


def _registry_spec(repo: Path) -> ModuleType:
    """tests/models/test_registry.py, whose PUBLISHED_COUNTS gives each variant's inputs and data sizes."""
    spec = importlib.util.spec_from_file_location("registry_spec", repo / "tests" / "models" / "test_registry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs_text(inputs: tuple[Any, ...], data_sizes: dict[str, int]) -> str:
    shapes = ", ".join(f"{x.dtype} {'x'.join(map(str, x.shape))}" for x in inputs)
    return "; ".join([shapes, *(f"{key} {value:,}" for key, value in data_sizes.items())])


def _sizes_text(sizes: dict[str, Any]) -> str:
    return ", ".join(f"`{key}={value!r}`" for key, value in sizes.items())


def parameter_counts(repo: Path) -> dict[str, tuple[int, str]]:
    """Model name -> (parameter count, what it was counted on): every variant; a family too when it builds with
    its defaults on the inputs of one of its variants (its count is then that of its default sizes)."""
    spec = _registry_spec(repo)
    counts: dict[str, tuple[int, str]] = {}
    for name, (inputs, data_sizes, _published) in spec.PUBLISHED_COUNTS.items():
        model = get_model(name, **data_sizes)
        counts[name] = (spec.count_params(model, inputs), _inputs_text(inputs, data_sizes))
        family = family_of(name)
        if family in counts:
            continue
        try:
            defaults = get_model(family, **data_sizes)
        except ConfigError:  # a family without defaults for its sizes (resnet's stage_sizes): no one count
            continue
        same = _fields(defaults, family) == _fields(model, family)  # gpt's defaults are gpt2_small: count once
        count = counts[name][0] if same else spec.count_params(defaults, inputs)
        counts[family] = (count, _inputs_text(inputs, data_sizes) + ", its defaults")
    return counts


def _fields(model: Any, family: str) -> dict[str, Any]:
    return {field: getattr(model, field) for field in model_fields(family)}


def _constructor_directive(family: str) -> str:
    constructor = _FAMILIES[family].constructor
    kind = "autoclass" if inspect.isclass(constructor) else "autofunction"
    return f".. {kind}:: {constructor.__module__}.{constructor.__qualname__}"


def models_page(repo: Path, used_by: dict[str, list[str]]) -> str:
    """The Markdown of the model zoo; `used_by` maps a family to the experiments (file stems) that train it."""
    counts = parameter_counts(repo)
    names = available_models()
    families = [name for name in names if family_of(name) == name]

    def count(name: str) -> str:
        return f"{counts[name][0]:,}" if name in counts else "set by the data: {ref}`jaxmodels compile <cli-compile>`"

    lines = [
        "# Model zoo",
        "",
        "Every model of the registry (`config.model.name`): a *family* is one Flax module whose sizes are free",
        "config keys; a *variant* is a published size of a family, which fixes the architecture and leaves the",
        "sizes the data decides (`num_classes`, `vocab_size`) to the data. Parameter counts are computed when this",
        "page is built, with `jax.eval_shape`, on the inputs named beside them; a family whose sizes depend on the",
        "data has its count in `jaxmodels compile --config EXPERIMENT`. How to add a model or a size:",
        "{py:mod}`jaxmodels.models.registry`.",
        "",
        "| model | family | parameters | experiments |",
        "|---|---|---|---|",
    ]
    for name in names:
        family = family_of(name)
        experiments = ", ".join(f"{{ref}}`{stem} <experiment-{stem}>`" for stem in used_by.get(family, []))
        lines.append(f"| `{name}` | {{ref}}`{family} <model-{family}>` | {count(name)} | {experiments} |")
    for family in families:
        variants = [name for name in names if family_of(name) == family and name != family]
        lines += ["", f"(model-{family})=", f"## `{family}`", ""]
        lines += ["```{eval-rst}", _constructor_directive(family), "```"]
        if family in counts:
            lines += ["", f"With its default sizes: {count(family)} parameters on {counts[family][1]}."]
        if variants:
            lines += ["", "| variant | sizes it fixes | parameters | counted on |", "|---|---|---|---|"]
            lines += [
                f"| `{name}` | {_sizes_text(variant_sizes(name))} | {count(name)} | {counts.get(name, (0, ''))[1]} |"
                for name in variants
            ]
    lines += ["", "## The registry", "", "```{eval-rst}", ".. automodule:: jaxmodels.models.registry", "   :members:",
              "```"]  # fmt: skip
    return "\n".join(lines) + "\n"
