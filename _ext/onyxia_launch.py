"""Sphinx extension: "Ouvrir dans Onyxia" and download buttons on notebook pages.

sphinx-book-theme knows Binder, JupyterHub and Colab but not Onyxia. This adds, on
every page built from a notebook:

- a header button and a banner under the title that open the notebook on the SSP
  Cloud datalab through its launcher (``/launcher/ide/<chart>?...``);
- a banner link to download the ``.ipynb``.

The launcher starts the ``onyxia_chart`` service (or the chart a notebook asks for in
its metadata, ``course.onyxia_chart``, e.g. ``jupyter-pyspark``) at the version pinned
in ``onyxia_chart_versions``, and runs ``onyxia_init_script`` (fetched raw from the
repository) with three arguments: the notebook path, the git ref and the repository.
The launcher expects string values wrapped in « ».
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.osutil import relative_uri

RAW_URL = "https://raw.githubusercontent.com/{repository}/{ref}/{path}"


def _quoted(value: str) -> str:
    return "«" + quote(value, safe="") + "»"


def launch_url(config, notebook: str, chart: str | None = None) -> str:
    """Launcher URL that opens ``notebook`` (path relative to the repository root)."""
    chart = chart or config.onyxia_chart
    version = config.onyxia_chart_versions.get(chart)
    if not version:
        raise ExtensionError(f"{notebook}: no pinned version for the Onyxia chart {chart!r}")
    init_script = RAW_URL.format(
        repository=config.onyxia_repository, ref=config.onyxia_ref, path=config.onyxia_init_script
    )
    params = [
        ("autoLaunch", "true"),
        ("name", _quoted(PurePosixPath(notebook).stem)),
        ("version", _quoted(version)),
        ("init.personalInit", _quoted(init_script)),
        (
            "init.personalInitArgs",
            _quoted(f"{notebook} {config.onyxia_ref} {config.onyxia_repository}"),
        ),
    ]
    query = "&".join(f"{key}={value}" for key, value in params)
    return f"{config.onyxia_url.rstrip('/')}/launcher/ide/{chart}?{query}"


def _notebook_source(app: Sphinx, docname: str) -> str | None:
    source = PurePosixPath(app.env.doc2path(docname, base=False).as_posix())
    return str(source) if source.suffix == ".ipynb" else None


def _chart(app: Sphinx, docname: str) -> str | None:
    """The chart a notebook asks for in its metadata (course.onyxia_chart), if any."""
    notebook = json.loads(Path(app.env.doc2path(docname)).read_text(encoding="utf-8"))
    return notebook.get("metadata", {}).get("course", {}).get("onyxia_chart")


def add_banner(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    notebook = _notebook_source(app, docname)
    if notebook is None or app.builder.format != "html":
        return
    chart = _chart(app, docname)
    page = app.builder.get_target_uri(docname)
    download = relative_uri(page, f"_sources/{notebook}")
    html = (
        '<div class="notebook-launch">'
        f'<a class="notebook-launch-onyxia" href="{launch_url(app.config, notebook, chart)}" '
        'target="_blank" rel="noopener">Ouvrir dans Onyxia</a>'
        f'<a class="notebook-launch-download" href="{download}" download>'
        "Télécharger le notebook (.ipynb)</a>"
        "</div>"
    )
    banner = nodes.raw("", html, format="html")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, banner)
    else:
        doctree.insert(0, banner)


def add_header_button(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if doctree is None or "header_buttons" not in context:
        return
    notebook = _notebook_source(app, pagename)
    if notebook is None:
        return
    context["header_buttons"].insert(
        0,
        {
            "type": "link",
            "url": launch_url(app.config, notebook, _chart(app, pagename)),
            "tooltip": "Ouvrir dans Onyxia (SSP Cloud)",
            "icon": "_static/onyxia.svg",
            "label": "onyxia-launch-button",
        },
    )


def setup(app: Sphinx) -> dict:
    app.add_config_value("onyxia_url", "https://datalab.sspcloud.fr", "html")
    app.add_config_value("onyxia_chart", "jupyter-python", "html")
    app.add_config_value("onyxia_chart_versions", {}, "html")
    app.add_config_value("onyxia_init_script", ".onyxia/init.sh", "html")
    app.add_config_value("onyxia_repository", "", "html")
    app.add_config_value("onyxia_ref", "main", "html")
    app.connect("doctree-resolved", add_banner)
    # After sphinx-book-theme has prepared its header buttons (priority 501).
    app.connect("html-page-context", add_header_button, priority=502)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
