"""What happens when a tool the book needs is missing: skip here, fail in CI.

On a laptop or on Onyxia a missing tool (Docker, Prometheus, Java...) skips the test
or the notebook, with the reason. CI installs every tool it can, so there a missing
one is a failure that says what to install.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CI_FIX = "CI must provide it (.ci/install-system-packages)"


# Where Debian installs server binaries off the PATH (newest version first).
OFF_PATH_DIRS = ("/usr/lib/postgresql/*/bin",)


def _version_key(path: Path) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", str(path))]


def find_tool(tool: str) -> Path | None:
    """The command ``tool`` on the PATH, else in the directories Debian keeps off it."""
    if found := shutil.which(tool):
        return Path(found)
    for pattern in OFF_PATH_DIRS:
        root, _, rest = pattern.partition("*")
        candidates = sorted(Path(root).glob("*" + rest), key=_version_key, reverse=True)
        for directory in candidates:
            if os.access(directory / tool, os.X_OK):
                return directory / tool
    return None


def missing_tools(tools: list[str] | tuple[str, ...]) -> list[str]:
    """The commands among ``tools`` that cannot be found (see ``find_tool``)."""
    return [tool for tool in tools if find_tool(tool) is None]


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test with ``reason``, or fail it in CI."""
    if IN_CI:
        pytest.fail(f"{reason}; {CI_FIX}", pytrace=False)
    pytest.skip(reason)


def require_tools(*tools: str, why: str = "") -> None:
    """Skip (fail in CI) the calling test when one of ``tools`` is missing."""
    if missing := missing_tools(tools):
        unavailable(
            f"not installed: {', '.join(missing)}" + (f" ({why})" if why else "")
        )
