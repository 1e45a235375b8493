"""Sphinx configuration of the course book."""

import os
import shutil
import sys
from pathlib import Path

# The extensions of _ext/ are a package that `make` installs (no sys.path edits).

project = "Mise en production des projets data"
author = "Équipe pédagogique du Master 2 IMSD"
copyright = "2026, " + author
language = "fr"

# Where the book lives: used by the repository, Onyxia and download buttons.
repository = os.environ.get("GITHUB_REPOSITORY", "m2-imsd/mise-en-production")
repository_ref = os.environ.get("GITHUB_REF_NAME", "main")

extensions = [
    "myst_nb",
    "sphinx_design",
    "sphinx_copybutton",
    "sphinx.ext.graphviz",
    "onyxia_launch",
    "site_ui",
    "provenance",
    "french_quotes",
    "tool_versions",
    "autoapi.extension",
    "sphinx.ext.napoleon",
]

# Only these sources are part of the book; jupytext's .md twins of the notebooks,
# the examples and the tests are not pages.
include_patterns = ["index.md", "chapters/**", "notebooks/*.ipynb"]
exclude_patterns = ["_build", ".venv*", "**/.ipynb_checkpoints"]

nitpicky = True
suppress_warnings = []

# The reference of the resilia package (chapters/reference.md), generated from its
# docstrings by sphinx-autoapi, which reads the source instead of importing it: the site
# builds without the package's own dependencies (scikit-learn, FastAPI...).
autoapi_type = "python"
autoapi_dirs = ["examples/resilia/src/resilia"]
autoapi_root = "chapters/api-reference"
autoapi_add_toctree_entry = False
autoapi_keep_files = False
autoapi_options = [
    "members",
    "undoc-members",
    "show-inheritance",
    "show-module-summary",
]
autoapi_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# nitpicky: every cross-reference must resolve. Types from outside resilia have no
# inventory here (intersphinx would download docs.python.org's and each library's at
# build time, and the build is offline), so they stay plain text, by package:
nitpick_ignore_regex = [
    # the standard library
    (
        r"py:.*",
        r"(argparse|asyncio|collections\.abc|contextvars|datetime|enum|logging|pathlib|random|socket)\..*",
    ),
    # the package's dependencies (its pyproject.toml)
    (
        r"py:.*",
        r"(fastapi|starlette|uvicorn|pydantic|sklearn|pandas|numpy|opentelemetry|prometheus_client|psycopg)\..*",
    ),
    # base classes that autoapi names as imported (``from x import Name``)
    (r"py:.*", r"(APIRoute|Field)"),
]
# Private base classes are not documented (autoapi skips names with a leading _).
nitpick_ignore = [("py:obj", "_Strict")]

myst_enable_extensions = [
    "colon_fence",
    "deflist",
    "dollarmath",
    "substitution",
    "attrs_inline",
]
myst_heading_anchors = 3

# Notebooks are rendered from their stored outputs: the build never runs code.
nb_execution_mode = "off"
nb_merge_streams = True
# Cells tagged hide-cell are the exercises' solutions (coursekit.exercises).
nb_code_prompt_show = "Voir la solution"
nb_code_prompt_hide = "Masquer la solution"

# graphviz: a system "dot" when there is one, else the wheel from requirements/site.txt.
graphviz_dot = (
    shutil.which("dot")
    or shutil.which(
        "graphviz-pure",
        path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    )
    or "dot"
)
graphviz_output_format = "svg"

html_theme = "sphinx_book_theme"
html_title = "Mise en production des projets data"
html_static_path = ["_static"]
templates_path = ["_templates"]
html_css_files = ["custom.css"]
# site.js: fixes to the theme's behaviour, documented in the file.
html_js_files = [("site.js", {"defer": "defer"})]
html_favicon = "_static/favicon.svg"
html_last_updated_fmt = None
# "auto" follows the reader's light/dark preference; the theme's default ("") logs
# "Got invalid theme mode" on every first visit.
html_context = {"default_mode": "auto"}
html_theme_options = {
    "search_bar_text": "Rechercher dans le livre…",
    "toc_title": "Sur cette page",
    # Build time, commit and notebook versions (_ext/provenance.py).
    "footer_content_items": ["author.html", "copyright.html", "provenance.html"],
    "repository_url": f"https://github.com/{repository}",
    "repository_branch": repository_ref,
    "use_repository_button": True,
    "use_issues_button": True,
    "use_edit_page_button": True,
    "use_download_button": True,
    "path_to_docs": "",
    "show_toc_level": 2,
    "home_page_in_toc": True,
}

# `make linkcheck` (weekly workflow links.yml): the Onyxia launcher links need a login.
linkcheck_ignore = [r"https://datalab\.sspcloud\.fr/launcher/"]
linkcheck_timeout = 30
linkcheck_retries = 2

# Onyxia (SSP Cloud) launcher, see _ext/onyxia_launch.py: its defaults are the book's
# (datalab.sspcloud.fr, catalogue "ide", chart jupyter-python, .onyxia/init.sh); a
# notebook picks another chart or adds Helm values in its metadata (course.onyxia).
# No chart version is pinned (onyxia_chart_versions stays empty): the "ide" catalogue
# keeps only each chart's newest version (multipleServicesMode "latest" in onyxia-api's
# catalogs.json), and the launcher silently replaces an unknown version by the newest
# (thunks.ts, getChartInfos), so a pin would only drift into a wrong promise.
onyxia_repository = repository
onyxia_ref = repository_ref
