"""pytest plugin: a notebook that needs system tools declares them, and is skipped
with that reason where they are missing (a laptop, Onyxia) — but fails in CI, which
must install them (the policy of ``coursekit.policy``). Declare in the notebook
metadata (jupytext header)::

    course:
      requires: [prometheus, promtool, prometheus-alertmanager]
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from coursekit.policy import missing_tools, unavailable
from tests.plugins import is_notebook_cell


def _missing_tools(path: Path) -> list[str]:
    metadata = nbformat.read(path, as_version=4).metadata
    return missing_tools(metadata.get("course", {}).get("requires", []))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not is_notebook_cell(item):
        return
    cache = item.config.stash.setdefault(_MISSING, {})
    path = item.parent.path
    if path not in cache:
        cache[path] = _missing_tools(path)
    if cache[path]:
        unavailable(f"{path.name} needs {', '.join(cache[path])}: not installed")


_MISSING = pytest.StashKey[dict]()
