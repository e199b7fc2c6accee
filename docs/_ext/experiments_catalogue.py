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


def docstring_markdown(text: str) -> str:
    """An experiment docstring as Markdown: its prose as written, and each indented block that follows a blank
    line or a line ending in ":" (the commands) as a fenced shell block; an indented block right under "Command:"
    would otherwise join that paragraph. Other indented lines continue the prose (a list item's second line)."""
    lines: list[str] = []
    in_code, previous = False, ""
    for line in text.splitlines():
        indented = line.startswith(("    ", "\t")) and bool(line.strip())
        opens = indented and not in_code and (not previous.strip() or previous.rstrip().endswith(":"))
        if opens:
            lines += ["", "```bash"]
        elif in_code and line.strip() and not indented:
            while not lines[-1]:
                lines.pop()
            lines += ["```", ""]
        in_code = opens or (in_code and (indented or not line.strip()))
        lines.append(line.removeprefix("    ").removeprefix("\t") if in_code else line.strip())
        previous = line
    return "\n".join([*lines, "```"] if in_code else lines).strip()


def catalogue_page(repo: Path) -> str:
    """A table of every experiment (its summary line and model), then a section per experiment (target
    `experiment-<name>`) with its model, data and task and its whole docstring; models link to the model zoo."""
    rows, sections = [], []
    for path in experiment_files(repo):
        config = load_config_file(path)
        summary, _, body = _docstring(path).partition("\n")
        name = path.stem
        model = f"{{ref}}`{config.model.name} <model-{family_of(config.model.name)}>`"
        rows.append(f"| [`{path.name}`](#experiment-{name}) | {summary} | {model} |")
        uses = f"Model {model}, data `{config.data.name}`, task `{config.task.name}`."
        sections += ["", f"(experiment-{name})=", f"## `experiments/{path.name}`", "", summary, "", uses, ""]
        sections.append(docstring_markdown(body))
    lines = [
        "# Experiments",
        "",
        "One config file per experiment in `experiments/`, each opening with a docstring that says what it trains,",
        "the command, how long it takes and what it reached; this page is generated from them.",
        "",
        "| experiment | what it trains | model |",
        "|---|---|---|",
        *rows,
        *sections,
    ]
    return "\n".join(lines) + "\n"
