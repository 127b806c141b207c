"""The rendered book as a reader sees it: every page in headless Chromium, offline.

The book is served from 127.0.0.1 (as a web host would serve it) and the browser may
reach nothing else: every request to another host is aborted and recorded, so a page
that needs a CDN (MathJax, widget managers, fonts, badges) fails here, naming the URL.
Each page must typeset its math, load every image and audio clip, and log no console
errors. A full-page screenshot of every chapter is kept under
``_build/screenshots/<stem>.png`` (a CI artifact; overwritten on each run).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import yaml
from conftest import ROOT, LocalServer

import book

SCREENSHOTS = ROOT / "_build" / "screenshots"
#: Sphinx's own pages besides the table of contents (``index`` only redirects).
EXTRA_PAGES = ("genindex", "search")
#: Longest wait for one page, its math, images and audio (ms).
TIMEOUT_MS = 30_000


def toc_pages() -> list[str]:
    """Page names (``book/intro``, ``notebooks/01_data_simulation``…) of ``_toc.yml``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for part in toc["parts"] for entry in part["chapters"]]


PAGES = toc_pages() + list(EXTRA_PAGES)
#: Pages kept as screenshots: the notebook chapters.
CHAPTER_PAGES = {notebook.with_suffix("").as_posix() for notebook in book.chapters()}

#: Math in Markdown source: ``$…$``, ``$$…$$``, ``\begin{…}`` or a ``{math}`` directive.
MATH_SOURCE = re.compile(r"\$[^$\n]+\$|\$\$|\\begin\{|\{math\}")
#: Code in Markdown (fenced blocks, inline spans), whose dollars are not math.
MARKDOWN_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def source_has_math(page: str) -> bool:
    """Whether the Markdown of ``page`` (a ``.md`` file or a notebook's Markdown cells)
    holds math that the rendered page must typeset."""
    source = ROOT / f"{page}.md"
    if source.exists():
        text = source.read_text()
    elif (ROOT / f"{page}.ipynb").exists():
        cells = nbformat.read(ROOT / f"{page}.ipynb", as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    else:
        return False
    return bool(MATH_SOURCE.search(MARKDOWN_CODE.sub("", text)))


# What a page looks like once loaded: run in the page after the load event. Waits for
# MathJax's first typesetting pass, then for every image and audio clip (lazy ones made
# eager), and returns JSON-able facts the test asserts on.
INSPECT_PAGE = r"""
async () => {
  const mathjax = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (mathjax) await mathjax;
  const images = await Promise.all([...document.images].map(async (img) => {
    img.loading = "eager";
    try { await img.decode(); } catch (e) {}
    return {src: img.currentSrc || img.src, width: img.naturalWidth};
  }));
  const audios = await Promise.all([...document.querySelectorAll("audio")].map((a) =>
    new Promise((resolve) => {
      const report = () => resolve({
        src: (a.currentSrc || a.src || "").slice(0, 80),
        ready: a.readyState, error: a.error ? a.error.code : null, duration: a.duration,
      });
      if (a.readyState >= 1 || a.error) return report();
      a.addEventListener("loadedmetadata", report, {once: true});
      a.addEventListener("error", report, {once: true, capture: true});
      a.preload = "metadata";
      a.load();
    })));
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => n.parentElement.closest("pre, code, script, style, mjx-container")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.data.match(/\\\(|\\\[|\$\$/);
    if (m) raw.push(n.data.slice(Math.max(0, m.index - 30), m.index + 50).trim());
  }
  const math = [...document.querySelectorAll(".math")];
  return {
    typeset: document.querySelectorAll("mjx-container").length,
    untypeset: math.filter((el) => !el.querySelector("mjx-container"))
      .map((el) => el.textContent.trim().slice(0, 80)),
    raw_tex: raw.slice(0, 5),
    images: images,
    audios: audios,
  };
}
"""


@pytest.fixture(scope="module")
def book_server(book_build):
    """The rendered book served on 127.0.0.1; yields its base URL."""
    if not book_build["html"]:
        pytest.fail("the book was not rendered (a chapter failed)")
    server = LocalServer(book_build["html"])
    yield server.url
    server.close()


@pytest.fixture(scope="module")
def offline_context(browser, book_server):
    """A browser context that reaches only the book's server.

    Yields ``(context, attempts)``: ``attempts`` collects the URLs of requests to any
    other host, which are aborted as if the machine were offline.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    attempts: list[str] = []
    local = urlsplit(book_server).netloc

    def route(route):
        url = route.request.url
        if urlsplit(url).netloc == local:
            route.continue_()
        else:
            attempts.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    yield context, attempts
    context.close()


@pytest.mark.html
@pytest.mark.parametrize("page_name", PAGES)
def test_page_reads_offline(offline_context, book_server, page_name):
    """The page loads from the book's server alone, typesets its math, shows every
    image and audio clip and logs no errors; chapters leave a screenshot."""
    context, attempts = offline_context
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    # The console names no URL for a failed load; the response does.
    page.on(
        "response",
        lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
    )
    attempts.clear()
    try:
        response = page.goto(f"{book_server}/{page_name}.html", wait_until="load")
        assert response is not None and response.ok, f"{page_name}.html: {response}"
        page.wait_for_load_state("networkidle")  # widgets and fonts load after `load`
        facts = page.evaluate(INSPECT_PAGE)
        if page_name in CHAPTER_PAGES:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{Path(page_name).name}.png", full_page=True)
    finally:
        page.close()

    problems = []
    if attempts:
        problems.append(f"requested remote URLs (offline they fail): {attempts}")
    if source_has_math(page_name) and facts["typeset"] == 0:
        problems.append("the source has math, but nothing was typeset")
    if facts["untypeset"]:
        problems.append(f"math left as TeX: {facts['untypeset']}")
    if facts["raw_tex"]:
        problems.append(f"raw TeX delimiters in the text: {facts['raw_tex']}")
    broken = [img["src"][:120] for img in facts["images"] if img["width"] == 0]
    if broken:
        problems.append(f"images that did not load: {broken}")
    silent = [a for a in facts["audios"] if a["error"] is not None or not a["duration"] > 0]
    if silent:
        problems.append(f"audio that did not load: {silent}")
    if errors:
        problems.append(f"console errors: {errors}")
    assert not problems, f"{page_name}.html, as a reader sees it offline:\n" + "\n".join(problems)


@pytest.mark.html
def test_index_redirects_to_the_first_page(offline_context, book_server):
    """``index.html`` (what a host serves for the bare URL) opens the book's root page."""
    context, attempts = offline_context
    page = context.new_page()
    attempts.clear()
    try:
        page.goto(f"{book_server}/index.html")
        page.wait_for_url(f"{book_server}/{PAGES[0]}.html")
    finally:
        page.close()
    assert not attempts, f"index.html requested remote URLs: {attempts}"
