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
    """Each notebook's main plot, its first PNG output (the notebooks open their results on the headline plot),
    as `thumbnails/<name>.png`."""
    return {
        f"thumbnails/{Path(path).stem}.png": images[0]
        for path, text in notebooks.items()
        if (images := png_outputs(text))
    }


def glance(reproductions_md: str, notebooks: dict[str, str]) -> str:
    """A card per notebook for a page in the generated folder's parent: the notebook's main plot and its title,
    both linking to its page, then its rows of docs/reproductions.md's table, one line per column. A notebook the
    table lacks still gets its card; a row naming no notebook fails the build (a link to a missing page)."""
    rows = markdown_table(reproductions_md)
    stems = {Path(path).stem: text for path, text in notebooks.items()}
    by_notebook: dict[str, list[dict[str, str]]] = {name: [] for name in stems}
    for row in rows:
        by_notebook.setdefault(re.sub(r"[`\s]", "", row[NOTEBOOK_COLUMN]), []).append(row)
    lines = []
    for name, its_rows in by_notebook.items():
        page = f"_generated/notebooks/{name}.ipynb"
        plot = f"[![the main plot of {name}](_generated/thumbnails/{name}.png)]({page})"
        heading = title(stems[name]) if name in stems else name
        lines += [":::{container} glance", plot if name in stems and png_outputs(stems[name]) else "", ""]
        lines += [f"**[{heading}]({page})**", ""]
        for row in its_rows:
            lines += [f"- *{column}*: {value}" for column, value in row.items() if column != NOTEBOOK_COLUMN]
            lines.append("")
        lines += [":::", ""]
    return "\n".join(lines)
