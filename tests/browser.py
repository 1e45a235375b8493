"""The built site in Debian's Chromium, driven by Playwright (no downloaded browser).

`serve` serves _build/html on loopback and gzips text as GitHub Pages does, so the
bytes Chromium reports are the bytes a reader downloads. `visit` opens one page in a
fresh context (empty cache) at one width and records what a reader would meet:
console errors, failed requests, bytes transferred per resource.
"""

from __future__ import annotations

import gzip
import mimetypes
import re
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from functools import cache
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from site_ui import smallest_font_px  # noqa: F401  (re-exported for the tests)

from tests.helpers import CHAPTERS, NOTEBOOKS, ROOT, SITE

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# Phone (a 390 px wide handset) and laptop.
WIDTHS = {390: 844, 1366: 768}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What GitHub Pages serves gzip-compressed; fonts (woff2) and images are sent as is.
COMPRESSED = ("text/", "application/javascript", "application/json", "image/svg+xml")


# Words of the theme's English interface; none may reach a reader of this French book.
ENGLISH = re.compile(
    r"\b(Toggle|Search|Suggest|Open|Download|Print|Fullscreen|Source|Repository|"
    r"Show|Hide|"
    r"Skip|Back to top|Contents|Light|Dark|System|Copy|Copied|logo|Main|Edit|"
    r"issue|Previous|Next|Clear|Theme|Close)\b"
)

LABELS_JS = """() => [...document.querySelectorAll(
  '[title], [aria-label], [placeholder], [alt], [data-bs-original-title]')]
  .flatMap((el) => ['title', 'aria-label', 'placeholder', 'alt',
    'data-bs-original-title']
    .filter((a) => el.getAttribute(a))
    .map((a) => `${el.tagName.toLowerCase()} ${a}="${el.getAttribute(a)}"`))"""


def english_labels(page) -> list[str]:
    """Labels and tooltips, as the scripts left them, that are in English."""
    return [label for label in page.evaluate(LABELS_JS) if ENGLISH.search(label)]


def pages() -> list[str]:
    """Every page of the book, from the sources (the ids do not depend on a build)."""
    return [
        "index.html",
        *(f"chapters/{path.stem}.html" for path in CHAPTERS),
        *(f"notebooks/{path.stem}.html" for path in NOTEBOOKS),
        "search.html",
        "genindex.html",
    ]


def built_site() -> Path:
    """_build/html, brought up to date first: never test a stale site.

    Sphinx's incremental build rewrites only what changed since `make html` (a few
    seconds when nothing did), with the same options as the Makefile. Once a session.
    """
    failure = _build_site()
    if failure:
        raise RuntimeError(f"the site does not build:\n{failure}")
    return SITE


@cache
def _build_site() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going"]
        + [str(ROOT), str(SITE)],
        capture_output=True,
        text=True,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (.ci/install-system-packages)"
    if not AXE.is_file():
        return f"axe-core is not installed: run `make {AXE.relative_to(ROOT)}`"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is missing (requirements/test.in)"
    return None


class _Handler(SimpleHTTPRequestHandler):
    """Static files; text gzip-compressed when the browser accepts it."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        root = Path(self.directory)
        path = unquote(urlsplit(self.path).path).lstrip("/")
        target = (root / path).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or not target.is_relative_to(root):
            self.send_error(404)
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        body = target.read_bytes()
        accepted = self.headers.get("Accept-Encoding", "")
        gzipped = ctype.startswith(COMPRESSED) and "gzip" in accepted
        if gzipped:
            body = _gzip(target, target.stat().st_mtime_ns)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(body)


@cache
def _gzip(path: Path, mtime_ns: int) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)


class Server:
    """`with Server(site) as base:` serves site on a free loopback port, then stops."""

    def __init__(self, site: Path):
        self.site = site

    def __enter__(self) -> str:
        def handler(*args, **kwargs):
            return _Handler(*args, directory=str(self.site.resolve()), **kwargs)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def port_is_closed(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        return sock.connect_ex((parts.hostname, parts.port)) != 0


@dataclass
class Visit:
    """One page at one width, loaded in a fresh context."""

    url: str
    width: int
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    transferred: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.transferred.values())

    def heaviest(self, n: int = 5) -> str:
        items = sorted(self.transferred.items(), key=lambda kv: -kv[1])[:n]
        names = (f"{url.split('/')[-1]} {size / 1024:.0f} KiB" for url, size in items)
        return ", ".join(names)


def launch(playwright):
    """Debian's Chromium; Playwright gives it a fresh temporary profile."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def open_page(browser, url: str, width: int, tries: int = 3):
    """A fresh context at `width` (a touch phone below 800 px); returns (page, visit).

    Chromium aborts every request in flight when the host's network interfaces
    change (ERR_NETWORK_CHANGED, e.g. a Docker network appearing): such a load says
    nothing about the site and is redone.
    """
    for _ in range(tries - 1):
        page, visit = _open_page(browser, url, width)
        if not any("ERR_NETWORK_CHANGED" in failed for failed in visit.failed):
            return page, visit
        page.context.close()
    return _open_page(browser, url, width)


def _open_page(browser, url: str, width: int):
    phone = width < 800
    context = browser.new_context(
        viewport={"width": width, "height": WIDTHS.get(width, 800)},
        is_mobile=phone,
        has_touch=phone,
        locale="fr-FR",
    )
    page = context.new_page()
    visit = Visit(url, width)
    page.on(
        "console",
        lambda msg: visit.errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: visit.errors.append(f"uncaught: {exc}"))
    page.on(
        "requestfailed",
        lambda req: visit.failed.append(f"{req.url} ({req.failure})"),
    )

    def finished(request):
        response = request.response()
        if response is not None and response.status >= 400:
            visit.failed.append(f"{request.url} (HTTP {response.status})")
        visit.transferred[request.url] = request.sizes()["responseBodySize"]

    page.on("requestfinished", finished)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, visit


# Elements wider than the viewport, innermost first, outside scrollable containers.
OVERFLOW_JS = """() => {
  const limit = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p).overflowX;
      if ((s === 'auto' || s === 'scroll' || s === 'hidden' || s === 'clip')
          && p !== document.documentElement && p !== document.body) return true;
    }
    return false;
  };
  const name = (el) => {
    const parts = [];
    for (let e = el; e && e.nodeType === 1 && parts.length < 4; e = e.parentElement) {
      let s = e.tagName.toLowerCase();
      if (e.id) { parts.unshift(s + '#' + e.id); break; }
      if (e.classList.length) s += '.' + [...e.classList].slice(0, 2).join('.');
      parts.unshift(s);
    }
    return parts.join(' > ');
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit + 1 || scrolls(el)) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.position === 'fixed') continue;
    const inner = [...el.children]
      .some((c) => c.getBoundingClientRect().right > limit + 1);
    if (!inner) out.push(`${name(el)} (right edge at ${Math.round(r.right)} px)`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, limit, elements: out};
}"""


def overflow(page) -> dict:
    return page.evaluate(OVERFLOW_JS)


def axe(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts, one line per element."""
    page.add_script_tag(path=str(AXE))
    run = "async () => await axe.run(document, {resultTypes: ['violations']})"
    result = page.evaluate(run)
    lines = []
    for violation in result["violations"]:
        if violation["impact"] not in impacts:
            continue
        for node in violation["nodes"]:
            target = " ".join(map(str, node["target"]))
            line = f"{violation['id']} ({violation['impact']}): {target}"
            data = next((c.get("data") for c in node["any"] if c.get("data")), None)
            if isinstance(data, dict) and "contrastRatio" in data:
                line += (
                    f" ({data.get('fgColor')} on {data.get('bgColor')}, "
                    f"{data['contrastRatio']}:1)"
                )
            lines.append(line)
    return lines
