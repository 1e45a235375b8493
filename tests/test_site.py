"""Checks on the site built by `make html` (brought up to date first: never stale)."""

import json
import re
import subprocess
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from bs4 import BeautifulSoup

from tests.browser import ENGLISH, built_site, pages
from tests.helpers import CHAPTERS, NOTEBOOKS, ROOT, SITE
from tests.onyxia_launcher import parse_launch_url

LAUNCHER = "https://datalab.sspcloud.fr/launcher/ide/"


@pytest.fixture(autouse=True, scope="module")
def _fresh_site():
    built_site()


def page(relative):
    path = SITE / relative
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: build the site with `make html` before the tests"
        )
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_page_has_onyxia_and_download_buttons(notebook):
    html = page(f"notebooks/{notebook.stem}.html")
    # A notebook with a student copy offers it and the solution; others, themselves.
    student = notebook.parent / "exercices" / notebook.name
    expected = {"notebook": (notebook, "Ouvrir dans Onyxia")}
    if student.is_file():
        expected = {
            "exercises": (student, "Ouvrir (exercices)"),
            "solution": (notebook, "Ouvrir (corrigé)"),
        }
    links = html.select(".notebook-launch a.notebook-launch-onyxia")
    assert {a["data-notebook"]: a.get_text() for a in links} == {
        kind: text for kind, (_, text) in expected.items()
    }
    course = nbformat.read(notebook, as_version=4).metadata.get("course", {})
    wanted = course.get("onyxia", {})
    for link in links:
        # Decoded the way Onyxia's launcher decodes it (tests/onyxia_launcher.py).
        assert link["href"].startswith(LAUNCHER)
        launch = parse_launch_url(link["href"])
        assert launch.chart == wanted.get("chart", "jupyter-python")
        # Plain parameters, no pin: conf.py says why (the catalogue keeps the newest).
        assert launch.params == {"autoLaunch": "true", "name": notebook.stem}
        init_url = urlsplit(launch.value("init.personalInit"))
        assert init_url.netloc == "raw.githubusercontent.com"
        assert init_url.path.endswith("/.onyxia/init.sh")
        assert (ROOT / ".onyxia" / "init.sh").is_file()
        # onyxia-init.sh splits the arguments on whitespace.
        notebook_arg, ref, repository = launch.value("init.personalInitArgs").split()
        source = expected[link["data-notebook"]][0]
        assert notebook_arg == source.relative_to(ROOT).as_posix()
        assert init_url.path == f"/{repository}/{ref}/.onyxia/init.sh"
        for key, value in wanted.get("values", {}).items():
            assert launch.value(key) == value, key
        same = [a for a in html.find_all("a", href=True) if a["href"] == link["href"]]
        assert len(same) >= 2, "no Onyxia button in the page header"

    downloads = html.select(".notebook-launch a.notebook-launch-download")
    assert {a["data-notebook"] for a in downloads} == set(expected)
    for download in downloads:
        target = (SITE / "notebooks" / download["href"]).resolve()
        source = expected[download["data-notebook"]][0]
        assert target.suffix == ".ipynb" and target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_page_renders_stored_outputs(notebook):
    html = page(f"notebooks/{notebook.stem}.html")
    assert html.select(".cell_output"), (
        "no rendered cell output: were the outputs stored?"
    )


def test_chapter_pages_have_no_launch_banner():
    for chapter in CHAPTERS:
        assert (
            page(f"chapters/{chapter.stem}.html").select_one(".notebook-launch") is None
        )


def test_home_page_maps_every_chapter_and_the_six_sessions():
    html = page("index.html")
    links = {a["href"] for a in html.select("article a[href]")}
    for chapter in CHAPTERS:
        assert f"chapters/{chapter.stem}.html" in links, (
            f"index.md does not link {chapter.name}"
        )
    table_text = html.select_one("table.course-map").get_text(" ")
    for session in ("1 à 3", "4 —", "5 —", "6 —", "3 et 6"):
        assert session in table_text


def test_diagrams_are_rendered_at_build_time():
    rendered = 0
    for html_file in SITE.rglob("*.html"):
        for diagram in page(html_file.relative_to(SITE)).select(
            "object.graphviz, img.graphviz"
        ):
            svg = (
                html_file.parent / (diagram.get("data") or diagram.get("src"))
            ).resolve()
            assert "<svg" in svg.read_text(encoding="utf-8"), (
                f"{html_file}: {svg} is not an SVG"
            )
            rendered += 1
    sources = "".join(
        p.read_text(encoding="utf-8") for p in [ROOT / "index.md", *CHAPTERS]
    )
    assert rendered == sources.count("{graphviz}") >= 4


def test_pages_link_nothing_outside_the_site_for_images():
    for html_file in SITE.rglob("*.html"):
        for img in BeautifulSoup(
            html_file.read_text(encoding="utf-8"), "html.parser"
        ).find_all("img"):
            assert not img["src"].startswith(("http://", "https://")), (
                f"{html_file}: {img['src']}"
            )


def _built_pages():
    skipped = {"_static", "_sources"}
    return [p for p in SITE.rglob("*.html") if not skipped & set(p.parts)]


def test_internal_links_and_anchors_resolve():
    """Every link inside the site reaches a file, and its #anchor an id on that page."""
    ids = {}
    broken = []
    for html_file in _built_pages():
        soup = page(html_file.relative_to(SITE))
        for tag in soup.select("a[href], link[href], img[src], script[src]"):
            url = tag.get("href") or tag.get("src")
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:
                continue
            target = html_file
            if parts.path:
                target = (html_file.parent / unquote(parts.path)).resolve()
            if not target.is_file():
                broken.append(f"{html_file.relative_to(SITE)}: {url} (no such file)")
                continue
            if parts.fragment and target.suffix == ".html":
                if target not in ids:
                    anchors = page(target.relative_to(SITE)).select("[id]")
                    ids[target] = {tag["id"] for tag in anchors}
                if unquote(parts.fragment) not in ids[target]:
                    broken.append(f"{html_file.relative_to(SITE)}: {url} (no anchor)")
    assert not broken, "\n".join(broken)


def test_every_page_says_when_and_from_which_commit_it_was_built():
    git = ["git", "rev-parse", "HEAD"]
    head = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=True)
    head = head.stdout.strip()
    for relative in pages():
        provenance = page(relative).select_one("footer .provenance")
        assert provenance is not None, f"{relative}: no provenance in the footer"
        assert provenance.select_one("time[datetime]") is not None, relative
        assert head[:12] in provenance.get_text(), f"{relative}: not built from {head}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_pages_give_the_versions_recorded_in_the_notebook(notebook):
    metadata = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]
    footer = page(f"notebooks/{notebook.stem}.html").select_one(".provenance")
    text = footer.get_text(" ")
    recorded = metadata.get("provenance", {})
    python = recorded.get("python") or metadata["language_info"]["version"]
    assert f"Python {python}" in text
    for name, version in recorded.get("packages", {}).items():
        assert f"{name}\xa0{version}" in text, f"{name} {version} missing from the page"
    if not recorded.get("packages"):
        assert "versions des paquets non enregistrées" in text


def test_images_have_a_text_alternative_that_is_not_a_file_name():
    for relative in pages():
        for img in page(relative).find_all("img"):
            alt = img.get("alt")
            assert alt is not None, f"{relative}: {img['src']} has no alt attribute"
            file_name = r"^\S+\.(png|svg|jpe?g|gif)$|_images/|jupyter_execute"
            assert not re.search(file_name, alt), f"{relative}: alt={alt!r}"
            if "graphviz" in img.get("class", []):
                assert alt.startswith("Schéma") or len(alt) > 20, relative


def test_every_label_and_tooltip_is_french():
    for relative in pages():
        soup = page(relative)
        attributes = ("title", "aria-label", "placeholder", "alt", "data-tooltip")
        for tag in soup.select(", ".join(f"[{name}]" for name in attributes)):
            for attribute in attributes:
                value = tag.get(attribute)
                if value and ENGLISH.search(value):
                    pytest.fail(f"{relative}: {tag.name} {attribute}={value!r}")
        for control in soup.select("button, a.btn, .prev-next-area a, kbd"):
            text = control.get_text(" ", strip=True)
            assert not ENGLISH.search(text), f"{relative}: {control.name} says {text!r}"


def test_external_links_are_checked_by_a_scheduled_workflow():
    import yaml

    links = ROOT / ".github" / "workflows" / "links.yml"
    workflow = yaml.safe_load(links.read_text())
    triggers = workflow[True]  # YAML reads the key `on` as True
    assert triggers["schedule"][0]["cron"]
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(step.get("run") == "make linkcheck" for step in steps)
    makefile = (ROOT / "Makefile").read_text()
    assert "-b linkcheck" in makefile


def test_every_extension_module_is_packaged():
    import tomllib

    config = tomllib.loads((ROOT / "_ext" / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["py-modules"])
    assert listed == {path.stem for path in (ROOT / "_ext").glob("*.py")}
