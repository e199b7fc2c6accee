"""The notebook pages (copies of notebooks/*.ipynb, rendered with their committed outputs) and the landing
page's reproductions at a glance: the table of docs/reproductions.md with each notebook's main plot beside it."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from generated_tree import markdown_table

NOTEBOOK_COLUMN = "notebook"  # the column of docs/reproductions.md's table that names the notebook of a row


def notebook_files(repo: Path) -> dict[str, str]:
    """The notebooks as pages: `notebooks/<name>.ipynb` -> their text, unchanged."""
    return {f"notebooks/{path.name}": path.read_text() for path in sorted((repo / "notebooks").glob("*.ipynb"))}


def png_outputs(notebook_text: str) -> list[bytes]:
    """The PNG images among a notebook's outputs, in order."""
    cells = json.loads(notebook_text)["cells"]
    return [
        base64.b64decode("".join(output["data"]["image/png"]))
        for cell in cells
        if cell["cell_type"] == "code"
        for output in cell["outputs"]
        if "image/png" in output.get("data", {})
    ]


def title(notebook_text: str) -> str:
    """The notebook's first Markdown heading."""
    for cell in json.loads(notebook_text)["cells"]:
        if cell["cell_type"] == "markdown" and (heading := re.search(r"^#+\s+(.+)$", "".join(cell["source"]), re.M)):
            return heading.group(1).strip()
    raise ValueError("a notebook without a Markdown heading")


def thumbnails(notebooks: dict[str, str]) -> dict[str, bytes]:
    """Each notebook's main plot, its last PNG output (the result it ends on), as `thumbnails/<name>.png`."""
    return {
        f"thumbnails/{Path(path).stem}.png": images[-1]
        for path, text in notebooks.items()
        if (images := png_outputs(text))
    }


def glance(reproductions_md: str, notebooks: dict[str, str]) -> str:
    """docs/reproductions.md's table as Markdown for a page in the generated folder's parent: a thumbnail of the
    notebook's main plot first (once per notebook), and the notebook's name as a link to its page. A notebook the
    table lacks gets a row of its own, named by its title."""
    rows = markdown_table(reproductions_md)
    columns = list(rows[0])
    names = {Path(path).stem: path for path in notebooks}
    by_notebook = {name: [] for name in names}
    for row in rows:
        name = re.sub(r"[`\s]", "", row[NOTEBOOK_COLUMN])
        by_notebook.setdefault(name, []).append(row)  # a name without a notebook fails the build: a dead link
    lines = ["| plot | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, its_rows in by_notebook.items():
        page = f"_generated/notebooks/{name}.ipynb"
        has_plot = name in names and png_outputs(notebooks[names[name]])
        thumbnail = f"[![the main plot of {name}](_generated/thumbnails/{name}.png)]({page})" if has_plot else ""
        if not its_rows:
            its_rows = [{column: "" for column in columns} | {columns[0]: title(notebooks[names[name]])}]
        for index, row in enumerate(its_rows):
            cells = {**row, NOTEBOOK_COLUMN: f"[{name}]({page})"}
            lines.append(f"| {thumbnail if index == 0 else ''} | " + " | ".join(cells[c] for c in columns) + " |")
    return "\n".join(lines) + "\n"
