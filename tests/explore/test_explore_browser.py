"""The explorer site in a real headless browser (Debian's chromium driven by Playwright), opened from disk.

Every page loads with no console errors and no network request, its charts are drawn, links resolve, the language
search filters the table and headers sort it. Screenshots go to $PYTEST_ARTIFACTS (or a temporary folder).
"""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas.explore import build_site
from neuron_atlas.explore.gather import gather_model

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium, or set CHROMIUM)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    path = Path(os.environ["PYTEST_ARTIFACTS"]) / "explore" if os.environ.get("PYTEST_ARTIFACTS") else \
        tmp_path_factory.mktemp("explore-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def site(toy_atlas, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_site(toy_atlas, out)
    return out


class Page:
    """A browser tab that records console errors, page errors and any request leaving the local disk."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.problems.append(f"console {m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.problems.append(f"network request: {url}")
            route.abort()

    def open(self, path: Path):
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")
        return self.page

    def close(self):
        self.context.close()


CHECK_PAGE = """() => {
  const out = {charts: [], links: [], images: []};
  for (const svg of document.querySelectorAll('svg.chart')) {
    if (svg.closest('[hidden]')) continue;
    const box = svg.getBoundingClientRect();
    out.charts.push({id: svg.id || svg.getAttribute('aria-label'), w: box.width, h: box.height,
                     shapes: svg.querySelectorAll('rect, image, text, path, line, circle').length});
  }
  for (const el of document.querySelectorAll('[href], [src]')) {
    out.links.push(el.getAttribute('href') || el.getAttribute('src'));
  }
  for (const img of document.querySelectorAll('svg image')) out.images.push(img.getAttribute('href'));
  return out;
}"""

IMAGE_SIZE = """(src) => new Promise(done => { const img = new Image(); img.onload = () => done([img.naturalWidth,
  img.naturalHeight]); img.onerror = () => done([0, 0]); img.src = src; })"""


def _check(tab: Page, path: Path, site: Path) -> dict:
    page = tab.open(path)
    found = page.evaluate(CHECK_PAGE)
    for chart in found["charts"]:
        assert chart["w"] > 50 and chart["h"] > 20 and chart["shapes"] >= 3, f"{path}: blank chart {chart}"
    for src in found["images"]:
        w, h = page.evaluate(IMAGE_SIZE, src)
        assert w > 0 and h > 0, f"{path}: an image that does not decode"
    for link in found["links"]:
        if link.startswith("data:"):
            continue
        assert not link.startswith(("http:", "https:", "//")), f"{path} links out: {link}"
        target, _, fragment = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.is_file() and site.resolve() in file.parents, f"{path}: broken link {link}"
        if fragment:
            assert f'id="{fragment}"' in file.read_text(), f"{path}: no #{fragment} in {file}"
    assert not tab.problems, f"{path}: {tab.problems}"
    return found


def test_every_page_loads_cleanly_with_drawn_charts_and_resolving_links(browser, site, artifacts):
    tab = Page(browser)
    try:
        pages = sorted(site.rglob("*.html"))
        assert len(pages) == 1 + (1 + 9) + (1 + 5)
        for path in pages:
            found = _check(tab, path, site)
            if "/lang/" in path.as_posix() or path.parent.name == "toy":
                assert found["charts"], f"{path}: no chart"
        for name, path in [("index", site / "index.html"), ("model", site / "models/toy/index.html"),
                           ("language", site / "models/toy/lang/tgl_Latn.html")]:
            tab.open(path).screenshot(path=str(artifacts / f"toy-{name}.png"), full_page=True)
            assert (artifacts / f"toy-{name}.png").stat().st_size > 10_000
    finally:
        tab.close()


def test_search_filters_the_language_table_and_headers_sort_it(browser, site):
    tab = Page(browser)
    try:
        page = tab.open(site / "models/toy/index.html")
        rows = page.locator("#lang-table tbody tr")
        assert rows.count() == 9 and page.locator("[data-count-for=lang-table]").inner_text() == "9 of 9 languages"
        page.fill("#lang-search", "serbian")
        visible = page.locator("#lang-table tbody tr:not([hidden]) td:nth-child(2)").all_inner_texts()
        assert sorted(visible) == ["srp_Cyrl", "srp_Latn"]
        assert page.locator("[data-count-for=lang-table]").inner_text() == "2 of 9 languages"
        page.fill("#lang-search", "malay latin")  # every word must match: Malay is the family of ind and zlm
        assert sorted(page.locator("#lang-table tbody tr:not([hidden]) td:nth-child(2)").all_inner_texts()) == [
            "ind_Latn", "zlm_Latn"]
        page.fill("#lang-search", "filipino")  # another name of Tagalog, as the API resolves it
        assert page.locator("#lang-table tbody tr:not([hidden]) td:nth-child(2)").all_inner_texts() == ["tgl_Latn"]
        page.fill("#lang-search", "")
        assert page.locator("#lang-table tbody tr:not([hidden])").count() == 9

        page.click("#lang-table thead th:nth-child(2)")
        tags = page.locator("#lang-table tbody td:nth-child(2)").all_inner_texts()
        assert tags == sorted(tags)
        page.click("#lang-table thead th:nth-child(2)")
        assert page.locator("#lang-table tbody td:nth-child(2)").all_inner_texts() == sorted(tags, reverse=True)
        page.focus("#lang-table thead th:nth-child(7)")  # a numeric column (the default set sizes), by keyboard
        page.keyboard.press("Enter")
        sizes = [int(x) for x in page.locator("#lang-table tbody td:nth-child(7)").all_inner_texts()]
        assert sizes == sorted(sizes)
        assert not tab.problems
    finally:
        tab.close()


def _hover_cell(page, chart: str, row: int, col: int) -> str:
    """Move the mouse to the centre of cell (row, col) of a raster chart and return the tooltip's text."""
    svg = page.locator(chart)
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    x0, y0, cw, ch = (float(svg.get_attribute(a)) for a in ("data-x0", "data-y0", "data-cw", "data-ch"))
    page.mouse.move(box["x"] + x0 + (col + 0.5) * cw, box["y"] + y0 + (row + 0.5) * ch)
    tip = page.locator("#tip")
    assert tip.is_visible()
    return tip.inner_text()


def test_tooltips_show_the_charted_values_and_the_set_switch_works(browser, site, toy_atlas):
    data = gather_model(na.open(toy_atlas), "toy")
    grouped, cluster = data.grouped_order(), data.cluster_order
    tab = Page(browser)
    try:
        page = tab.open(site / "models/toy/index.html")
        visible = page.locator("#layer-charts [data-variant]:not([hidden])")
        assert visible.count() == 1 and visible.get_attribute("data-variant") == "lape-500"
        page.select_option("#layers select", "lape-top1")
        assert page.locator("#layer-charts [data-variant]:not([hidden])").get_attribute("data-variant") == "lape-top1"
        counts = data.variant("lape-top1").counts
        for row, layer in [(0, 0), (3, 2), (8, 3)]:
            lang = grouped[row]
            want = f"({data.tags[lang]}) · layer {layer}: {counts[lang, layer]} neurons"
            assert want in _hover_cell(page, "#heat-lape-top1", row, layer)
        for row, col in [(0, 1), (4, 7), (8, 8)]:
            i, j = cluster[row], cluster[col]
            text = _hover_cell(page, "#sim-full", row, col)
            shown = np.rint(data.jaccard[i, j] * 10000) / 10000  # the page stores 1/10000ths
            assert f"({data.tags[i]}) · " in text and f"({data.tags[j]}): {shown:.3f} Jaccard" in text
        assert not tab.problems
    finally:
        tab.close()


def test_the_embedded_atlas_site_in_the_browser(browser, tmp_path, artifacts):
    """A real model: 462 languages, 30 layers (the smaller of the two embedded models, to stay fast)."""
    report = build_site(None, tmp_path, models=["smollm2-135m"])
    assert report.written == 1 + 1 + 462
    tab = Page(browser)
    try:
        for path in [tmp_path / "index.html", tmp_path / "models/smollm2-135m/index.html",
                     *(tmp_path / "models/smollm2-135m/lang" / f"{t}.html" for t in ("tgl_Latn", "cmn_Hans", "arb_Arab"))]:
            _check(tab, path, tmp_path)
        page = tab.open(tmp_path / "models/smollm2-135m/index.html")
        page.fill("#lang-search", "quechua")
        shown = page.locator("#lang-table tbody tr:not([hidden])").count()
        assert 5 < shown < 40
        page.fill("#lang-search", "")
        page.locator("#similarity").screenshot(path=str(artifacts / "smollm2-similarity.png"))
        tab.open(tmp_path / "models/smollm2-135m/lang/tgl_Latn.html").screenshot(
            path=str(artifacts / "smollm2-tgl_Latn.png"), full_page=True)
        assert not tab.problems
    finally:
        tab.close()
