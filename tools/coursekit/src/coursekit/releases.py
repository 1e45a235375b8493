"""Prometheus and Alertmanager from their official releases, where no package has them.

An Onyxia pod has neither tool and no root to install packages. When one is missing
and the machine is online, ``ensure_observability_tools`` installs the official
release for the platform into ``~/.local/bin``: the version pinned in the book's
``versions.toml``, the archive checked against the release's published
``sha256sums.txt`` before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

GITHUB = "https://github.com/prometheus/{project}/releases/download/v{version}/"


class ReleaseError(RuntimeError):
    """A release could not be installed; nothing was written."""


@dataclass(frozen=True)
class Tool:
    project: str  # the GitHub project and archive name
    binaries: tuple[str, ...]  # what the archive holds and we install
    commands: tuple[str, ...]  # what the notebooks run (Debian's names)
    aliases: tuple[tuple[str, str], ...] = ()  # (Debian's name, binary)


TOOLS = (
    Tool("prometheus", ("prometheus", "promtool"), ("prometheus", "promtool")),
    Tool(
        "alertmanager",
        ("alertmanager", "amtool"),
        ("prometheus-alertmanager",),
        (("prometheus-alertmanager", "alertmanager"),),
    ),
)


def find_versions_file(start: Path | None = None) -> Path:
    """The book's versions.toml, in ``start`` (default: cwd) or a parent."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "versions.toml").is_file():
            return folder / "versions.toml"
    raise FileNotFoundError(f"no versions.toml in {start} or its parents")


def pinned_versions(path: Path | None = None) -> dict[str, str]:
    path = path or find_versions_file()
    with path.open("rb") as file:
        data = tomllib.load(file)
    return {tool.project: data[tool.project]["version"] for tool in TOOLS}


def platform_suffix() -> str:
    """The release's platform, e.g. ``linux-amd64``."""
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    if system not in {"linux", "darwin"} or machine not in arch:
        raise ReleaseError(f"no official release for {system}/{machine}")
    return f"{system}-{arch[machine]}"


def _get(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def install_release(
    tool: Tool,
    version: str,
    bin_dir: Path,
    base_url: str = GITHUB,
    timeout: float = 60,
) -> list[Path]:
    """Download, check and install ``tool``'s binaries into ``bin_dir``."""
    base = base_url.format(project=tool.project, version=version)
    stem = f"{tool.project}-{version}.{platform_suffix()}"
    archive = f"{stem}.tar.gz"
    try:
        sums = _get(base + "sha256sums.txt", timeout).decode()
    except (urllib.error.URLError, OSError) as exc:
        raise ReleaseError(
            f"cannot reach {base}sha256sums.txt ({exc}): is this machine online?"
        ) from exc
    expected = {
        parts[1].lstrip("*"): parts[0]
        for parts in (line.split() for line in sums.splitlines())
        if len(parts) == 2
    }
    if archive not in expected:
        raise ReleaseError(f"{archive} is not listed in {base}sha256sums.txt")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / archive
        try:
            data = _get(base + archive, timeout)
        except (urllib.error.URLError, OSError) as exc:
            raise ReleaseError(f"cannot download {base}{archive} ({exc})") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected[archive]:
            raise ReleaseError(
                f"{archive}: sha256 {digest} differs from the published "
                f"{expected[archive]}; nothing installed"
            )
        local.write_bytes(data)
        staged = Path(tmp) / "bin"
        staged.mkdir()
        with tarfile.open(local) as tar:
            for binary in tool.binaries:
                try:
                    member = tar.getmember(f"{stem}/{binary}")
                except KeyError:
                    raise ReleaseError(f"{archive} has no {stem}/{binary}") from None
                source = tar.extractfile(member) if member.isfile() else None
                if source is None:
                    raise ReleaseError(f"{archive}: {member.name} is not a file")
                with source, (staged / binary).open("wb") as target:
                    shutil.copyfileobj(source, target)
        # Everything checked: now install, each file replaced atomically.
        bin_dir.mkdir(parents=True, exist_ok=True)
        installed = []
        for binary in tool.binaries:
            (staged / binary).chmod(0o755)
            shutil.move(staged / binary, bin_dir / f".{binary}.new")
            os.replace(bin_dir / f".{binary}.new", bin_dir / binary)
            installed.append(bin_dir / binary)
        for alias, binary in tool.aliases:
            link = bin_dir / alias
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(binary)
            installed.append(link)
    return installed


def ensure_observability_tools(
    bin_dir: Path | None = None,
    versions_file: Path | None = None,
    base_url: str = GITHUB,
    timeout: float = 60,
) -> dict[str, Path]:
    """Prometheus, promtool and Alertmanager on the PATH, installing what is missing.

    Commands come from the PATH when they are there (a Debian package, say), else
    from ``bin_dir`` (default ``~/.local/bin``, prepended to this process's PATH so
    that the processes it starts find them too). Returns each command's path.
    """
    bin_dir = bin_dir or Path.home() / ".local" / "bin"
    if str(bin_dir) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    versions = None
    found: dict[str, Path] = {}
    for tool in TOOLS:
        located = {command: shutil.which(command) for command in tool.commands}
        if not all(located.values()):
            versions = versions or pinned_versions(versions_file)
            install_release(tool, versions[tool.project], bin_dir, base_url, timeout)
            located = {command: shutil.which(command) for command in tool.commands}
        found |= {command: Path(path) for command, path in located.items() if path}
    return found
