"""Checks on the site built by `make html` (make test builds it first)."""

from urllib.parse import urlsplit

import nbformat
import pytest
from bs4 import BeautifulSoup

from tests.helpers import CHAPTERS, NOTEBOOKS, ROOT, SITE
from tests.onyxia_launcher import parse_launch_url

LAUNCHER = "https://datalab.sspcloud.fr/launcher/ide/"


def page(relative):
    path = SITE / relative
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the site with `make html` before the tests")
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
    assert html.select(".cell_output"), "no rendered cell output: were the outputs stored?"


def test_chapter_pages_have_no_launch_banner():
    for chapter in CHAPTERS:
        assert page(f"chapters/{chapter.stem}.html").select_one(".notebook-launch") is None


def test_home_page_maps_every_chapter_and_the_six_sessions():
    html = page("index.html")
    links = {a["href"] for a in html.select("article a[href]")}
    for chapter in CHAPTERS:
        assert f"chapters/{chapter.stem}.html" in links, f"index.md does not link {chapter.name}"
    table_text = html.select_one("table.course-map").get_text(" ")
    for session in ("1 à 3", "4 —", "5 —", "6 —", "3 et 6"):
        assert session in table_text


def test_diagrams_are_rendered_at_build_time():
    rendered = 0
    for html_file in SITE.rglob("*.html"):
        for diagram in page(html_file.relative_to(SITE)).select("object.graphviz, img.graphviz"):
            svg = (html_file.parent / (diagram.get("data") or diagram.get("src"))).resolve()
            assert "<svg" in svg.read_text(encoding="utf-8"), f"{html_file}: {svg} is not an SVG"
            rendered += 1
    sources = "".join(p.read_text(encoding="utf-8") for p in [ROOT / "index.md", *CHAPTERS])
    assert rendered == sources.count("{graphviz}") >= 4


def test_pages_link_nothing_outside_the_site_for_images():
    for html_file in SITE.rglob("*.html"):
        for img in BeautifulSoup(html_file.read_text(encoding="utf-8"), "html.parser").find_all(
            "img"
        ):
            assert not img["src"].startswith(("http://", "https://")), f"{html_file}: {img['src']}"
