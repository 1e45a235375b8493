"""What happens when a tool the book needs is missing: skip here, fail in CI.

On a laptop or on Onyxia a missing tool (Docker, Prometheus, Java...) skips the test
or the notebook, with the reason. CI installs every tool it can, so there a missing
one is a failure that says what to install.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CI_FIX = "CI must provide it (.ci/install-system-packages)"


def missing_tools(tools: list[str] | tuple[str, ...]) -> list[str]:
    """The commands among ``tools`` that are not on the PATH."""
    return [tool for tool in tools if shutil.which(tool) is None]


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
