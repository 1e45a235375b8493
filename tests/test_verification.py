"""Appendix "Comment ce livre est vérifié": the checks that keep the other checks honest.

- one version per tool: versions.toml, the CI scripts, the compose file, the notebooks and
  the book's table agree;
- nbval's blind spots: near-miss markers, figures nobody compares, sanitizers that hide
  more than volatile values, test counts that could silently shrink;
- French typography: an apostrophe before inline markup stays an apostrophe.
"""

import configparser
import json
import re
import tomllib

import nbformat
import pytest

from coursekit.versions import official_image, tool_version, versions
from tests.helpers import NOTEBOOKS, ROOT

TEXT_FILES = [
    *ROOT.glob("chapters/*.md"),
    *ROOT.glob("notebooks/*.md"),
    *ROOT.glob("examples/**/*.yaml"),
    *ROOT.glob("examples/**/*.yml"),
    *ROOT.glob("examples/**/Dockerfile*"),
    *ROOT.glob("examples/**/README.md"),
    *ROOT.glob(".ci/*"),
    *ROOT.glob(".github/workflows/*.yml"),
    ROOT / "README.md",
    ROOT / "index.md",
]

# --- One version per tool -------------------------------------------------------------


def test_versions_file_is_complete():
    for name, tool in versions().items():
        assert {"name", "version", "source"} <= set(tool), name
        assert re.fullmatch(r"\d+(\.\d+)*", tool["version"]), (name, tool["version"])
        if "image" in tool:
            tag = tool["image"].rsplit(":", 1)[1].lstrip("v")
            assert tag.split("-")[0] == tool["version"], name


@pytest.mark.parametrize("tool", ["prometheus", "alertmanager"])
def test_every_reference_to_an_official_image_uses_its_version(tool):
    repository = official_image(tool).rsplit(":", 1)[0]
    found = 0
    for path in TEXT_FILES:
        for tag in re.findall(
            rf"{re.escape(repository)}:(v?[\w.-]+)", path.read_text()
        ):
            found += 1
            assert f"{repository}:{tag}" == official_image(tool), (
                f"{path.relative_to(ROOT)} uses {repository}:{tag}; versions.toml says "
                f"{official_image(tool)}"
            )
    assert found, f"{repository} is referenced nowhere"


def test_compose_defaults_are_the_versions_file_images():
    compose = (ROOT / "examples/docker/compose.yaml").read_text()
    for tool in ("prometheus", "alertmanager"):
        assert f"IMAGE:-{official_image(tool)}}}" in compose


def test_ci_installs_the_versions_of_the_versions_file():
    install = (ROOT / ".ci/install-system-packages").read_text()
    setup = (ROOT / ".ci/setup-docker").read_text()
    trixie = (ROOT / ".ci/trixie-tools").read_text()
    run = (ROOT / ".ci/run").read_text()
    # bookworm's packages are older than versions.toml: they must not be installed
    assert not re.search(r"apt-get install[^\n]*(\\\n[^\n]*)*\bprometheus\b", install)
    assert 'trixie-tools" observability' in install
    apt_packages = re.search(r"^for pkg in (.*); do$", setup, re.M).group(1).split()
    assert "docker.io" not in apt_packages and "runc" in apt_packages
    assert "want docker-engine" in setup and "trixie-tools" in setup
    for tool in ("prometheus", "alertmanager", "docker-engine", "containerd"):
        assert f"version_of {tool})" in trixie, tool
    for tool in ("compose", "buildx"):
        assert f"version_of {tool})" in trixie, tool
    assert "version prometheus" in run and "version alertmanager" in run


def test_local_images_default_to_the_versions_file():
    for tool, arg in (
        ("prometheus", "PROMETHEUS_VERSION"),
        ("alertmanager", "ALERTMANAGER_VERSION"),
    ):
        dockerfile = (ROOT / f"examples/docker/local/Dockerfile.{tool}").read_text()
        assert f"ARG {arg}={tool_version(tool)}\n" in dockerfile


def test_notebooks_read_versions_instead_of_writing_them():
    for path in ROOT.glob("notebooks/*.md"):
        text = path.read_text()
        for tool in ("prometheus", "alertmanager"):
            assert not re.search(rf"{tool}:v\d", text), f"{path.name} hard-codes {tool}"


def test_observability_notebook_ran_the_versions_of_the_versions_file():
    notebook = nbformat.read(ROOT / "notebooks/observabilite.ipynb", as_version=4)
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    versions_shown = dict(
        re.findall(r"^(prometheus|alertmanager) (\S+)$", printed, re.M)
    )
    assert versions_shown, "the notebook no longer prints the versions it ran"
    for tool, shown in versions_shown.items():
        assert shown.split("+")[0] == tool_version(tool), (
            f"notebooks/observabilite.ipynb ran {tool} {shown}, versions.toml says "
            f"{tool_version(tool)}: install it (.ci/trixie-tools) and re-execute"
        )


def test_the_book_has_one_generated_table_of_versions():
    import tool_versions

    assert tool_versions.load_versions(ROOT) == versions()
    pages = [
        p for p in ROOT.glob("chapters/*.md") if "{tool-versions}" in p.read_text()
    ]
    assert [p.name for p in pages] == ["verification.md"]


# --- nbval's blind spots -----------------------------------------------------------------

MARKERS = {
    "NBVAL_IGNORE_OUTPUT",
    "NBVAL_SKIP",
    "NBVAL_RAISES_EXCEPTION",
    "NBVAL_CHECK_OUTPUT",
}
TAGS = {"nbval-ignore-output", "nbval-skip", "raises-exception", "nbval-check-output"}


def _code_cells():
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{path.name}, cell {index}", cell


def near_miss_markers(source: str) -> list[str]:
    """Comment lines that look like an nbval marker but that nbval does not recognise:
    nbval only takes a comment whose whole text is the marker."""
    found = []
    for line in source.splitlines():
        stripped = line.strip()
        looks_like_marker = re.search(
            r"nbval[\s_-]*(ignore|skip|raises|check)", line, re.I
        )
        if not stripped.startswith("#") or not looks_like_marker:
            continue
        if stripped.lstrip("#").strip() not in MARKERS:
            found.append(stripped)
    return found


def test_near_miss_detector_flags_what_nbval_ignores():
    assert near_miss_markers("# NBVAL_IGNORE_OUTPUT\nx = 1") == []
    assert near_miss_markers("# NBVAL_IGNORE_OUTPUT: sizes vary") == [
        "# NBVAL_IGNORE_OUTPUT: sizes vary"
    ]
    assert near_miss_markers("#nbval_ignore_output") == ["#nbval_ignore_output"]
    assert near_miss_markers("# NBVAL_IGNORE_OUTPUTS") == ["# NBVAL_IGNORE_OUTPUTS"]


def test_no_notebook_has_a_near_miss_marker():
    problems = []
    for where, cell in _code_cells():
        problems += [f"{where}: {line}" for line in near_miss_markers(cell.source)]
        tags = cell.metadata.get("tags", [])
        problems += [
            f"{where}: tag {t}" for t in tags if "nbval" in t and t not in TAGS
        ]
    assert not problems, "nbval would not recognise these markers:\n" + "\n".join(
        problems
    )


def test_every_figure_is_checked_by_an_assert_on_its_data():
    unchecked = []
    for where, cell in _code_cells():
        draws = any(
            {"image/png", "image/svg+xml"} & set(output.get("data", {}))
            for output in cell.outputs
        ) or re.search(r"\bplt\.show\(|\.plot\(|savefig\(", cell.source)
        if draws and not re.search(r"^\s*assert\b", cell.source, re.M):
            unchecked.append(where)
    assert not unchecked, (
        f"figures that nbval does not compare and nothing checks: {unchecked}"
    )


def _sanitizers():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tests/nbval_sanitize.cfg")
    return {name: re.compile(parser[name]["regex"]) for name in parser.sections()}


@pytest.mark.parametrize("timing", ["5.2 s", "0.35 s", "12.5 ms", "679.0 µs", "1,9 s"])
def test_durations_sanitizer_hides_measured_timings(timing):
    assert _sanitizers()["durations"].search(timing)


@pytest.mark.parametrize(
    "setting",
    [
        "executorIdleTimeout 30s",
        "--interval=5s",
        "for: 30s",
        "scrape_interval: 1s",
        "3 s",
    ],
)
def test_durations_sanitizer_leaves_configuration_values_alone(setting):
    assert not _sanitizers()["durations"].search(setting)


def test_masked_test_counts_are_asserted_in_the_same_cell():
    counts = _sanitizers()["test_counts"]
    for where, cell in _code_cells():
        text = "".join(output.get("text", "") for output in cell.outputs)
        if counts.search(text):
            assert re.search(r"passed >= \d+", cell.source), (
                f"{where} prints a test count that nbval masks: assert a minimum"
            )


def test_sanitizers_only_mask_what_they_name():
    # A sanitizer that matches plain words or whole lines would hide real changes.
    for name, regex in _sanitizers().items():
        for ordinary in (
            "résultats identiques",
            "AUC POC : 0.800",
            "healthy",
            "200 OK",
        ):
            assert not regex.search(ordinary), (name, ordinary)


# --- Numbers stable across machines ------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_print_auc_to_three_decimals(path):
    # The 4th decimal of an AUC depends on the machine's linear-algebra library.
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        printed = json.dumps(cell.outputs)
        assert not re.search(r"AUC[^\"]{0,40}?\b0\.\d{4}", printed), cell.source[:200]


# --- French typography ---------------------------------------------------------------


def test_apostrophe_before_inline_markup_is_an_apostrophe():
    from docutils.core import publish_string
    from french_quotes import FRENCH_QUOTES

    html = publish_string(
        "enregistré auprès d'``atexit`` et l'**exécution**, « cité »",
        writer="html5",
        settings_overrides={
            "language_code": "fr",
            "smart_quotes": True,
            "smartquotes_locales": [("fr", FRENCH_QUOTES)],
            "output_encoding": "unicode",
        },
    )
    assert "d’<span" in html or "d’<code" in html
    assert "l’<strong>" in html
    assert "”" not in html


def test_sources_use_straight_apostrophes():
    # The build renders them; curly ones typed by hand made two styles coexist.
    for path in [
        *ROOT.glob("chapters/*.md"),
        *ROOT.glob("notebooks/*.md"),
        ROOT / "index.md",
    ]:
        assert "’" not in path.read_text(), path.name


def test_versions_toml_parses_with_the_standard_library():
    assert tomllib.loads((ROOT / "versions.toml").read_text()) == versions()
