"""The versions of the book's system tools, read from versions.toml at the repository root.

    >>> tool_version("prometheus")
    '2.53.3'

versions.toml is the single source: CI scripts, the compose file, the notebooks and the
book's table of versions all follow it (tests/test_verification.py checks that they do).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

VERSIONS_FILE = Path(__file__).resolve().parents[4] / "versions.toml"


@cache
def versions() -> dict[str, dict[str, str]]:
    if not VERSIONS_FILE.is_file():
        raise FileNotFoundError(
            f"{VERSIONS_FILE} not found: coursekit must be installed from a clone of the "
            "book's repository (pip install -e tools/coursekit)"
        )
    return tomllib.loads(VERSIONS_FILE.read_text(encoding="utf-8"))


def tool_version(tool: str) -> str:
    """The version of ``tool`` (a table of versions.toml), e.g. "2.53.3"."""
    try:
        return versions()[tool]["version"]
    except KeyError:
        known = ", ".join(sorted(versions()))
        raise KeyError(f"versions.toml has no tool {tool!r} (known: {known})") from None


def official_image(tool: str) -> str:
    """The official image of ``tool`` at its version, e.g. "prom/prometheus:v2.53.3"."""
    return versions()[tool]["image"]
