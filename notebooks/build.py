"""Executes the paper-reproduction notebooks: full mode writes the committed .ipynb, fast mode checks them.

Each notebook is written as a jupytext py:percent file (`notebooks/<name>.py`, what reviews diff) and committed
as `notebooks/<name>.ipynb` with the outputs of a full run. This script turns the first into the second:

    python notebooks/build.py notebooks/mnist1d_table1.py        # full mode: minutes; writes the .ipynb
    JAXMODELS_FAST=1 python notebooks/build.py --check notebooks/*.py   # fast mode: run, write nothing
    python notebooks/build.py --text notebooks/mnist1d_table1.py  # new prose, same code: no re-run needed

The test suite runs every notebook in fast mode (`tests/test_notebooks.py`), where each asserts the ranges
its shrunken run must reach.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from jaxmodels.reproducibility import provenance

NOTEBOOKS = Path(__file__).resolve().parent
TIMEOUT_S = 4 * 3600  # per cell, full mode (the BERT notebook's fine-tuning cell runs over an hour on 2 cores)


def execute(source: Path, *, fast: bool, timeout: int = TIMEOUT_S) -> nbformat.NotebookNode:
    """The notebook of jupytext file `source`, executed top to bottom in a fresh kernel (cwd: notebooks/)."""
    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)  # the pairing lives in the .py header; keep the .ipynb plain
    # Per-seed numbers are reproducible on the same machine type and software only: say which ones these were.
    notebook.metadata["jaxmodels"] = {"provenance": provenance().as_dict()}
    if not fast and "+" in notebook.metadata["jaxmodels"]["provenance"]["commit"]:
        print(f"{source}: warning: tracked files differ from the commit; commit them first", file=sys.stderr)
    previous = os.environ.get("JAXMODELS_FAST")
    os.environ["JAXMODELS_FAST"] = "1" if fast else "0"
    try:
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
            record_timing=False,  # no timestamps: re-running an unchanged notebook gives the same file
        )
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("JAXMODELS_FAST")
        else:
            os.environ["JAXMODELS_FAST"] = previous
    notebook.metadata.get("language_info", {}).pop("version", None)
    return notebook


def with_new_text(source: Path) -> nbformat.NotebookNode:
    """The committed notebook with the markdown of `source`: for prose edits, which need no re-run.

    Refuses (ValueError) if any code cell changed, since the outputs would no longer be those of the code.
    """
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    cells = jupytext.read(source).cells
    if [(c.cell_type, c.source) for c in cells if c.cell_type == "code"] != [
        (c.cell_type, c.source) for c in committed.cells if c.cell_type == "code"
    ] or len(cells) != len(committed.cells):
        raise ValueError(f"{source}: code cells changed; re-run it: python notebooks/build.py {source}")
    for cell, new in zip(committed.cells, cells, strict=True):
        if cell.cell_type == "markdown":
            cell.source = new.source
    return committed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="notebooks/<name>.py files")
    parser.add_argument("--check", action="store_true", help="fast mode; write nothing")
    parser.add_argument("--text", action="store_true", help="only copy the markdown into the committed .ipynb")
    args = parser.parse_args(argv)
    for source in args.sources:
        if args.text:
            nbformat.write(with_new_text(source), source.with_suffix(".ipynb"))
            continue
        start = time.perf_counter()
        notebook = execute(source, fast=args.check)
        if not args.check:
            nbformat.write(notebook, source.with_suffix(".ipynb"))
        print(f"{source}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
