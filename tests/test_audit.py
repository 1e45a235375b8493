"""The security audit chapter: bandit, checkov and pip-audit over what the book ships.

Accepted findings are skipped next to their line with a reason (``# nosec <id>``,
``checkov:skip=<id>: reason``); these tests fail on any new finding, and on a skip
that gives no reason.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from coursekit.policy import unavailable
from tests.helpers import ROOT

BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
PRODUCT = ["examples/resilia/src", "examples/spark/resilia_spark"]
# The Docker chapter's counter-example: its faults are the lesson.
COUNTER_EXAMPLES = {"examples/docker/Dockerfile.naive"}
LOCKS = ["requirements/kernel.txt", "requirements/dev.txt"]


def bandit(*paths):
    run = subprocess.run(
        [BIN / "bandit", "-q", "-c", "examples/audit/bandit.yaml", "-r", *paths,
         "-f", "json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(run.stdout)


def test_bandit_finds_nothing_open_in_the_product_code():
    report = bandit(*PRODUCT)
    assert report["errors"] == []
    assert [
        (r["filename"], r["line_number"], r["test_id"]) for r in report["results"]
    ] == []


def test_every_nosec_names_its_rule_and_says_why():
    for folder in PRODUCT:
        for path in (ROOT / folder).rglob("*.py"):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines, 1):
                if "# nosec" not in line:
                    continue
                where = f"{path.relative_to(ROOT)}:{number}"
                assert re.search(r"# nosec B\d{3}", line), f"{where}: no rule id"
                reason = re.search(r"# nosec B\d{3}[ B\d]*:\s*\S", line)
                above = lines[number - 2].strip() if number > 1 else ""
                assert reason or above.startswith("#"), f"{where}: no reason"


def infrastructure_files():
    """Dockerfiles and Terraform that the book ships, scanned as they are written.

    The Kubernetes manifests are not in this list: their base only exists through
    the overlays, so they are scanned as the Kubernetes chapter deploys them (see
    :func:`kubernetes_findings`).
    """
    found = [p for p in (ROOT / "examples").rglob("Dockerfile*") if p.suffix == ""]
    terraform = ROOT / "examples/devops/terraform"
    if terraform.exists():
        found += terraform.rglob("*.tf")
    return sorted(
        str(p.relative_to(ROOT))
        for p in found
        if str(p.relative_to(ROOT)) not in COUNTER_EXAMPLES
    )


def kubernetes_findings():
    """checkov on the rendered overlays, the Pod and the RBAC, by the Kubernetes
    chapter's own code (its accepted skips are annotations next to the objects)."""
    from resilia_kubernetes import manifests

    return manifests.run_checkov(
        manifests.deployable(manifests.sources()), checkov=str(CHECKOV)
    )


@pytest.fixture(scope="module")
def checkov_results():
    if not CHECKOV.exists():
        unavailable("checkov is not installed: make .venv-checkov/.done")
    files = infrastructure_files()
    run = subprocess.run(
        [CHECKOV, "--skip-download", "--compact", "-o", "json",
         *[arg for f in files for arg in ("-f", f)]],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    reports = json.loads(run.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return files, reports, kubernetes_findings()


def test_checkov_finds_nothing_open_in_the_infrastructure(checkov_results):
    files, reports, kubernetes = checkov_results
    assert "examples/docker/Dockerfile" in files
    failed = [
        (c["file_path"], c["check_id"], c["check_name"])
        for report in reports
        for c in report["results"].get("failed_checks", [])
    ]
    failed += [
        (f.source, f.check_id, f.check) for f in kubernetes if f.result == "failed"
    ]
    assert failed == []
    assert any(f.source.startswith("overlays/") for f in kubernetes), (
        "checkov must see the rendered overlays"
    )


def test_every_checkov_skip_gives_a_reason(checkov_results):
    _, reports, kubernetes = checkov_results
    skipped = [
        (c["file_path"], c["check_id"], c["check_result"].get("suppress_comment"))
        for r in reports
        for c in r["results"].get("skipped_checks", [])
    ]
    assert skipped, "the Dockerfiles have accepted findings: checkov must see them"
    skipped += [
        (f.source, f.check_id, f.reason) for f in kubernetes if f.result == "skipped"
    ]
    for where, check_id, reason in skipped:
        assert len((reason or "").strip()) > 15, f"{where} {check_id}: no reason"


def test_checkov_still_catches_the_naive_dockerfile():
    if not CHECKOV.exists():
        unavailable("checkov is not installed: make .venv-checkov/.done")
    run = subprocess.run(
        [CHECKOV, "--skip-download", "--quiet", "--compact", "-o", "json",
         "-f", "examples/docker/Dockerfile.naive"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    failed = {c["check_id"] for c in json.loads(run.stdout)["results"]["failed_checks"]}
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3"} <= failed


def test_compose_keeps_its_hardening():
    """checkov has no rules for compose files: the chapter's claims, checked here."""
    compose = yaml.safe_load((ROOT / "examples/docker/compose.yaml").read_text())
    for name, service in compose["services"].items():
        assert not service.get("privileged"), name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"
    api = compose["services"]["api"]
    assert api.get("read_only") is True and api.get("cap_drop") == ["ALL"]


def pypi_serves_versions() -> bool:
    """pip-audit asks PyPI for /pypi/<name>/<version>/json; mirrors do not serve it."""
    try:
        answer = httpx.get("https://pypi.org/pypi/pip/24.0/json", timeout=10)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


@pytest.mark.parametrize("lock", LOCKS)
def test_no_known_vulnerability_in_the_locks(lock, tmp_path):
    if not pypi_serves_versions():
        # An environment limit, not a missing tool: skipped everywhere, never a pass.
        pytest.skip(
            "PyPI's vulnerability data (/pypi/<name>/<version>/json) is unreachable "
            "from here: the dependency audit runs where pypi.org is (GitHub Actions)"
        )
    report = tmp_path / "audit.json"
    run = subprocess.run(
        [BIN / "pip-audit", "-r", lock, "--no-deps", "--disable-pip", "-s", "pypi",
         "--progress-spinner", "off", "-f", "json", "-o", report],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    dependencies = json.loads(report.read_text())["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    assert len(audited) > 0.9 * len(dependencies), run.stderr[-2000:]
    vulnerable = {
        d["name"]: [v["id"] for v in d["vulns"]] for d in audited if d["vulns"]
    }
    assert vulnerable == {}


def test_rate_limit_is_read_from_the_security_chapter_nginx_config():
    from coursekit.exercises import load_source
    from coursekit.nginx import render

    attacks = load_source("examples/audit/attacks.py")
    template = (ROOT / "examples/securite/nginx/nginx.conf.template").read_text()
    values = {name: "x" for name in ("USER", "PREFIX", "CERT", "KEY", "UPSTREAMS")} | {
        "HTTP_PORT": 1,
        "HTTPS_PORT": 2,
        "RATE": 7,
        "BURST": 3,
    }
    assert attacks.rate_limit(render(template, values)) == (7, 3)
    with pytest.raises(ValueError, match="limit_req"):
        attacks.rate_limit("events {}")
    # Leaky bucket: burst + 1 at once, then `rate` more per second.
    assert attacks.allowed_by_rate_limit(7, 3, 0.01) == (4, 5)
    assert attacks.allowed_by_rate_limit(7, 3, 2.0) == (4, 18)


def test_unsigned_token_is_refused_before_any_key_lookup():
    """``alg: none`` is refused on its header: no request to the (absent) provider."""
    from coursekit.exercises import load_source
    from resilia.serving.auth import InvalidToken, TokenValidator

    attacks = load_source("examples/audit/attacks.py")
    claims = {"iss": "http://127.0.0.1:9", "aud": "api", "sub": "x", "exp": 4e9}
    validator = TokenValidator("http://127.0.0.1:9", "api", timeout_s=0.1)
    with pytest.raises(InvalidToken, match="'none' is not accepted"):
        validator.validate(attacks.unsigned(claims))
