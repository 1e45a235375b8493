"""pytest plugin: a notebook that needs system tools declares them, and is skipped
with that reason where they are missing (a laptop, Onyxia) — but fails in CI, which
must install them. Declare in the notebook metadata (jupytext header)::

    course:
      requires: [prometheus, promtool, prometheus-alertmanager]
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from tests.helpers import IN_CI


def _missing_tools(path: Path) -> list[str]:
    metadata = nbformat.read(path, as_version=4).metadata
    required = metadata.get("course", {}).get("requires", [])
    return [tool for tool in required if shutil.which(tool) is None]


def _is_notebook_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing: dict[Path, list[str]] = {}
    for item in filter(_is_notebook_cell, items):
        path = item.parent.path
        if path not in missing:
            missing[path] = _missing_tools(path)
        if missing[path] and not IN_CI:
            tools = ", ".join(missing[path])
            item.add_marker(pytest.mark.skip(reason=f"{path.name} needs {tools}: not installed"))
    config._notebook_missing_tools = missing


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _is_notebook_cell(item):
        return
    tools = item.config._notebook_missing_tools.get(item.parent.path)
    if tools:  # only reached in CI: elsewhere the cells are skipped
        pytest.fail(
            f"{item.parent.path.name} needs {', '.join(tools)}, missing in CI: "
            "install it in .ci/install-system-packages",
            pytrace=False,
        )
