"""Sphinx extension: "Ouvrir dans Onyxia" and download buttons on notebook pages.

sphinx-book-theme knows Binder, JupyterHub and Colab but not Onyxia. On every page
built from a notebook this adds a header button and a banner under the title that
open the notebook on the SSP Cloud datalab through its launcher
(``/launcher/<catalogue>/<chart>?...``), and a banner link to download the ``.ipynb``.

The link follows the launcher's own parser (``InseeFrLab/onyxia``,
``web/src/ui/pages/launcher/route.ts``): keys without a dot (``name``, ``version``,
``autoLaunch``, ``shared``, ``s3``) are plain, URL-encoded route parameters; keys with
a dot are Helm values, written ``true``/``false``/``null``, a number, or a string
wrapped in « » (URL-encoded inside). The service runs ``onyxia_init_script`` (raw file
of the repository) with three arguments, split on whitespace by the image's
``onyxia-init.sh``: the notebook path, the git ref and the repository.

A notebook chooses its chart and adds Helm values in its metadata::

    course:
      onyxia:
        chart: jupyter-pyspark
        values: {kubernetes.enabled: true, kubernetes.role: edit}

The metadata is read from Sphinx's environment (MyST-NB stores the notebook's
metadata there as the page's front matter), not from the ``.ipynb`` again.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.osutil import relative_uri

RAW_URL = "https://raw.githubusercontent.com/{repository}/{ref}/{path}"
# Route parameters of the launcher (route.ts); every other key must hold a dot.
PLAIN_KEYS = {"name", "version", "autoLaunch", "shared", "s3"}
# Helm value paths: dotted segments ("\\." for a dot inside one), "[n]" for an index.
_SEGMENT = r"(?:[A-Za-z0-9_-]|\\\.)+"
HELM_KEY = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT}|\[\d+\])+")
# What encodeURIComponent leaves as is, beyond letters, digits and "-_.~".
_URI_COMPONENT_SAFE = "!*'()"


def encode_component(value: str) -> str:
    """``encodeURIComponent``: what the launcher's ``decodeURIComponent`` undoes."""
    return quote(value, safe=_URI_COMPONENT_SAFE)


def helm_value(key: str, value: Any) -> str:
    """One Helm value, written as the launcher parses it (route.ts)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ExtensionError(f"Onyxia value {key}={value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        if "»" in value:
            raise ExtensionError(f"Onyxia value {key}={value!r} cannot hold '»'")
        # «» are sent URL-encoded too: the launcher decodes the whole value first.
        return encode_component(f"«{value}»")
    raise ExtensionError(
        f"Onyxia value {key}={value!r}: use a string, a number, true, false or null"
    )


def launch_params(
    config, notebook: str, onyxia: dict | None = None
) -> tuple[str, list[tuple[str, str]]]:
    """The chart, and the launcher's parameters as (key, encoded value) pairs."""
    onyxia = dict(onyxia or {})
    chart = onyxia.pop("chart", None) or config.onyxia_chart
    extra = onyxia.pop("values", None) or {}
    if onyxia:
        raise ExtensionError(
            f"{notebook}: unknown course.onyxia keys {sorted(onyxia)} "
            "(expected 'chart' and 'values')"
        )
    args = [notebook, config.onyxia_ref, config.onyxia_repository]
    if not all(args) or any(re.search(r"\s", arg) for arg in args):
        # onyxia-init.sh passes the arguments unquoted: they are split on whitespace.
        raise ExtensionError(f"Onyxia init arguments must be non-empty words: {args}")
    init_script = RAW_URL.format(
        repository=config.onyxia_repository,
        ref=config.onyxia_ref,
        path=config.onyxia_init_script,
    )
    values: dict[str, Any] = {
        "init.personalInit": init_script,
        "init.personalInitArgs": " ".join(args),
    }
    for key, value in extra.items():
        if key in PLAIN_KEYS or not HELM_KEY.fullmatch(key):
            raise ExtensionError(
                f"{notebook}: {key!r} is not a Helm value path (keys with a dot, "
                f"e.g. kubernetes.role; {sorted(PLAIN_KEYS)} are set by the book)"
            )
        if key in values:
            raise ExtensionError(f"{notebook}: {key!r} is set by the book itself")
        values[key] = value
    name = encode_component(PurePosixPath(notebook).stem)
    params = [("autoLaunch", "true"), ("name", name)]
    version = config.onyxia_chart_versions.get(chart)
    if version:
        params.append(("version", encode_component(version)))
    # A dot inside a segment travels as "%5C." (route.ts, escapedDotInHelmValuesPath).
    for key, value in values.items():
        params.append((key.replace("\\.", "%5C."), helm_value(key, value)))
    return chart, params


def launch_url(config, notebook: str, onyxia: dict | None = None) -> str:
    """Launcher URL that opens ``notebook`` (path relative to the repository root)."""
    chart, params = launch_params(config, notebook, onyxia)
    query = "&".join(f"{key}={value}" for key, value in params)
    base = config.onyxia_url.rstrip("/")
    return f"{base}/launcher/{config.onyxia_catalog}/{chart}?{query}"


def _notebook(app: Sphinx, docname: str) -> str | None:
    """The notebook's path in the repository, if ``docname`` was built from one."""
    if docname not in app.env.all_docs:
        return None
    source = PurePosixPath(app.env.doc2path(docname, base=False).as_posix())
    return str(source) if source.suffix == ".ipynb" else None


def _onyxia_metadata(app: Sphinx, docname: str) -> dict:
    """``course.onyxia`` from the notebook's metadata, as MyST-NB left it in the env."""
    course = app.env.metadata.get(docname, {}).get("course") or {}
    if isinstance(course, str):  # docinfo fields may hold the JSON text
        course = json.loads(course)
    onyxia = course.get("onyxia") or {}
    if not isinstance(onyxia, dict):
        raise ExtensionError(f"{docname}: course.onyxia must be a mapping")
    return onyxia


def _url(app: Sphinx, docname: str, notebook: str) -> str:
    try:
        return launch_url(app.config, notebook, _onyxia_metadata(app, docname))
    except ExtensionError as exc:
        raise ExtensionError(f"{docname}: {exc}") from exc


def student_copy(app: Sphinx, notebook: str) -> str | None:
    """``notebooks/exercices/<name>.ipynb`` beside ``notebook``, if the book has it."""
    path = PurePosixPath(notebook)
    copy = path.parent / app.config.onyxia_exercises_folder / path.name
    return str(copy) if (Path(app.srcdir) / copy).is_file() else None


def targets(app: Sphinx, docname: str, notebook: str) -> list[dict[str, str]]:
    """What the page offers: the notebook, or its student copy and its solution."""
    copy = student_copy(app, notebook)
    if copy is None:
        return [
            {
                "kind": "notebook",
                "path": notebook,
                "open": "Ouvrir dans Onyxia",
                "download": "Télécharger le notebook (.ipynb)",
            }
        ]
    return [
        {
            "kind": "exercises",
            "path": copy,
            "open": "Ouvrir (exercices)",
            "download": "Télécharger les exercices (.ipynb)",
        },
        {
            "kind": "solution",
            "path": notebook,
            "open": "Ouvrir (corrigé)",
            "download": "Télécharger le corrigé (.ipynb)",
        },
    ]


def add_banner(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    notebook = _notebook(app, docname)
    if notebook is None or app.builder.format != "html":
        return
    page = app.builder.get_target_uri(docname)
    offered = targets(app, docname, notebook)
    links = [
        f'<a class="notebook-launch-onyxia" data-notebook="{t["kind"]}" '
        f'href="{_url(app, docname, t["path"])}" target="_blank" rel="noopener">'
        f"{t['open']}</a>"
        for t in offered
    ]
    for t in offered:
        href = relative_uri(page, "_sources/" + t["path"])
        links.append(
            f'<a class="notebook-launch-download" data-notebook="{t["kind"]}" '
            f'href="{href}" download>{t["download"]}</a>'
        )
    html = '<div class="notebook-launch">' + "".join(links) + "</div>"
    banner = nodes.raw("", html, format="html")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, banner)
    else:
        doctree.insert(0, banner)


def add_header_button(app: Sphinx, pagename, templatename, context, doctree) -> None:
    if doctree is None or "header_buttons" not in context:
        return
    notebook = _notebook(app, pagename)
    if notebook is None:
        return
    offered = targets(app, pagename, notebook)
    if len(offered) == 1:
        button = {
            "type": "link",
            "url": _url(app, pagename, notebook),
            "tooltip": "Ouvrir dans Onyxia (SSP Cloud)",
            "icon": "_static/onyxia.svg",
            "label": "onyxia-launch-button",
        }
    else:
        button = {
            "type": "group",
            "tooltip": "Ouvrir dans Onyxia (SSP Cloud)",
            "icon": "fa-solid fa-rocket",
            "label": "onyxia-launch-button",
            "buttons": [
                {
                    "type": "link",
                    "url": _url(app, pagename, t["path"]),
                    "text": t["open"],
                    "tooltip": f"{t['open']} dans Onyxia (SSP Cloud)",
                    "icon": "_static/onyxia.svg",
                    "label": f"onyxia-launch-{t['kind']}",
                }
                for t in offered
            ],
        }
    context["header_buttons"].insert(0, button)


def copy_student_copies(app: Sphinx, exception: Exception | None) -> None:
    """The student copies are not pages: put them where the banner links to them."""
    if exception is not None or app.builder.format != "html":
        return
    for docname in app.env.found_docs:
        notebook = _notebook(app, docname)
        copy = student_copy(app, notebook) if notebook else None
        if copy:
            target = Path(app.outdir) / "_sources" / copy
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(app.srcdir) / copy, target)


def setup(app: Sphinx) -> dict:
    # The defaults are the book's: conf.py sets only where the book lives.
    app.add_config_value("onyxia_url", "https://datalab.sspcloud.fr", "html", str)
    app.add_config_value("onyxia_catalog", "ide", "html", str)
    app.add_config_value("onyxia_chart", "jupyter-python", "html", str)
    # chart -> version; empty: the launcher takes each chart's newest version.
    app.add_config_value("onyxia_chart_versions", {}, "html", dict)
    app.add_config_value("onyxia_init_script", ".onyxia/init.sh", "html", str)
    app.add_config_value("onyxia_repository", "", "html", str)
    app.add_config_value("onyxia_ref", "main", "html", str)
    # Student copies of the notebooks: <notebook folder>/<this>/<name>.ipynb.
    app.add_config_value("onyxia_exercises_folder", "exercices", "html", str)
    app.connect("doctree-resolved", add_banner)
    # After sphinx-book-theme has prepared its header buttons (priority 501).
    app.connect("html-page-context", add_header_button, priority=502)
    app.connect("build-finished", copy_student_copies)
    return {"version": "2.0", "parallel_read_safe": True, "parallel_write_safe": True}
