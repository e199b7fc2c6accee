"""The Python API reference pages, generated from the docstrings by autodoc: the `jaxmodels` package (every name
of `jaxmodels.__all__`), and the modules a user calls beside it (`jaxmodels.explain`, `jaxmodels.compare`, the
modules of `jaxmodels.sweeps`)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterator
from typing import Any

import jaxmodels

# Modules documented whole, beside the package's own names; a package here brings all its modules.
MODULES = ("jaxmodels.explain", "jaxmodels.compare", "jaxmodels.sweeps")


def _rst(lines: list[str]) -> list[str]:
    return ["```{eval-rst}", *lines, "```"]


def package_page() -> str:
    """`jaxmodels`: the package docstring, then each name of `__all__`, a class with its members."""
    lines = ["# jaxmodels", "", *_rst([".. automodule:: jaxmodels", ""])]
    for name in jaxmodels.__all__:
        kind = "autoclass" if inspect.isclass(getattr(jaxmodels, name)) else "autofunction"
        options = ["   :members:"] if kind == "autoclass" else []
        lines += ["", *_rst([f".. {kind}:: jaxmodels.{name}", *options])]
    documented = {module for name in MODULES for module in modules_of(name)}
    types = [cls for cls in _types_in_signatures([getattr(jaxmodels, name) for name in jaxmodels.__all__])
             if cls.__module__ not in documented]  # fmt: skip
    if types:
        lines += ["", "## Types in these signatures", ""]
        lines += _rst([line for cls in sorted(types, key=_path) for line in (f".. autoclass:: {_path(cls)}", "")])
    return "\n".join(lines) + "\n"


def _path(value: Any) -> str:
    return f"{value.__module__}.{value.__qualname__}"


def _annotated(obj: Any) -> Iterator[Any]:
    """The functions whose annotations make up `obj`'s documented signatures: itself, or a class's methods and
    properties (and its fields' annotations, through the class itself)."""
    yield obj
    if inspect.isclass(obj):
        for _name, member in inspect.getmembers(obj):
            yield member.fget if isinstance(member, property) else member


def _classes_in(annotation: Any) -> Iterator[type]:
    if inspect.isclass(annotation):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _classes_in(argument)


def _types_in_signatures(objects: list[Any]) -> set[type]:
    """The jaxmodels classes that the signatures of `objects` (and, in turn, of those classes) name, beside
    `objects` themselves: documented with them, so that every type in a signature links somewhere."""
    found: set[type] = set()
    todo = list(objects)
    while todo:
        for function in _annotated(todo.pop()):
            try:
                hints = typing.get_type_hints(function)
            except Exception:  # a builtin, a C function or an unresolvable annotation: nothing to link
                continue
            for cls in (cls for hint in hints.values() for cls in _classes_in(hint)):
                if cls.__module__.startswith("jaxmodels") and cls not in found and cls not in objects:
                    found.add(cls)
                    todo.append(cls)
    return found


def modules_of(name: str) -> list[str]:
    """`name` and, for a package, each of its modules."""
    module = importlib.import_module(name)
    inner = [f"{name}.{info.name}" for info in pkgutil.iter_modules(getattr(module, "__path__", []))]
    return [name, *sorted(inner)]


def module_page(name: str) -> str:
    """One module (or a package and its modules): docstrings and every public member defined there."""
    lines = [f"# `{name}`"]
    for module in modules_of(name):
        heading = [] if module == name else ["", f"## `{module}`"]
        lines += [*heading, "", *_rst([f".. automodule:: {module}", "   :members:"])]
    return "\n".join(lines) + "\n"


def api_files() -> dict[str, str]:
    """The API pages by path in the generated folder, with an index that lists them and the model zoo."""
    pages = {"api/jaxmodels.md": package_page()}
    pages |= {f"api/{name}.md": module_page(name) for name in MODULES}
    toctree = ["```{toctree}", "jaxmodels", *MODULES, "```"]
    index = [
        "# API reference",
        "",
        "Generated from the docstrings. `import jaxmodels as jm` gives the names of the first page; the guide",
        "[The Python API](../../api.md) tells the same story with examples; the models are in the",
        "[model zoo](../models.md).",
        "",
        *toctree,
    ]
    return pages | {"api/index.md": "\n".join(index) + "\n"}
