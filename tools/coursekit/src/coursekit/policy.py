"""What happens when a tool the book needs is missing: skip here, fail in CI.

On a laptop or on Onyxia a missing tool (Docker, Prometheus, Java...) skips the test
or the notebook, with the reason. CI installs every tool it can, so there a missing
one is a failure that says what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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


# Linux capabilities a notebook may need, by bit number in /proc/<pid>/status.
CAPABILITIES = {"CAP_NET_ADMIN": 12}


def lacks_capabilities(names: list[str] | tuple[str, ...]) -> list[str]:
    """The capabilities among ``names`` this process does not hold (root holds all)."""
    for name in names:
        if name not in CAPABILITIES:
            raise ValueError(
                f"unknown capability {name!r}: expected one of {sorted(CAPABILITIES)}"
            )
    try:
        status = Path("/proc/self/status").read_text()
        held = int(
            next(x for x in status.splitlines() if x.startswith("CapEff:")).split()[1],
            16,
        )
    except (OSError, StopIteration):
        held = 0
    return [name for name in names if not held >> CAPABILITIES[name] & 1]


def passwordless_sudo() -> list[str] | None:
    """``[sudo, -n]`` when sudo runs commands as root without a password (GitHub's
    runners), else None."""
    sudo = shutil.which("sudo")
    if (
        sudo
        and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0
    ):
        return [sudo, "-n"]
    return None


def missing_capabilities(names: list[str] | tuple[str, ...]) -> list[str]:
    """The capabilities among ``names`` that neither this process nor passwordless
    sudo can provide."""
    lacking = lacks_capabilities(names)
    return lacking if lacking and passwordless_sudo() is None else []


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
