"""coursekit.releases against a local server shaped like GitHub's release downloads:
``/prometheus/<project>/releases/download/v<version>/`` with the platform's archive
and ``sha256sums.txt``. Nothing is downloaded from the internet."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from coursekit import releases
from coursekit.runner import free_port
from tests.helpers import ROOT


def fake_binary(name: str, version: str) -> bytes:
    return f"#!/bin/sh\necho '{name}, version {version} (branch: HEAD)'\n".encode()


def release_archive(project: str, version: str, binaries) -> tuple[str, bytes]:
    stem = f"{project}-{version}.{releases.platform_suffix()}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        files = {name: fake_binary(name, version) for name in binaries}
        files |= {"LICENSE": b"Apache-2.0\n", "NOTICE": b"notice\n"}
        for name, data in files.items():
            info = tarfile.TarInfo(f"{stem}/{name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return f"{stem}.tar.gz", buffer.getvalue()


class Releases:
    """A release tree on disk, served on loopback; counts the requests."""

    def __init__(self, root: Path, versions: dict[str, str]):
        self.root, self.requests = root, []
        for tool in releases.TOOLS:
            version = versions[tool.project]
            project = root / "prometheus" / tool.project
            folder = project / "releases" / "download" / f"v{version}"
            folder.mkdir(parents=True)
            name, data = release_archive(tool.project, version, tool.binaries)
            (folder / name).write_bytes(data)
            other, _ = release_archive(tool.project, version, ())
            sums = f"{hashlib.sha256(data).hexdigest()}  {name}\n"
            sums += f"{'0' * 64}  {other.replace('linux', 'windows')}\n"
            (folder / "sha256sums.txt").write_text(sums)
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                requests.append(self.path)

        handler = functools.partial(Handler, directory=str(root))
        address = ("127.0.0.1", free_port())
        self.server = http.server.ThreadingHTTPServer(address, handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_port
        path = "prometheus/{project}/releases/download/v{version}/"
        self.url = f"http://127.0.0.1:{port}/{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


VERSIONS = {"prometheus": "2.53.3", "alertmanager": "0.28.1"}


@pytest.fixture
def pins(tmp_path):
    path = tmp_path / "versions.toml"
    path.write_text("".join(f'[{k}]\nversion = "{v}"\n\n' for k, v in VERSIONS.items()))
    return path


@pytest.fixture
def server(tmp_path):
    served = Releases(tmp_path / "www", VERSIONS)
    yield served
    served.close()


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """A PATH without any Prometheus tool (the machine's packages hidden)."""
    bin_dir = tmp_path / "system-bin"
    bin_dir.mkdir()
    for tool in ("sh", "echo"):
        (bin_dir / tool).symlink_to(f"/bin/{tool}")
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_missing_tools_are_installed_at_pinned_versions(tmp_path, server, pins, bare):
    bin_dir = tmp_path / "home" / ".local" / "bin"
    found = releases.ensure_observability_tools(bin_dir, pins, server.url)
    assert set(found) == {"prometheus", "promtool", "prometheus-alertmanager"}
    assert os.environ["PATH"].split(os.pathsep)[0] == str(bin_dir)
    for command, version in [
        ("prometheus", "2.53.3"),
        ("promtool", "2.53.3"),
        ("prometheus-alertmanager", "0.28.1"),
        ("amtool", "0.28.1"),
    ]:
        out = subprocess.run([command, "--version"], capture_output=True, text=True)
        assert f"version {version}" in out.stdout
    assert sorted(p.name for p in bin_dir.iterdir()) == [
        "alertmanager",
        "amtool",
        "prometheus",
        "prometheus-alertmanager",
        "promtool",
    ]
    # A second call finds them and downloads nothing.
    asked = len(server.requests)
    releases.ensure_observability_tools(bin_dir, pins, server.url)
    assert len(server.requests) == asked


def test_versions_come_from_versions_toml(tmp_path, bare):
    other = {"prometheus": "3.1.0", "alertmanager": "0.27.0"}
    served = Releases(tmp_path / "www", other)
    path = tmp_path / "versions.toml"
    path.write_text("".join(f'[{k}]\nversion = "{v}"\n' for k, v in other.items()))
    try:
        releases.ensure_observability_tools(tmp_path / "bin", path, served.url)
    finally:
        served.close()
    assert any("/v3.1.0/prometheus-3.1.0." in r for r in served.requests)
    assert any("/v0.27.0/alertmanager-0.27.0." in r for r in served.requests)


def test_the_book_pins_the_versions_it_states():
    book = releases.pinned_versions(ROOT / "versions.toml")
    assert set(book) == {"prometheus", "alertmanager"}
    assert releases.find_versions_file(ROOT / "notebooks") == ROOT / "versions.toml"


def test_a_tampered_archive_installs_nothing(tmp_path, server, pins, bare):
    version = VERSIONS["prometheus"]
    folder = server.root / "prometheus/prometheus/releases/download" / f"v{version}"
    archive = next(folder.glob("*.tar.gz"))
    archive.write_bytes(archive.read_bytes() + b"\0")
    bin_dir = tmp_path / "bin"
    with pytest.raises(releases.ReleaseError, match="differs from the published"):
        releases.ensure_observability_tools(bin_dir, pins, server.url)
    assert not bin_dir.exists() or not any(bin_dir.iterdir())


def test_an_archive_missing_from_the_checksums_is_refused(tmp_path, server, pins, bare):
    for sums in server.root.rglob("sha256sums.txt"):
        sums.write_text("\n".join(sums.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(releases.ReleaseError, match="not listed"):
        releases.ensure_observability_tools(tmp_path / "bin", pins, server.url)


def test_offline_is_a_clear_error(tmp_path, pins, bare):
    url = f"http://127.0.0.1:{free_port()}/{{project}}/v{{version}}/"
    with pytest.raises(releases.ReleaseError, match="is this machine online"):
        releases.ensure_observability_tools(tmp_path / "bin", pins, url, 5)
    assert not (tmp_path / "bin").exists()


def test_tools_on_the_path_are_used_as_they_are(tmp_path, server, pins, monkeypatch):
    system = tmp_path / "usr-bin"
    system.mkdir()
    for name in ("prometheus", "promtool", "prometheus-alertmanager"):
        (system / name).write_bytes(fake_binary(name, "2.42.0"))
        (system / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(system))
    bin_dir = tmp_path / "bin"
    found = releases.ensure_observability_tools(bin_dir, pins, server.url)
    assert found["prometheus"] == system / "prometheus" and server.requests == []
