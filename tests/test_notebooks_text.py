"""The language notebooks (character-level Shakespeare, word2vec, BERT) run top to bottom in fast mode and assert
their ranges; tests/test_notebooks.py checks every notebook's committed twin and runs the others."""

from __future__ import annotations

import pytest

from tests.test_notebooks import TEXT, run_in_fast_mode


@pytest.mark.parametrize("source", TEXT, ids=lambda path: path.stem)
def test_the_text_notebook_runs_in_fast_mode(source, data_dir, monkeypatch):
    run_in_fast_mode(source, data_dir, monkeypatch)
