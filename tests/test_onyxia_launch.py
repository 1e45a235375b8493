"""The Onyxia launch extension, built on a tiny book with Sphinx's testing app.

Links are decoded with a transcription of the launcher's own parser
(tests/onyxia_launcher.py), so a link passes only if Onyxia reads it as meant.
"""

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import onyxia_launch
import pytest
from bs4 import BeautifulSoup
from sphinx.errors import ExtensionError, SphinxError
from sphinx.testing.util import SphinxTestApp

from tests.helpers import ROOT
from tests.onyxia_launcher import LauncherError, parse_launch_url

SITE = Path(__file__).parent / "fixtures" / "onyxia-site"
INIT = "https://raw.githubusercontent.com/example/book/v1/.onyxia/init.sh"


def build(tmp_path, **overrides):
    src = tmp_path / "src"
    shutil.copytree(SITE, src)
    app = SphinxTestApp("html", srcdir=src, confoverrides=overrides, status=None)
    try:
        app.build()
    finally:
        app.cleanup()
    return app


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build(tmp_path_factory.mktemp("onyxia"))


def page(app, name):
    html = (Path(app.outdir) / f"notebooks/{name}.html").read_text(encoding="utf-8")
    return BeautifulSoup(html, "html.parser")


def banner_link(app, name, kind="notebook"):
    selector = f'.notebook-launch a.notebook-launch-onyxia[data-notebook="{kind}"]'
    link = page(app, name).select_one(selector)
    assert link is not None
    return link["href"]


def test_default_chart_link_reads_as_meant(site):
    link = page(site, "spark").select_one("a.notebook-launch-onyxia")
    assert link.get_text() == "Ouvrir dans Onyxia"
    launch = parse_launch_url(banner_link(site, "plain", "solution"))
    assert (launch.catalog, launch.chart) == ("ide", "jupyter-python")
    # Plain route parameters: no guillemets, no version pin by default.
    assert launch.params == {"autoLaunch": "true", "name": "plain"}
    assert launch.value("init.personalInit") == INIT
    assert launch.value("init.personalInitArgs").split() == [
        "notebooks/plain.ipynb",
        "v1",
        "example/book",
    ]
    assert len(launch.helm_values) == 2


def test_a_notebook_with_a_student_copy_offers_exercises_and_solution(site):
    html = page(site, "plain")
    opened = {
        a["data-notebook"]: (a.get_text(), parse_launch_url(a["href"]))
        for a in html.select(".notebook-launch a.notebook-launch-onyxia")
    }
    assert opened.keys() == {"exercises", "solution"}
    assert opened["exercises"][0] == "Ouvrir (exercices)"
    assert opened["solution"][0] == "Ouvrir (corrigé)"
    args = {
        kind: launch.value("init.personalInitArgs").split()[0]
        for kind, (_, launch) in opened.items()
    }
    assert args == {
        "exercises": "notebooks/exercices/plain.ipynb",
        "solution": "notebooks/plain.ipynb",
    }
    outdir = Path(site.outdir) / "notebooks"
    for a in html.select(".notebook-launch a.notebook-launch-download"):
        source = SITE / args[a["data-notebook"]]
        assert (outdir / a["href"]).resolve().read_bytes() == source.read_bytes()
    # The header offers both, in one menu.
    header = [
        a["href"]
        for a in html.select(".dropdown-onyxia-launch-button a")
        if "datalab.sspcloud.fr" in a["href"]
    ]
    assert sorted(header) == sorted(
        a["href"] for a in html.select(".notebook-launch a.notebook-launch-onyxia")
    )


def test_notebook_metadata_picks_chart_and_helm_values(site):
    launch = parse_launch_url(banner_link(site, "spark"))
    assert launch.chart == "jupyter-pyspark"
    assert launch.value("kubernetes.enabled") is True
    assert launch.value("kubernetes.role") == "edit"
    assert launch.value("resources.requests.memory") == "4Gi"  # not parseFloat's 4
    assert launch.value("resources.requests.cpu") == "1000m"
    # A dot inside a key segment travels escaped and comes back as one segment.
    assert launch.helm_values[("spark", "userConfig", "spark.executor.memory")] == "2g"


def test_header_button_carries_the_same_link(site):
    html = page(site, "spark")
    href = banner_link(site, "spark")
    header = [a for a in html.find_all("a", href=True) if a["href"] == href]
    assert len(header) >= 2, "no Onyxia button in the page header"


def test_pages_not_built_from_notebooks_have_no_button(site):
    html = (Path(site.outdir) / "index.html").read_text(encoding="utf-8")
    assert "datalab.sspcloud.fr/launcher" not in html


def test_a_pinned_version_is_a_plain_parameter(tmp_path):
    app = build(tmp_path, onyxia_chart_versions={"jupyter-python": "2.5.2"})
    launch = parse_launch_url(banner_link(app, "plain", "solution"))
    assert launch.params["version"] == "2.5.2"


def config(**overrides):
    values = {
        "onyxia_url": "https://datalab.example.org/",
        "onyxia_catalog": "ide",
        "onyxia_chart": "jupyter-python",
        "onyxia_chart_versions": {},
        "onyxia_init_script": ".onyxia/init.sh",
        "onyxia_repository": "example/book",
        "onyxia_ref": "main",
    }
    return SimpleNamespace(**{**values, **overrides})


@pytest.mark.parametrize(
    "value",
    ["a b&c=d", "«x", "100%", "1.5", "true", "é/ç?#", " lead", "-"],
)
def test_string_values_survive_the_launcher(value):
    url = onyxia_launch.launch_url(config(), "nb.ipynb", {"values": {"a.b": value}})
    assert parse_launch_url(url).value("a.b") == value


@pytest.mark.parametrize("value", [True, False, None, 0, 3, 2.5, -1])
def test_literal_values_survive_the_launcher(value):
    url = onyxia_launch.launch_url(config(), "nb.ipynb", {"values": {"a.b": value}})
    assert parse_launch_url(url).value("a.b") == value


@pytest.mark.parametrize(
    ("onyxia", "message"),
    [
        ({"values": {"name": "x"}}, "not a Helm value path"),
        ({"values": {"role": "edit"}}, "not a Helm value path"),
        ({"values": {"a.b": "x»"}}, "cannot hold"),
        ({"values": {"a.b": ["x"]}}, "use a string"),
        ({"values": {"a.b": float("nan")}}, "finite"),
        ({"values": {"init.personalInit": "x"}}, "set by the book"),
        ({"chart": "x", "version": "1"}, "unknown course.onyxia keys"),
    ],
)
def test_bad_metadata_is_a_clear_error(onyxia, message):
    with pytest.raises(ExtensionError, match=message):
        onyxia_launch.launch_url(config(), "nb.ipynb", onyxia)


def test_arguments_split_on_whitespace_are_refused():
    with pytest.raises(ExtensionError, match="non-empty words"):
        onyxia_launch.launch_url(config(), "my notebook.ipynb")


def test_bad_metadata_fails_the_build_and_names_the_page(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SITE, src)
    notebook = src / "notebooks" / "spark.ipynb"
    data = json.loads(notebook.read_text())
    data["metadata"]["course"]["onyxia"]["values"]["kubernetes"] = "edit"
    notebook.write_text(json.dumps(data))
    app = SphinxTestApp("html", srcdir=src, status=None, warning=None)
    try:
        with pytest.raises(SphinxError, match=r"notebooks/spark.*kubernetes"):
            app.build()
    finally:
        app.cleanup()


def test_the_parser_transcription_rejects_what_the_launcher_rejects():
    # Sanity of the test oracle itself: the old links' faults are caught.
    with pytest.raises(LauncherError):
        parse_launch_url("https://x/launcher/ide/c?init.personalInit=plain")
    with pytest.raises(LauncherError):
        parse_launch_url("https://x/launcher/ide/c?a.b=%C2%ABx=y%C2%BB&c=d=e")
    old = parse_launch_url("https://x/launcher/ide/c?name=%C2%ABnb%C2%BB&version=2.5.2")
    assert old.params["name"] == "«nb»"


def test_conf_states_no_onyxia_default_twice():
    conf = (ROOT / "conf.py").read_text(encoding="utf-8")
    settings = [line.split("=")[0].strip() for line in conf.splitlines()]
    onyxia = {name for name in settings if name.startswith("onyxia_")}
    assert onyxia == {"onyxia_repository", "onyxia_ref"}
