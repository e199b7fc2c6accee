"""The documentation site: it builds with warnings as errors, and every page works in a real browser (headless
Chromium) served from 127.0.0.1 with nothing fetched from another host: no console error, every internal link and
anchor resolves, every notebook shows all its plots, the references list every public name and subcommand, and
search works. What to expect is read from the sources (the notebooks, `jaxmodels.__all__`, the argument parser).
Damaged copies of the site show that the checks catch a broken plot, a dead link, a missing anchor, a request to
another host and a console error. Screenshots for a reader land in docs/_build/screenshots/.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docutils.nodes import make_id

import jaxmodels
from jaxmodels.cli import _parser
from tests.site_checker import (
    CHROMIUM_MISSING,
    PageReport,
    crawl,
    launch,
    link_problems,
    output_image_problems,
    page_problems,
    pages_of,
    search,
    serve,
    visit,
)

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "docs" / "_build" / "screenshots"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
API_PAGE = "_generated/api/jaxmodels.html"
CLI_PAGE = "_generated/cli.html"
MODELS_PAGE = "_generated/models.html"
EXPERIMENTS_PAGE = "_generated/experiments.html"


def notebook_page(notebook: Path) -> str:
    return f"_generated/notebooks/{notebook.stem}.html"


def png_outputs(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    outputs = [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]]
    return sum("image/png" in output.get("data", {}) for output in outputs)


def subcommands() -> dict[str, Any]:
    """The subcommands `jaxmodels --help` lists, name -> parser, from the argument parser itself."""
    (action,) = [action for action in _parser()._actions if action.__class__.__name__ == "_SubParsersAction"]
    return dict(action.choices)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:
    """`make docs`' build (warnings as errors, broken references included), once per test session."""
    out = tmp_path_factory.mktemp("docs")
    command = [sys.executable, "-m", "sphinx", "-n", "-W", "-q", "-b", "html", "-d", str(out / "doctrees")]
    result = subprocess.run([*command, str(REPO / "docs"), str(out / "html")], capture_output=True, text=True)
    result.site = out / "html"
    return result


@pytest.fixture(scope="module")
def site(build: subprocess.CompletedProcess) -> Path:
    assert build.returncode == 0, build.stderr
    return build.site


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which("chromium") is None:
        pytest.fail(CHROMIUM_MISSING)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def reports(browser: Any, base_url: str, site: Path) -> dict[str, PageReport]:
    """Every page of the site, opened once in the browser."""
    return crawl(browser, base_url, pages_of(site))


def test_the_site_builds_with_warnings_as_errors(build):
    assert build.returncode == 0, build.stderr
    assert "WARNING" not in build.stdout + build.stderr


def test_the_site_has_every_page(site):
    pages = set(pages_of(site))
    guides = {f"{path.stem}.html" for path in (REPO / "docs").glob("*.md")}
    assert {"index.html", "getting_started.html", "search.html", API_PAGE, CLI_PAGE} <= pages
    assert guides <= pages
    assert {notebook_page(notebook) for notebook in NOTEBOOKS} <= pages


def test_every_page_loads_from_127_0_0_1_alone_without_errors(reports):
    assert len(reports) > 20
    assert [problem for report in reports.values() for problem in page_problems(report)] == []


def test_every_internal_link_and_anchor_resolves(reports, site, base_url):
    assert sum(len(report.links) for report in reports.values()) > 1000
    assert link_problems(list(reports.values()), site, base_url) == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_page_shows_each_plot_of_the_notebook(reports, notebook):
    expected = png_outputs(notebook)
    assert expected > 0
    assert output_image_problems(reports[notebook_page(notebook)], expected) == []


def test_the_landing_page_shows_a_plot_of_each_notebook_linking_to_it(reports, base_url):
    landing = reports["index.html"]
    assert len([image for image in landing.images if image.shown]) == sum(png_outputs(nb) > 0 for nb in NOTEBOOKS)
    assert {base_url + notebook_page(notebook) for notebook in NOTEBOOKS} <= set(landing.links)


def test_the_api_reference_lists_every_public_name(reports):
    assert {f"jaxmodels.{name}" for name in jaxmodels.__all__} <= reports[API_PAGE].ids


def registered_models() -> dict[str, str]:
    """Model name -> family, as jaxmodels registers them in a fresh process (as the docs build sees them): test
    modules may register models of their own in this one."""
    code = (
        "import json; from jaxmodels.models.registry import available_models, family_of; "
        "print(json.dumps({name: family_of(name) for name in available_models()}))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(found.stdout)


def test_the_model_zoo_lists_every_model_and_the_experiments_catalogue_every_experiment(reports):
    models, experiments = reports[MODELS_PAGE], reports[EXPERIMENTS_PAGE]
    registered = registered_models()
    assert {"gpt2_small", "bert_base_mlm", "resnet50", "mnist1d_cnn"} <= set(registered)
    assert {make_id(f"model-{family}") for family in registered.values()} <= models.ids  # as docutils writes it
    assert [name for name in registered if name not in models.text.split()] == []
    assert {make_id(f"experiment-{path.stem}") for path in (REPO / "experiments").glob("*.py")} <= experiments.ids


def test_the_cli_reference_lists_every_subcommand_and_its_flags(browser, base_url, reports):
    assert {make_id(f"cli-{name}") for name in subcommands()} <= reports[CLI_PAGE].ids
    context = browser.new_context()
    page = context.new_page()
    page.goto(base_url + CLI_PAGE)
    for name, command in subcommands().items():
        anchor = make_id(f"cli-{name}")
        section = page.locator(f"section#{anchor}, section:has(> #{anchor})").first.inner_text()
        flags = [flag for action in command._actions for flag in action.option_strings]
        assert flags and [flag for flag in flags if flag not in section] == [], name
    context.close()


def test_search_works_offline(browser, base_url):
    hits, console_errors = search(browser, base_url, "checkpoint")
    assert any(hit.startswith(base_url + "checkpoints.html") for hit in hits)
    assert console_errors == []


def test_the_site_works_from_a_plain_folder(browser, site):
    folder = site.as_uri() + "/"
    pages = ["index.html", notebook_page(NOTEBOOKS[0]), API_PAGE]
    reports = crawl(browser, folder, pages)
    assert [problem for report in reports.values() for problem in page_problems(report)] == []
    assert link_problems(list(reports.values()), site, folder) == []
    assert output_image_problems(reports[pages[1]], png_outputs(NOTEBOOKS[0])) == []
    hits, console_errors = search(browser, folder, "checkpoint")
    assert any(hit.startswith(folder + "checkpoints.html") for hit in hits)
    assert console_errors == []


def test_screenshots_for_a_reader(browser, base_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shots = {"landing": "index.html", "notebook": notebook_page(NOTEBOOKS[0]), "api": API_PAGE}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    for name, path in shots.items():
        page.goto(base_url + path, wait_until="networkidle")
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=name != "api")
    context.close()
    assert all((SCREENSHOTS / f"{name}.png").stat().st_size > 10_000 for name in shots)


# ------------------------------------------------------------------------ the checks catch a damaged site


@pytest.fixture
def damaged(site, tmp_path) -> Path:
    """A copy of the built site, for a test to damage."""
    return Path(shutil.copytree(site, tmp_path / "html"))


def _insert_into_body(page: Path, html: str) -> None:
    page.write_text(re.sub(r"(<body[^>]*>)", lambda body: f"{body.group(1)}<p>{html}</p>", page.read_text(), count=1))


def test_a_damaged_plot_is_reported(browser, damaged, reports):
    notebook = NOTEBOOKS[0]
    path = notebook_page(notebook)
    image = reports[path].output_images[0].src.split("/_images/")[1]
    (damaged / "_images" / image).write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 100)
    with serve(damaged) as url:
        report = visit(browser, url, path)
    problems = output_image_problems(report, png_outputs(notebook))
    assert problems == [f"{path}: output image not shown: {url}_images/{image}"]
    assert f"{path}: image not decoded: {url}_images/{image}" in page_problems(report)


def test_a_dead_link_is_reported(browser, damaged):
    _insert_into_body(damaged / "index.html", '<a href="_generated/no_such_page.html">a page that is gone</a>')
    with serve(damaged) as url:
        problems = link_problems([visit(browser, url, "index.html")], damaged, url)
    assert problems == [f"index.html: dead link {url}_generated/no_such_page.html"]


def test_a_missing_anchor_is_reported(browser, damaged):
    anchor = make_id(f"cli-{next(iter(subcommands()))}")
    cli = damaged / CLI_PAGE
    cli.write_text(cli.read_text().replace(f'id="{anchor}"', 'id="renamed"'))
    with serve(damaged) as url:
        problems = link_problems([visit(browser, url, CLI_PAGE)], damaged, url)
    assert f"{CLI_PAGE}: link {url}{CLI_PAGE}#{anchor}: no #{anchor} in {CLI_PAGE}" in problems


def test_a_request_to_another_host_and_a_console_error_are_reported(browser, damaged):
    _insert_into_body(damaged / "index.html", '<img src="https://cdn.example.com/font.png" alt="">')
    _insert_into_body(damaged / "search.html", "<script>console.error('damaged on purpose')</script>")
    with serve(damaged) as url:
        landing, search = visit(browser, url, "index.html"), visit(browser, url, "search.html")
    assert "index.html: requested another host: https://cdn.example.com/font.png" in page_problems(landing)
    assert "search.html: console error: damaged on purpose" in page_problems(search)
