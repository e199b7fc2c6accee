"""Sphinx extension: writes the generated pages into docs/_generated/ before Sphinx reads the sources.

Everything a reference page states comes from the repository when the site is built: the CLI reference from the
argument parser, the API reference from the docstrings, the model zoo from the registry, the experiments
catalogue from experiments/*.py, the notebook pages from notebooks/*.ipynb and the landing page's reproductions
from docs/reproductions.md. A new subcommand, function, model, experiment or notebook appears with no edit here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import flax.linen as nn
from api_reference import api_files
from cli_reference import cli_page
from experiments_catalogue import catalogue_page, experiment_files
from generated_tree import sync
from model_zoo import models_page
from notebook_pages import glance, notebook_files, thumbnails
from sphinx.application import Sphinx

from jaxmodels.config import load_config_file
from jaxmodels.models.registry import family_of

GENERATED = "_generated"  # under the source folder (docs/), git-ignored


def _experiments_by_family(repo: Path) -> dict[str, list[str]]:
    used_by: dict[str, list[str]] = {}
    for path in experiment_files(repo):
        used_by.setdefault(family_of(load_config_file(path).model.name), []).append(path.stem)
    return used_by


def generated_files(docs: Path) -> dict[str, str | bytes]:
    """Every generated file, by its path under docs/_generated."""
    repo = docs.parent
    notebooks = notebook_files(repo)
    return {
        **notebooks,
        **thumbnails(notebooks),
        "glance.md": glance((docs / "reproductions.md").read_text(), notebooks),
        "cli.md": cli_page(),
        "experiments.md": catalogue_page(repo),
        "models.md": models_page(repo, _experiments_by_family(repo)),
        **api_files(),
    }


def generate(app: Sphinx) -> None:
    docs = Path(app.srcdir)
    sync(docs / GENERATED, generated_files(docs))


def link_notebook_pages(app: Sphinx, docname: str, source: list[str]) -> None:
    """A guide links a notebook as the repository holds it (`../notebooks/NAME.ipynb`, right on GitHub); on the
    site that link goes to the notebook's page."""
    source[0] = source[0].replace("](../notebooks/", f"](/{GENERATED}/notebooks/")


def hide_flax_fields(app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None,
                     return_annotation: str | None) -> tuple[str | None, str | None] | None:  # fmt: skip
    """A model class's signature without the `parent` and `name` fields every Flax module has."""
    if what == "class" and signature and isinstance(obj, type) and issubclass(obj, nn.Module):
        return re.sub(r",?\s*parent\b.*\)$", ")", signature), return_annotation
    return None


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("autodoc-process-signature", hide_flax_fields)
    app.connect("builder-inited", generate)
    app.connect("source-read", link_notebook_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
