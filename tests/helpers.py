"""Paths and helpers shared by the repository-level tests."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
SITE = ROOT / "_build" / "html"

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tools(*tools: str, why: str = "") -> None:
    """Skip the calling test when a tool is missing, except in CI where it must be there."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    message = f"not installed: {', '.join(missing)}" + (f" ({why})" if why else "")
    if IN_CI:
        pytest.fail(f"{message}; CI must install it (.ci/install-system-packages)")
    pytest.skip(message)
