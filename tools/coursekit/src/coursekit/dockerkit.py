"""Docker helpers for the Docker notebook and its tests.

- ``cli``: runs one ``docker`` command as a student types it, prints it, and raises
  ``DockerError`` with the end of its error output when it fails;
- ``build``: ``docker build`` with BuildKit, returning which instructions ran and which
  came from the cache, and raising ``BuildError`` naming the failing instruction;
- ``build_image``: the same build through the Docker SDK (legacy builder), for the tests;
- ``run_until_healthy``: starts a container and waits for its healthcheck;
- ``cleanup`` / ``leftovers``: removes (or lists) what carries a label, and the images a
  run created (the legacy builder leaves one untagged image per stage).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
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

    @classmethod
    def from_plain_log(cls, dockerfile: str, log: str, tail: int = 8) -> BuildError:
        """From BuildKit's plain log: the " > [stage n/m] INSTRUCTION:" excerpt."""
        lines = log.splitlines()
        starts = [i for i, line in enumerate(lines) if _FAILED.match(line)]
        if not starts:
            errors = [line for line in lines if "ERROR" in line] or lines[-tail:]
            return cls(
                dockerfile, "(before the first step)", errors[-tail:], errors[-1]
            )
        first = starts[-1]
        step = _FAILED.match(lines[first]).group(1)
        output = []
        for line in lines[first + 1 :]:
            if line.startswith("------"):
                break
            output.append(_TIMESTAMP.sub("", line))
        error = next((line for line in reversed(lines) if line.startswith("ERROR")), "")
        return cls(dockerfile, step, output[-tail:], error)


class DockerError(RuntimeError):
    """A ``docker`` command failed: ``result`` holds its exit code and output."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess):
        self.args_, self.result = args, result
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        super().__init__(
            f"docker {shlex.join(args)} exited with {result.returncode}:\n{tail}"
        )


def cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    show: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Run ``docker <args>`` (BuildKit on), print the command line, return its result."""
    if show:
        print("$ docker", shlex.join(args))
    result = subprocess.run(
        ["docker", *args],
        cwd=cwd,
        env={**os.environ, "DOCKER_BUILDKIT": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise DockerError(list(args), result)
    return result


# BuildKit's plain progress: "#7 [builder 3/8] RUN ...", then "#7 CACHED" or "#7 DONE 1.2s".
_VERTEX = re.compile(r"^#(\d+) \[(?:[\w.-]+ )?\s*\d+/\d+\] (.+)$")
_VERTEX_END = re.compile(r"^#(\d+) (CACHED|DONE|ERROR)\b")
_FAILED = re.compile(r"^ > \[(?:[\w.-]+ )?\s*\d+/\d+\] (.+):$")
_TIMESTAMP = re.compile(r"^\d+\.\d+ ")


@dataclass
class Build:
    """What ``docker build --progress=plain`` did, instruction by instruction."""

    tag: str
    seconds: float
    steps: dict[str, str]  # instruction -> "CACHED" | "DONE"
    log: str

    @property
    def rebuilt(self) -> list[str]:
        return [s for s, state in self.steps.items() if state != "CACHED"]

    @property
    def cached(self) -> list[str]:
        return [s for s, state in self.steps.items() if state == "CACHED"]


def parse_plain_progress(log: str) -> dict[str, str]:
    """Instructions (FROM excluded) and how each ended, from BuildKit's plain log."""
    names: dict[str, str] = {}
    states: dict[str, str] = {}
    for line in log.splitlines():
        if match := _VERTEX.match(line):
            names[match.group(1)] = match.group(2)
        elif (match := _VERTEX_END.match(line)) and match.group(1) in names:
            states[match.group(1)] = match.group(2)
    return {
        name: states.get(vertex, "?")
        for vertex, name in names.items()
        if not name.startswith("FROM ")
    }


def build(
    dockerfile: str,
    context: str,
    tag: str,
    *,
    cwd: Path,
    build_args: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    show: bool = True,
) -> Build:
    """``docker build`` with BuildKit; raise BuildError naming the failing instruction."""
    args = ["build", "--progress=plain", "-f", dockerfile, "-t", tag, *options]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    start = time.perf_counter()
    result = cli(*args, context, cwd=cwd, env=env, check=False, show=show)
    seconds = time.perf_counter() - start
    log = result.stderr + result.stdout
    if result.returncode != 0:
        raise BuildError.from_plain_log(dockerfile, log)
    # BuildKit runs independent stages in parallel: report steps in Dockerfile order.
    text = (Path(cwd) / dockerfile).read_text()

    def position(step: str) -> int:
        found = text.find(step.split("  && ")[0])
        return found if found >= 0 else len(text)

    steps = parse_plain_progress(log)
    ordered = dict(sorted(steps.items(), key=lambda item: position(item[0])))
    return Build(tag, seconds, ordered, log)


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
    """Start a detached container and wait until its healthcheck says healthy;
    return it and the seconds that took."""
    start = time.perf_counter()
    container = client.containers.run(image, detach=True, **run_kwargs)
    return container, wait_healthy(container, timeout) - start


def wait_healthy(container, timeout: float = 90) -> float:
    """Wait until ``container``'s healthcheck says healthy; return that moment
    (``time.perf_counter()``). Raise with its last log lines if it never does."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return time.perf_counter()
        if state["Status"] in {"exited", "dead"}:
            break
        time.sleep(0.2)
    logs = container.logs(tail=20).decode(errors="replace")
    raise RuntimeError(
        f"container {container.name} not healthy after {timeout:.0f} s "
        f"(status {container.status}); last log lines:\n{logs}"
    )


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
    new = (
        set(image_ids(client)) - set(images_before)
        if images_before is not None
        else set()
    )
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
        "containers": [
            c.name for c in client.containers.list(all=True, filters=filters)
        ],
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
    """A size in mebibytes, as the book writes them: "558 Mio"."""
    return f"{n_bytes / 2**20:,.0f} Mio".replace(",", "\u202f")


def history_text(image: docker.models.images.Image) -> str:
    """Everything ``docker history --no-trunc`` and ``docker image inspect`` show."""
    buffer = io.StringIO()
    for layer in image.history():
        buffer.write(f"{layer.get('CreatedBy', '')}\n")
    buffer.write(repr(image.attrs))
    return buffer.getvalue()


def cleanup_after_exit(
    label: str,
    images_before: Iterable[str] | None = None,
    compose: list[str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Register, with ``atexit``, a cleanup that outlives the notebook's kernel.

    A kernel that is shut down (a failed cell under nbval or ``make notebooks``) gets a
    few seconds before it is killed: too few to remove a compose stack and images. The
    exit handler only starts a detached ``python -m coursekit.dockerkit`` that does the
    work; that process does not carry the notebook guard's marker, since it ends itself.
    """
    import atexit
    import json
    import sys

    state = Path(tempfile.mkdtemp(prefix="course-docker-cleanup-")) / "state.json"
    state.write_text(
        json.dumps(
            {
                "label": label,
                "images_before": sorted(images_before or []),
                "compose": compose or [],
                "cwd": str(cwd or Path.cwd()),
            }
        )
    )

    def start_cleaner() -> None:
        env = {k: v for k, v in os.environ.items() if k != "COURSE_NBVAL_RUN"}
        subprocess.Popen(
            [sys.executable, "-m", "coursekit.dockerkit", str(state)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    atexit.register(start_cleaner)


def _clean_from_state(path: Path) -> None:
    import json

    state = json.loads(path.read_text())
    if state["compose"]:
        subprocess.run(
            ["docker", *state["compose"], "down", "-v", "--remove-orphans"],
            cwd=state["cwd"],
            capture_output=True,
        )
    client = docker.from_env(timeout=120)
    cleanup(client, state["label"], state["images_before"])
    shutil.rmtree(path.parent, ignore_errors=True)


if __name__ == "__main__":
    import sys

    _clean_from_state(Path(sys.argv[1]))
