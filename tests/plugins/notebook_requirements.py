"""pytest plugin: a notebook that needs system tools declares them, and is skipped
with that reason where they are missing (a laptop, Onyxia) — but fails in CI, which
must install them (the policy of ``coursekit.policy``). Declare in the notebook
metadata (jupytext header)::

    course:
      requires: [prometheus, promtool, prometheus-alertmanager]
      capabilities: [CAP_NET_ADMIN]   # held by root, or reached by passwordless sudo
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from coursekit.policy import missing_capabilities, missing_tools, unavailable
from tests.plugins import is_notebook_cell


def _missing(path: Path) -> list[str]:
    course = nbformat.read(path, as_version=4).metadata.get("course", {})
    problems = []
    if tools := missing_tools(course.get("requires", [])):
        problems.append(f"{', '.join(tools)}: not installed")
    if caps := missing_capabilities(course.get("capabilities", [])):
        problems.append(f"{', '.join(caps)}: neither root nor passwordless sudo")
    return problems


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not is_notebook_cell(item):
        return
    cache = item.config.stash.setdefault(_MISSING, {})
    path = item.parent.path
    if path not in cache:
        cache[path] = _missing(path)
    if cache[path]:
        unavailable(f"{path.name} needs {'; '.join(cache[path])}")


_MISSING = pytest.StashKey[dict]()
