"""Sphinx configuration of the jaxmodels site: `make docs` writes it to docs/_build/html.

The guides are docs/*.md as they are; the reference pages (API, CLI, model zoo, experiments, notebooks, the
reproductions at a glance) are generated at build time from the code, the argument parser, experiments/*.py and
notebooks/*.ipynb by the `site_pages` extension (docs/_ext/), into docs/_generated/. Notebooks are rendered from
their committed full-run outputs, never executed. The site loads nothing from another host.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

project = "jaxmodels"
author = "the jaxmodels authors"
copyright = "the jaxmodels authors"

extensions = ["myst_nb", "sphinx.ext.autodoc", "site_pages"]
exclude_patterns = ["_build", "_generated/glance.md"]  # glance.md is part of the landing page (an include)
suppress_warnings = ["myst.header"]  # guides start at `##` under their title: no warning for the jump in levels

# Notebooks: their committed outputs (a full run) are the content; nothing is executed at build time.
nb_execution_mode = "off"
nb_merge_streams = True  # the lines a cell printed stay one block
nb_ipywidgets_js = {}  # no widget outputs: no require.js from a CDN
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3  # guides link to their sections as `#heading-text`
smartquotes = False  # `--flag` and 'quotes' stay as typed: commands are copied from these pages

# The docstrings write code as `name` (Markdown habit): show it as code.
default_role = "code"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "sphinx_book_theme"
html_title = "jaxmodels"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "use_download_button": True,
}
html_context = {"default_mode": "light"}  # a mode must be set, or the theme logs "Got invalid theme mode"
html_show_sourcelink = False
html_show_search_summary = False  # the summaries are fetched pages, which a browser refuses for a file:// folder

# `-n` checks every cross-reference; types of other packages (flax, jax, numpy, the standard library) cannot be
# resolved offline (no intersphinx inventories), so only jaxmodels' own names are held to it.
nitpick_ignore_regex = [(r"py:.*", r"(?!jaxmodels\b).*")]
