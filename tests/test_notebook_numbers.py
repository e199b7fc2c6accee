"""No number in a notebook's prose, or in docs/reproductions.md, that its outputs do not show.

A result typed into Markdown goes stale the day the code changes; a result rendered from the computed values
(`IPython.display.Markdown`) cannot. So every number in a notebook's Markdown cells, and in the rows and
notes of docs/reproductions.md, must appear among the numbers its committed outputs print (thousands
separators ignored, compared as values: 1,473 is 1473, 50.0 is 50). What is not a result is left out:
inline code and link targets (settings and paths, checked by running the code), citation years, section,
table, figure and equation numbers, and digits inside names (ResNet-20, word2vec, MNIST-1D, ViT-B/16).
A paper's own numbers are best printed beside ours by the notebook; the few that are not are listed in
PAPER_NUMBERS with where they come from.

The committed notebook's metadata and first output also say which commit, software and CPU made them.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(path for path in (ROOT / "notebooks").glob("*.ipynb"))
REPRODUCTIONS = ROOT / "docs" / "reproductions.md"

# Numbers quoted from a paper or its code and not printed by the notebook: notebook -> {number: source}.
PAPER_NUMBERS: dict[str, dict[str, str]] = {
    "bert_finetune": {
        "15": "Devlin et al. 2019, §3.1: BERT masks 15 % of the tokens",
        "10": "Howard & Ruder 2018, §5: with 100 labels ULMFiT matches training from scratch on 10-100x more",
        "100": "Howard & Ruder 2018, §5 (as above)",
    },
    "convnets": {},
    "double_descent": {},
    "many_devices": {},
    "mnist1d_table1": {},
    "shakespeare_char": {},
    "word2vec": {},
}

_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_NOT_RESULTS = re.compile(
    r"(?:§\s*|\b(?:Table|Tables|Figure|Fig\.|Eq\.|Section|Sec\.|Appendix|Algorithm)\s+)\d+(?:\.\d+)*"
    r"|\b(?:19|20)\d\d[ab]?\b(?![.,]\d)"  # years: citations (Mikolov et al. 2013a), dates
    r"|\b\d{4}-\d\d-\d\d\b"  # ISO dates
)
# A number: 1,473 or 35.9 or 4000; not the digits of a name (a letter, or a letter and '-' or '/', before it).
_NUMBER = re.compile(
    r"(?<![\w.])(?<![A-Za-z][-/])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]\d)"
    r"|(?<![\w.,])(?<![A-Za-z][-/])\d+(?:\.\d+)?"
)
_ANY_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def prose_numbers(text: str) -> list[str]:
    """The numbers of Markdown text that state something: code, links, years and references removed."""
    text = _NOT_RESULTS.sub(" ", _LINK_TARGET.sub("]", _CODE.sub(" ", text)))
    return _NUMBER.findall(text)


def value(number: str) -> float:
    return float(number.replace(",", ""))


def output_values(notebook: nbformat.NotebookNode) -> set[float]:
    """Every number the code cells' outputs print, display or render (grouped and ungrouped readings)."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            for kind in ("text/plain", "text/markdown", "text/html", "text/latex"):
                data = output.get("data", {}).get(kind, "")
                texts.append(data if isinstance(data, str) else "".join(data))
    text = "\n".join(texts)
    return {value(n) for n in _GROUPED.findall(text)} | {value(n) for n in _ANY_NUMBER.findall(text)}


def unbacked(text: str, values: set[float], allowed: dict[str, str]) -> list[str]:
    return [n for n in prose_numbers(text) if value(n) not in values and n not in allowed]


def test_prose_numbers_skip_names_years_and_code():
    text = "ResNet-20 and word2vec (Devlin et al. 2019, §3.2, Table 1) reach 1,473 / 35.9 % with `lr=0.1`, 10x"
    assert prose_numbers(text) == ["1,473", "35.9", "10"]
    assert prose_numbers("MNIST-1D's ViT-B/16 [paper](https://x.org/2.5) saw 0.4M, 47-61 units") == [
        "0.4",
        "47",
        "61",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_number_in_the_prose_is_in_the_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    values = output_values(notebook)
    allowed = PAPER_NUMBERS.get(path.stem, {})
    missing = {
        number: cell.source.splitlines()[0][:60]
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for number in unbacked(cell.source, values, allowed)
    }
    assert not missing, f"{path.name}: numbers in Markdown that no output shows (number: cell): {missing}"


def reproduction_sections() -> dict[str, list[str]]:
    """docs/reproductions.md's table rows (less the build-time column) and notes, by the notebook each names."""
    sections: dict[str, list[str]] = {}
    table, notes = REPRODUCTIONS.read_text().split("\n|", 1)[1], ""
    if "\n## " in table:
        table, notes = table.split("\n## ", 1)
    # A row's last column is how long the notebook's full build took: a fact of the build, not of its outputs.
    rows = [line.rsplit("|", 2)[0] for line in ("|" + table).splitlines() if line.startswith("|") and "`" in line]
    bullets = re.split(r"\n- ", notes)[1:]
    names = {path.stem for path in NOTEBOOKS}
    for entry in rows + bullets:
        named = [name for name in re.findall(r"`(\w+)`", entry) if name in names]
        assert len(named) == 1, f"docs/reproductions.md: each row and note names one notebook: {entry[:80]!r}"
        sections.setdefault(named[0], []).append(entry)
    return sections


def test_every_number_in_the_reproductions_page_is_in_its_notebook():
    sections = reproduction_sections()
    assert set(sections) == {path.stem for path in NOTEBOOKS}, "a notebook has no row in docs/reproductions.md"
    missing = {}
    for name, entries in sections.items():
        values = output_values(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4))
        numbers = [n for entry in entries for n in unbacked(entry, values, PAPER_NUMBERS.get(name, {}))]
        if numbers:
            missing[name] = numbers
    assert not missing, f"docs/reproductions.md: numbers its notebook's outputs do not show: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_notebook_says_what_it_was_built_on(path):
    notebook = nbformat.read(path, as_version=4)
    record = notebook.metadata.get("jaxmodels", {}).get("provenance")
    assert record, f"{path.name}: no provenance in its metadata; rebuild it with notebooks/build.py"
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]), f"{path.name} was built from uncommitted changes"
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    printed = "".join(output.get("text", "") for output in first.outputs)
    for fact in (record["commit"], f"jax {record['packages']['jax']}", record["cpu"], record["isa"]):
        assert fact in printed, f"{path.name}: its first output does not say {fact!r}"
