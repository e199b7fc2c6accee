"""Checks a built documentation site in a real browser: the functions tests/test_docs_site.py runs on the site
and, to show they catch each fault, on damaged copies of it.

`serve` puts a folder on http://127.0.0.1 (as `python -m http.server` would), `launch` starts headless Chromium
(the Debian package, through Playwright: no browser download), `crawl` opens pages and records what a reader's
browser did (status, console errors, requests to other hosts, which it aborts, ids, links, images), and the
`*_problems` functions turn those records into one readable line per fault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HOST = "127.0.0.1"
TIMEOUT_MS = 90_000  # for one page to load or search: generous, since test workers share a busy CPU
CHROMIUM_MISSING = (
    "the docs browser test needs Chromium: run `sudo apt-get install -y --no-install-recommends chromium` "
    "(`make test` installs it when run as root)"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# What a page holds, read in the browser once it has loaded.
_READ_PAGE = """() => ({
  ids: [...document.querySelectorAll('[id]')].map(e => e.id)
        .concat([...document.querySelectorAll('a[name]')].map(e => e.name)),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  text: document.body.innerText,
  images: [...document.querySelectorAll('img')].map(img => {
    const box = img.getBoundingClientRect();
    return {src: img.currentSrc || img.src, naturalWidth: img.naturalWidth, width: box.width, height: box.height,
            output: img.closest('.cell_output') !== null};
  }),
})"""


@dataclasses.dataclass
class Image:
    src: str
    natural_width: int
    width: float
    height: float
    output: bool  # a notebook cell's output

    @property
    def shown(self) -> bool:
        """Decoded (the browser could read the file as an image) and laid out (it takes space on the page)."""
        return self.natural_width > 0 and self.width > 0 and self.height > 0


@dataclasses.dataclass
class PageReport:
    path: str  # relative to the site's root, e.g. "_generated/cli.html"
    status: int
    console_errors: list[str]
    foreign_requests: list[str]
    ids: set[str]
    links: list[str]  # absolute URLs
    images: list[Image]
    text: str  # as the reader sees it

    @property
    def output_images(self) -> list[Image]:
        return [image for image in self.images if image.output]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serves `folder` on 127.0.0.1 from a thread; yields its base URL (ending in /)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def launch(playwright: Any) -> Any:
    """Headless Chromium from the system package (`chromium` on PATH)."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError(CHROMIUM_MISSING)
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)


def pages_of(folder: Path) -> list[str]:
    """Every HTML page of a built site, relative to its root."""
    pages = (path.relative_to(folder).as_posix() for path in folder.rglob("*.html"))
    return sorted(page for page in pages if not page.startswith(("_static/", "_sources/")))  # the theme's own files


def crawl(browser: Any, base_url: str, paths: list[str]) -> dict[str, PageReport]:
    """Opens each of `paths` (relative to `base_url`: http://127.0.0.1:PORT/ or a folder's file:// URL) in turn, in
    one browser context whose requests to any other host are aborted, and records what happened on each page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    foreign: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlsplit(url).hostname == HOST or url.startswith("file:"):  # the site served, or opened as a folder
            request_route.continue_()
        else:
            foreign.append(url)
            request_route.abort()

    context.route("**/*", route)
    reports = {}
    try:
        for path in paths:
            foreign.clear()
            reports[path] = _visit(context, base_url, path, foreign)
    finally:
        context.close()
    return reports


def visit(browser: Any, base_url: str, path: str) -> PageReport:
    """`crawl` of one page."""
    return crawl(browser, base_url, [path])[path]


def _visit(context: Any, base_url: str, path: str, foreign: list[str]) -> PageReport:
    console_errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    try:
        response = page.goto(base_url + path, wait_until="load")
        page.wait_for_load_state("networkidle")  # requests a script makes after the load event count too
        found = page.evaluate(_READ_PAGE)
    finally:
        page.close()
    images = [Image(i["src"], i["naturalWidth"], i["width"], i["height"], i["output"]) for i in found["images"]]
    status = response.status if response is not None else 0
    ids = set(found["ids"])
    return PageReport(path, status, console_errors, list(foreign), ids, found["links"], images, found["text"])


def search(browser: Any, base_url: str, query: str) -> tuple[list[str], list[str]]:
    """The result links of the site's search page for `query`, and the console errors it logged meanwhile."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    try:
        page.goto(f"{base_url}search.html?q={query}")
        page.wait_for_selector("#search-results li a")
        page.wait_for_load_state("networkidle")
        hits = page.locator("#search-results li a").evaluate_all("links => links.map(a => a.href)")
    finally:
        context.close()
    return hits, console_errors


def page_problems(report: PageReport) -> list[str]:
    """A status of 400 or above, console errors, requests to other hosts, images the browser could not decode."""
    problems = [f"{report.path}: HTTP status {report.status}"] if report.status >= 400 else []
    problems += [f"{report.path}: console error: {error}" for error in report.console_errors]
    problems += [f"{report.path}: requested another host: {url}" for url in report.foreign_requests]
    problems += [f"{report.path}: image not decoded: {image.src}" for image in report.images if not image.natural_width]
    return problems


def output_image_problems(report: PageReport, expected: int) -> list[str]:
    """A notebook page must show exactly `expected` output images (its PNG outputs), each decoded and laid out."""
    images = report.output_images
    problems = (
        [f"{report.path}: {len(images)} output images, the notebook has {expected}"] if len(images) != expected else []
    )
    return problems + [f"{report.path}: output image not shown: {image.src}" for image in images if not image.shown]


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.ids |= {value for key in ("id", "name") if (value := values.get(key)) and (key == "id" or tag == "a")}


def _ids_in_file(path: Path) -> set[str]:
    parser = _Ids()
    parser.feed(path.read_text(errors="replace"))
    return parser.ids


def link_problems(reports: list[PageReport], folder: Path, base_url: str) -> list[str]:
    """Every link of the reported pages into the site must reach a file of `folder`, and its #anchor an id of the
    page it points to (as the browser saw it if that page was visited, else as the file has it)."""
    ids = {report.path: report.ids for report in reports}
    problems = []
    for report in reports:
        for link in report.links:
            if not link.startswith(base_url):
                continue  # another site: a reader's click, never a request of the page
            parts = urlsplit(link)
            target = unquote(parts.path.removeprefix(urlsplit(base_url).path)) or "index.html"
            target = f"{target}index.html" if target.endswith("/") else target
            if not (folder / target).is_file():
                problems.append(f"{report.path}: dead link {link}")
            elif parts.fragment and target.endswith(".html"):
                if target not in ids:
                    ids[target] = _ids_in_file(folder / target)
                if unquote(parts.fragment) not in ids[target]:
                    problems.append(f"{report.path}: link {link}: no #{unquote(parts.fragment)} in {target}")
    return sorted(set(problems))
