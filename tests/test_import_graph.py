"""The package's import graph has no cycles, counting imports inside functions too.

A cycle (even one hidden in a function-local import) means two modules each need the other: neither can
be read, tested or changed alone. The package's `__init__` only re-exports the API lazily and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxmodels"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """{module: the jaxmodels modules it imports anywhere in its body}."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {target for target in targets if target in modules and target != name}
    graph.pop("jaxmodels", None)  # the lazy API facade
    for targets in graph.values():
        targets.discard("jaxmodels")
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "active"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "active":
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert "jaxmodels.experiment" in graph["jaxmodels.loop"]  # the graph sees the package's imports
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_function_local_import_cycle(tmp_path: Path) -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("jaxmodels.parallel", {"jaxmodels.loop", "jaxmodels.experiment", "jaxmodels.models.transformer"}),
        ("jaxmodels.checkpoint", {"jaxmodels.loop", "jaxmodels.experiment", "jaxmodels.params_io"}),
        ("jaxmodels.data.views", {"jaxmodels.models", "jaxmodels.models.registry"}),
    ],
)
def test_layers_import_only_what_is_below_them(module: str, forbidden: set[str]) -> None:
    assert not import_graph()[module] & forbidden
