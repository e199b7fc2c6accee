"""The paper-reproduction notebooks: each runs top to bottom in fast mode and asserts the ranges it must reach,
and the committed .ipynb is the executed form of its jupytext source (same cells, outputs of a full run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted(path for path in NOTEBOOKS.glob("*.py") if path.name != "build.py")
# The language notebooks' fast runs live in tests/test_notebooks_text.py: a module of their own, so that the test
# command's workers (pytest-xdist, one module each at a time) run the two halves side by side.
TEXT = [NOTEBOOKS / f"{name}.py" for name in ("shakespeare_char", "word2vec", "bert_finetune")]


def _build_module():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_has_a_source_and_an_executed_twin():
    assert SOURCES, "no notebooks found"
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == [path.stem for path in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.stem)
def test_the_committed_notebook_is_the_full_run_of_its_source(source):
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    twin = jupytext.read(source)
    assert [(cell.cell_type, cell.source) for cell in committed.cells] == [
        (cell.cell_type, cell.source) for cell in twin.cells
    ], f"{source.name} changed since its .ipynb was executed: run python notebooks/build.py {source}"
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "the notebook was not executed top to bottom"
    assert not [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert any(output.get("data", {}).get("image/png") for cell in code for output in cell.outputs), "no plot"


def run_in_fast_mode(source: Path, data_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFDS_DATA_DIR", data_dir)  # datasets are generated once per test session
    _build_module().execute(source, fast=True, timeout=600)  # raises on an error or a failed range assertion


def test_the_text_notebooks_are_all_notebooks():
    assert set(TEXT) <= set(SOURCES)


@pytest.mark.parametrize("source", [s for s in SOURCES if s not in TEXT], ids=lambda path: path.stem)
def test_the_notebook_runs_in_fast_mode(source, data_dir, monkeypatch):
    run_in_fast_mode(source, data_dir, monkeypatch)
