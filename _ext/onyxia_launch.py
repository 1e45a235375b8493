"""Sphinx extension: "Ouvrir dans Onyxia" and download buttons on notebook pages.

sphinx-book-theme knows Binder, JupyterHub and Colab but not Onyxia. This adds, on
every page built from a notebook:

- a header button and a banner under the title that open the notebook on the SSP
  Cloud datalab through its launcher (``/launcher/ide/<chart>?...``);
- a banner link to download the ``.ipynb``.

The launcher starts the ``onyxia_chart`` service at the pinned
``onyxia_chart_version`` and runs ``onyxia_init_script`` (fetched raw from the
repository) with three arguments: the notebook path, the git ref and the repository.
The launcher expects string values wrapped in « ».
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import quote

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.osutil import relative_uri

RAW_URL = "https://raw.githubusercontent.com/{repository}/{ref}/{path}"


def _quoted(value: str) -> str:
    return "«" + quote(value, safe="") + "»"


def launch_url(config, notebook: str) -> str:
    """Launcher URL that opens ``notebook`` (path relative to the repository root)."""
    init_script = RAW_URL.format(
        repository=config.onyxia_repository, ref=config.onyxia_ref, path=config.onyxia_init_script
    )
    params = [
        ("autoLaunch", "true"),
        ("name", _quoted(PurePosixPath(notebook).stem)),
        ("version", _quoted(config.onyxia_chart_version)),
        ("init.personalInit", _quoted(init_script)),
        (
            "init.personalInitArgs",
            _quoted(f"{notebook} {config.onyxia_ref} {config.onyxia_repository}"),
        ),
    ]
    query = "&".join(f"{key}={value}" for key, value in params)
    return f"{config.onyxia_url.rstrip('/')}/launcher/ide/{config.onyxia_chart}?{query}"


def _notebook_source(app: Sphinx, docname: str) -> str | None:
    source = PurePosixPath(app.env.doc2path(docname, base=False).as_posix())
    return str(source) if source.suffix == ".ipynb" else None


def add_banner(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    notebook = _notebook_source(app, docname)
    if notebook is None or app.builder.format != "html":
        return
    page = app.builder.get_target_uri(docname)
    download = relative_uri(page, f"_sources/{notebook}")
    html = (
        '<div class="notebook-launch">'
        f'<a class="notebook-launch-onyxia" href="{launch_url(app.config, notebook)}" '
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
            "url": launch_url(app.config, notebook),
            "tooltip": "Ouvrir dans Onyxia (SSP Cloud)",
            "icon": "_static/onyxia.svg",
            "label": "onyxia-launch-button",
        },
    )


def setup(app: Sphinx) -> dict:
    app.add_config_value("onyxia_url", "https://datalab.sspcloud.fr", "html")
    app.add_config_value("onyxia_chart", "jupyter-python", "html")
    app.add_config_value("onyxia_chart_version", "", "html")
    app.add_config_value("onyxia_init_script", ".onyxia/init.sh", "html")
    app.add_config_value("onyxia_repository", "", "html")
    app.add_config_value("onyxia_ref", "main", "html")
    app.connect("doctree-resolved", add_banner)
    # After sphinx-book-theme has prepared its header buttons (priority 501).
    app.connect("html-page-context", add_header_button, priority=502)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
