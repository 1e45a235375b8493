"""Sphinx extension: every page says where it comes from.

The footer of each page (template ``components/provenance.html``) gives the build
time, the commit the site was built from (and whether the tree had uncommitted
changes), and, for a notebook page, the Python and package versions its stored
outputs were produced with. Those are read from the notebook: Python from
``metadata.language_info`` (written by the kernel), the packages from
``metadata.provenance``, which ``tools/execute_notebooks.py`` records when it runs
the notebook. Nothing is guessed: what the notebook does not record is said so.

The build time is ``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now.
The commit is part of the configuration, so a new commit rewrites every page.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]


def french_date(moment: datetime, with_time: bool = True) -> str:
    text = f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    return text + (f" à {moment:%H:%M} UTC" if with_time else "")


def _git(root: Path, *args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return result.stdout.strip()


def read_commit(root: Path) -> tuple[str, bool]:
    """(full commit hash or "", whether tracked files differ from it)."""
    commit = _git(root, "rev-parse", "HEAD") or os.environ.get("GITHUB_SHA", "")
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    return commit, dirty


def build_time() -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return datetime.now(tz=UTC)


def notebook_provenance(path: Path) -> dict:
    """What a notebook records about the run that produced its stored outputs."""
    metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    recorded = metadata.get("provenance", {})
    packages = recorded.get("packages", {})
    executed = recorded.get("executed")
    kernel_python = metadata.get("language_info", {}).get("version")
    if executed:
        executed = french_date(datetime.fromisoformat(executed), with_time=False)
    return {
        "python": recorded.get("python") or kernel_python,
        "packages": sorted(packages.items(), key=lambda kv: kv[0].lower()),
        "executed": executed,
    }


def on_config_inited(app: Sphinx, config: Config) -> None:
    commit, dirty = read_commit(Path(app.confdir))
    config.provenance_commit = commit + ("+dirty" if dirty else "")


def add_provenance(app: Sphinx, pagename, templatename, context, doctree) -> None:
    commit = app.config.provenance_commit
    sha = commit.removesuffix("+dirty")
    repository = app.config.html_theme_options.get("repository_url", "")
    built = getattr(app.env, "provenance_built", None) or build_time()
    provenance = {
        "built": french_date(built),
        "built_iso": built.isoformat(timespec="seconds"),
        "commit": sha[:12],
        "commit_url": f"{repository}/commit/{sha}" if repository and sha else "",
        "dirty": commit.endswith("+dirty"),
        "notebook": None,
    }
    if doctree is not None and pagename in app.env.all_docs:
        source = Path(app.env.doc2path(pagename))
        if source.suffix == ".ipynb":
            provenance["notebook"] = notebook_provenance(source)
    context["provenance"] = provenance


def on_builder_inited(app: Sphinx) -> None:
    # One time for the whole build, not one per page.
    app.env.provenance_built = build_time()


def setup(app: Sphinx) -> dict:
    app.add_config_value("provenance_commit", "", "html")
    app.connect("config-inited", on_config_inited)
    app.connect("builder-inited", on_builder_inited)
    app.connect("html-page-context", add_provenance)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
