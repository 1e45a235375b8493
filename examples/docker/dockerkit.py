"""Small helpers around the Docker SDK for Python, for the Docker notebook and its tests.

- ``build_image``: builds from a Dockerfile and a context directory (applying the
  Dockerfile's ``<Dockerfile>.dockerignore``), streams the log, and raises ``BuildError``
  naming the failing step and its last output lines;
- ``run_until_healthy``: starts a container and waits for its healthcheck;
- ``cleanup`` / ``leftovers``: removes (or lists) what carries a label, and the images a
  run created (the legacy builder leaves one untagged image per stage).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.utils.build import tar

LABEL = "com.example.course"
OFFICIAL_BASE = "python:3.11-slim"

_STEP = re.compile(r"^Step \d+/\d+ : ")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BuildError(RuntimeError):
    """A build failed: ``step`` is the Dockerfile instruction, ``output`` its last lines."""

    def __init__(self, dockerfile: str, step: str, output: list[str], error: str):
        self.step, self.output, self.error = step, output, error
        lines = "\n".join(f"    {line}" for line in output) or "    (no output)"
        super().__init__(
            f"build of {dockerfile} failed at step {step!r}:\n{error}\n"
            f"  last output lines of that step:\n{lines}"
        )


@dataclass
class BuildResult:
    image: docker.models.images.Image
    seconds: float
    steps: list[str] = field(default_factory=list)
    cached_steps: int = 0
    log: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)  # steps run, not taken from cache


def engine() -> docker.DockerClient:
    """A client for the engine of DOCKER_HOST (or the local socket); raises if none answers."""
    client = docker.from_env(timeout=300)
    client.ping()
    return client


def ignore_patterns(dockerfile: Path) -> list[str]:
    """Patterns of ``<Dockerfile>.dockerignore`` (BuildKit's convention), if it exists."""
    path = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_image(
    client: docker.DockerClient,
    dockerfile: Path,
    context: Path,
    tag: str,
    *,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    nocache: bool = False,
    on_line: Callable[[str], None] | None = None,
    tail: int = 8,
) -> BuildResult:
    """Build ``tag`` from ``dockerfile`` with ``context``; raise BuildError on failure."""
    name = ".course.Dockerfile"
    archive = tar(
        str(context),
        exclude=ignore_patterns(Path(dockerfile)),
        dockerfile=(name, Path(dockerfile).read_text()),
    )
    start = time.perf_counter()
    log: list[str] = []
    steps: list[str] = []
    step_output: list[str] = []
    cached = 0
    cached_set: set[int] = set()
    image_id = None
    stream = client.api.build(
        fileobj=archive,
        custom_context=True,
        dockerfile=name,
        tag=tag,
        buildargs=buildargs or {},
        labels=labels or {},
        nocache=nocache,
        rm=True,
        forcerm=True,
        decode=True,
    )
    for chunk in stream:
        if "error" in chunk:
            error = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            step = steps[-1] if steps else "(before the first step)"
            raise BuildError(str(dockerfile), step, step_output[-tail:], error.strip())
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        for line in _ANSI.sub("", chunk.get("stream", "")).splitlines():
            line = line.rstrip()
            if not line:
                continue
            log.append(line)
            if on_line:
                on_line(line)
            if _STEP.match(line):
                steps.append(_STEP.sub("", line))
                step_output = []
            elif line.strip() == "---> Using cache":
                cached += 1
                cached_set.add(len(steps) - 1)
            elif not line.startswith((" ---> ", "Removing intermediate container")):
                step_output.append(line)
    seconds = time.perf_counter() - start
    image = client.images.get(image_id or tag)
    rebuilt = [
        step
        for i, step in enumerate(steps)
        if i not in cached_set and not step.startswith(("ARG ", "FROM "))
    ]
    return BuildResult(image, seconds, steps, cached, log, rebuilt)


def run_until_healthy(
    client: docker.DockerClient, image: str, *, timeout: float = 90, **run_kwargs
) -> tuple[docker.models.containers.Container, float]:
    """Start a detached container and wait until its healthcheck says healthy."""
    start = time.perf_counter()
    container = client.containers.run(image, detach=True, **run_kwargs)
    deadline = start + timeout
    while time.perf_counter() < deadline:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health", {}).get("Status")
        if health == "healthy":
            return container, time.perf_counter() - start
        if state["Status"] in {"exited", "dead"}:
            break
        time.sleep(0.2)
    logs = container.logs(tail=20).decode(errors="replace")
    raise RuntimeError(
        f"container {container.name} not healthy after {timeout:.0f} s "
        f"(status {container.status}); last log lines:\n{logs}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_ids(client: docker.DockerClient) -> set[str]:
    """Ids of all images, intermediate ones included (to spot what a run adds)."""
    return {image.id for image in client.images.list(all=True)}


def _label_filter(label: str) -> dict[str, str]:
    return {"label": label}


def cleanup(
    client: docker.DockerClient, label: str, images_before: Iterable[str] | None = None
) -> dict[str, int]:
    """Remove containers, volumes, networks and images labelled ``label`` ("key=value"),
    and every image that appeared since ``images_before``. It also runs at exit."""
    removed = {"containers": 0, "volumes": 0, "networks": 0, "images": 0}
    filters = _label_filter(label)

    def attempt(kind: str, action: Callable[[], object]) -> None:
        with contextlib.suppress(docker.errors.APIError):  # NotFound included
            action()
            removed[kind] += 1

    for container in client.containers.list(all=True, filters=filters):
        attempt("containers", lambda c=container: c.remove(force=True, v=True))
    for volume in client.volumes.list(filters=filters):
        attempt("volumes", lambda v=volume: v.remove(force=True))
    for network in client.networks.list(filters=filters):
        attempt("networks", network.remove)
    labelled = [image.id for image in client.images.list(all=True, filters=filters)]
    new = set(image_ids(client)) - set(images_before) if images_before is not None else set()
    # Children before parents: repeat while something can still be removed.
    pending = list(dict.fromkeys(labelled + sorted(new)))
    for _ in range(10):
        still = []
        for image_id in pending:
            try:
                client.images.remove(image_id, force=True, noprune=False)
                removed["images"] += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                still.append(image_id)
        if not still or len(still) == len(pending):
            break
        pending = still
    return removed


def leftovers(
    client: docker.DockerClient, label: str, images_before: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """What is still there with ``label`` (and images added since ``images_before``)."""
    filters = _label_filter(label)
    found = {
        "containers": [c.name for c in client.containers.list(all=True, filters=filters)],
        "volumes": [v.name for v in client.volumes.list(filters=filters)],
        "networks": [n.name for n in client.networks.list(filters=filters)],
        "images": [i.short_id for i in client.images.list(all=True, filters=filters)],
    }
    if images_before is not None:
        found["images"] += sorted(set(image_ids(client)) - set(images_before))
    return {kind: names for kind, names in found.items() if names}


class LocalRegistry:
    """A throwaway registry on 127.0.0.1: Debian's ``docker-registry`` binary when it is
    installed (air-gapped CI), else the official ``registry:2`` image in a container."""

    def __init__(self, client: docker.DockerClient, port: int, labels: dict[str, str]):
        self.client, self.port, self.labels = client, port, labels
        self.process: subprocess.Popen | None = None
        self.container = None
        self.workdir: Path | None = None
        self.address = f"localhost:{port}"

    @property
    def kind(self) -> str:
        return "process docker-registry" if self.process else "container registry:2"

    def start(self, timeout: float = 20) -> LocalRegistry:
        binary = shutil.which("docker-registry")
        if binary:
            self.workdir = Path(tempfile.mkdtemp(prefix="course-registry-"))
            config = self.workdir / "config.yml"
            config.write_text(
                "version: 0.1\n"
                "log:\n  level: warn\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.workdir / 'data'}\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n"
            )
            self.process = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=(self.workdir / "registry.log").open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        else:
            self.container = self.client.containers.run(
                "registry:2",
                detach=True,
                ports={"5000/tcp": ("127.0.0.1", self.port)},
                labels=self.labels,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the local registry did not answer on port {self.port}")

    @property
    def running(self) -> bool:
        if self.process:
            return self.process.poll() is None
        if self.container:
            try:
                self.container.reload()
            except docker.errors.NotFound:
                return False
            return self.container.status == "running"
        return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.container.remove(force=True, v=True)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def human_size(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.0f} MB".replace(",", " ")


def history_text(image: docker.models.images.Image) -> str:
    """Everything ``docker history --no-trunc`` and ``docker image inspect`` show."""
    buffer = io.StringIO()
    for layer in image.history():
        buffer.write(f"{layer.get('CreatedBy', '')}\n")
    buffer.write(repr(image.attrs))
    return buffer.getvalue()
