"""The experiments catalogue, generated from experiments/*.py: each file's docstring (what it trains, the command,
how long it takes, what it reached) and, from its `get_config()`, the model, data and task it uses."""

from __future__ import annotations

import ast
from pathlib import Path

from jaxmodels.config import load_config_file
from jaxmodels.models.registry import family_of


def experiment_files(repo: Path) -> list[Path]:
    return sorted((repo / "experiments").glob("*.py"))


def _docstring(path: Path) -> str:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    if not docstring:
        raise ValueError(f"{path} has no docstring: say what it trains, the command and what it reaches")
    return docstring


def catalogue_page(repo: Path) -> str:
    """A table of every experiment (model, data, task, summary), then a section per experiment (target
    `experiment-<name>`) with its whole docstring; model names link to the model zoo."""
    rows, sections = [], []
    for path in experiment_files(repo):
        config = load_config_file(path)
        summary, _, body = _docstring(path).partition("\n")
        name = path.stem
        model = f"{{ref}}`{config.model.name} <model-{family_of(config.model.name)}>`"
        rows.append(f"| [`{path.name}`](#experiment-{name}) | {model} | `{config.data.name}` | `{config.task.name}` "
                    f"| {summary} |")  # fmt: skip
        sections += ["", f"(experiment-{name})=", f"## `experiments/{path.name}`", "", summary, "", body.strip()]
    lines = [
        "# Experiments",
        "",
        "One config file per experiment in `experiments/`, each opening with a docstring that says what it trains,",
        "the command, how long it takes and what it reached; this page is generated from them.",
        "",
        "| experiment | model | data | task | what it is |",
        "|---|---|---|---|---|",
        *rows,
        *sections,
    ]
    return "\n".join(lines) + "\n"
