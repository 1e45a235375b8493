"""The built site in a real browser (Debian's Chromium), as a reader meets it.

Every page at phone (390 px) and laptop (1366 px) width, in a fresh context each
time: no console error, no failed request, nothing wider than the screen, the
navigation opens and closes, at most 1 MB transferred (gzip, as GitHub Pages
serves it), diagrams and figures legible, notebook buttons well formed, and no
serious or critical axe-core violation. A failure names the page, the width and the
elements, and leaves a screenshot in _build/browser-failures/.
"""

from __future__ import annotations

import contextlib
import json
import re
from urllib.parse import quote

import pytest

from coursekit.policy import require_tools, unavailable
from tests import browser as site
from tests.helpers import SITE

pytestmark = pytest.mark.site

MAX_BYTES = 1_000_000
LEGIBLE_PX = 9
FAILURES = SITE.parent / "browser-failures"
ONYXIA = "https://datalab.sspcloud.fr/launcher/ide/"


@pytest.fixture(scope="module")
def base_url():
    require_tools("chromium", why="browser tests of the site")
    missing = site.chromium_missing()
    if missing:
        unavailable(missing)
    with site.Server(site.built_site()) as url:
        yield url
    assert site.port_is_closed(url), "the site server is still listening"


@pytest.fixture(scope="module")
def chromium(base_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = site.launch(playwright)
        yield browser
        browser.close()


def _fail(page, path, width, problems):
    FAILURES.mkdir(parents=True, exist_ok=True)
    shot = FAILURES / f"{path.replace('/', '_').removesuffix('.html')}-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    lines = "\n".join(f"  - {problem}" for problem in problems)
    pytest.fail(f"{path} at {width} px:\n{lines}\nscreenshot: {shot}", pytrace=False)


def _visible(page, selector) -> bool:
    locator = page.locator(selector)
    return locator.count() > 0 and locator.first.is_visible()


def check_navigation(page, width) -> list[str]:
    """The article header's toggles open and close the sidebars."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    problems = []
    toggle = ".bd-header-article .primary-toggle"
    if not _visible(page, toggle):
        return [f"{toggle}: the chapter list button is not visible"]
    if width < 992:
        for side, selector in (
            ("primary", toggle),
            ("secondary", ".bd-header-article .secondary-toggle"),
        ):
            if side == "secondary" and not _visible(page, selector):
                continue
            dialog_id = f"pst-{side}-sidebar-modal"
            dialog = page.locator(f"#{dialog_id}")
            for close in ("Escape", "backdrop"):
                page.click(selector)
                try:
                    page.wait_for_function(
                        f"() => document.getElementById('{dialog_id}').open",
                        timeout=3000,
                    )
                except Exception:
                    problems.append(f"{selector}: a tap does not open the sidebar")
                    break
                links = dialog.locator("a[href]")
                if not (links.count() and links.first.is_visible()):
                    problems.append(f"#{dialog_id}: opened without links")
                if close == "Escape":
                    page.keyboard.press("Escape")
                else:  # a tap on the shaded backdrop, beside the drawer
                    box = dialog.bounding_box()
                    x = box["x"] + box["width"] + 5 if side == "primary" else 5
                    page.mouse.click(min(x, width - 5), 400)
                with contextlib.suppress(PlaywrightTimeout):  # reported just below
                    page.wait_for_function(
                        f"() => !document.getElementById('{dialog_id}').open",
                        timeout=3000,
                    )
                if dialog.evaluate("d => d.open"):
                    problems.append(f"#{dialog_id}: {close} leaves it open")
                    page.keyboard.press("Escape")
    else:
        sidebar = page.locator("#pst-primary-sidebar")
        if not sidebar.is_visible():
            problems.append("#pst-primary-sidebar: hidden on first load")

        def shown() -> bool:
            box = sidebar.bounding_box() if sidebar.is_visible() else None
            return bool(box and box["width"] > 50)

        for expected in (False, True):
            page.click(toggle)
            # the theme animates the sidebar: a busy machine needs more than 400 ms
            for _ in range(30):
                page.wait_for_timeout(100)
                if shown() == expected:
                    break
            if page.locator("#pst-primary-sidebar-modal").evaluate("d => d.open"):
                problems.append(f"{toggle}: opens a dialog, does not collapse")
                page.keyboard.press("Escape")
            if shown() != expected:
                state = "shown" if expected else "collapsed"
                problems.append(f"{toggle}: a click leaves the sidebar not {state}")
    return problems


def check_legibility(page) -> list[str]:
    """Diagram and figure text is at least LEGIBLE_PX as displayed."""
    problems = []
    for image in page.locator("img.graphviz, img.notebook-figure").all():
        image.scroll_into_view_if_needed()
        image.evaluate("i => i.complete || new Promise((ok) => i.onload = ok)")
        info = image.evaluate(
            "i => ({src: i.getAttribute('src'), natural: i.naturalWidth,"
            " shown: i.getBoundingClientRect().width,"
            " link: i.closest('a') ? i.closest('a').getAttribute('href') : null})"
        )
        if not info["natural"]:
            problems.append(f"{info['src']}: not loaded")
            continue
        scale = info["shown"] / info["natural"]
        if "graphviz" in info["src"]:
            svg = SITE / "_images" / info["src"].split("/")[-1]
            smallest = site.smallest_font_px(svg)
        else:  # matplotlib's 10 pt text in a 100 dpi PNG
            smallest = 10 * 100 / 72
        if smallest * scale < LEGIBLE_PX - 0.05:
            problems.append(
                f"{info['src']}: smallest text {smallest * scale:.1f} px as shown "
                f"(scaled to {scale:.0%})"
            )
        if info["link"] != info["src"]:
            problems.append(f"{info['src']}: no link to open it alone ({info['link']})")
    return problems


def check_notebook_buttons(page, path) -> list[str]:
    """Launch links open the Onyxia launcher; download links give this notebook."""
    problems = []
    launch = page.locator(f'.notebook-launch a[href^="{ONYXIA}"]').all()
    if not launch or not all(link.is_visible() for link in launch):
        return [".notebook-launch: no visible link to the Onyxia launcher"]
    hrefs = {link.get_attribute("href") for link in launch}
    manual = [href for href in hrefs if "autoLaunch=true" not in href]
    problems += [f".notebook-launch: {href} does not auto-launch" for href in manual]
    header = page.locator(f'.article-header-buttons a[href^="{ONYXIA}"]').all()
    if not header:
        problems.append(".article-header-buttons: no Onyxia button")
    for button in header:
        name = button.get_attribute("aria-label") or button.inner_text()
        if button.get_attribute("href") not in hrefs:
            problems.append(f"header Onyxia button {name!r}: not a link of the banner")
        if not name.strip() or site.ENGLISH.search(name):
            problems.append(f"header Onyxia button: no French name ({name!r})")
    downloads = page.locator(".notebook-launch a[download]").all()
    if not downloads:
        problems.append(".notebook-launch: no download link")
    stem = path.rsplit("/", 1)[-1].removesuffix(".html")
    for link in downloads:
        url = link.evaluate("a => a.href")
        response = page.request.get(url)
        if not response.ok or not url.endswith(f"/{stem}.ipynb"):
            problems.append(f"download {url}: HTTP {response.status}")
        elif "cells" not in json.loads(response.body()):
            problems.append(f"download {url}: not a notebook")
    return problems


@pytest.mark.parametrize("width", sorted(site.WIDTHS))
@pytest.mark.parametrize("path", site.pages())
def test_page_in_chromium(chromium, base_url, path, width):
    page, visit = site.open_page(chromium, base_url + path, width)
    try:
        seen = len(visit.errors)
        problems = [f"console: {error}" for error in visit.errors]
        problems += [f"failed request: {failed}" for failed in visit.failed]
        if visit.total > MAX_BYTES:
            problems.append(
                f"{visit.total / 1e6:.2f} MB transferred on first load (max 1 MB); "
                f"heaviest: {visit.heaviest()}"
            )
        icon = page.locator("link[rel=icon]")
        if not icon.count():
            problems.append("no favicon (link rel=icon)")
        wide = site.overflow(page)
        if wide["scrollWidth"] > wide["limit"]:
            problems.append(
                f"page is {wide['scrollWidth']} px wide for {wide['limit']} px: "
                + "; ".join(wide["elements"][:5])
            )
        problems += [f"English label: {label}" for label in site.english_labels(page)]
        problems += check_legibility(page)
        if path.startswith("notebooks/"):
            problems += check_notebook_buttons(page, path)
        # axe measures colours: not mid-scroll, and not before the theme's script has
        # resolved data-theme="auto" to light or dark (the code colours depend on it).
        page.evaluate("window.scrollTo({top: 0, left: 0, behavior: 'instant'})")
        page.wait_for_function(
            "() => window.scrollY === 0 && "
            "['light', 'dark'].includes(document.documentElement.dataset.theme)"
        )
        problems += [f"axe: {line}" for line in site.axe(page)]
        problems += check_navigation(page, width)
        problems += [f"console, later: {error}" for error in visit.errors[seen:]]
        if problems:
            _fail(page, path, width, problems)
    finally:
        page.context.close()


SEARCHED = ["journalisation", "conteneur", "Prometheus", "Kubernetes"]


@pytest.mark.parametrize("word", SEARCHED)
def test_search_finds_the_word_in_page_text(chromium, base_url, word):
    url = f"{base_url}search.html?q={quote(word)}"
    page, visit = site.open_page(chromium, url, 1366)
    try:
        page.wait_for_selector("#search-results ul.search li", timeout=15000)
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results p.context').length > 0",
            timeout=15000,
        )
        excerpts = page.locator("#search-results p.context").all_inner_texts()
        problems = [f"console: {error}" for error in visit.errors]
        stem = word.lower()[:6]
        if not any(stem in excerpt.lower() for excerpt in excerpts):
            problems.append(f"no excerpt shows the word: {excerpts[:3]}")
        chrome = re.compile(r"Télécharger cette page|Plein écran|Sur cette page")
        polluted = [excerpt for excerpt in excerpts if chrome.search(excerpt)]
        if polluted:
            problems.append(f"excerpts show the theme's labels: {polluted[:2]}")
        if problems:
            _fail(page, f"search-{word}", 1366, problems)
    finally:
        page.context.close()
