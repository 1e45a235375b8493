"""The security chapter: the secret scanner over the repository and the stored notebook
outputs, the nginx gateway as root and unprivileged, and the page's claims that the
notebook does not check (the notebook itself runs under nbval)."""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from coursekit import nginx
from coursekit.policy import unavailable
from coursekit.runner import free_port
from tests.helpers import ROOT

ALLOWLIST = ROOT / "examples" / "securite" / "secrets-allowlist.toml"
TEMPLATE = ROOT / "examples" / "securite" / "nginx" / "nginx.conf.template"
# Figures stored in notebook outputs are base64 PNGs: high entropy, not secrets.
NOT_SCANNED = r'"image/(png|jpeg|gif|svg\+xml)": "'


def allowlist() -> list[dict]:
    return tomllib.loads(ALLOWLIST.read_text())["finding"]


def scan() -> dict[str, list[dict]]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        unavailable("the secret scan needs a git checkout (it scans tracked files)")
    detect = Path(sys.executable).parent / "detect-secrets"
    run = subprocess.run(
        [str(detect), "scan", "--exclude-lines", NOT_SCANNED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)["results"]


def test_no_secret_in_the_repository_or_the_notebook_outputs():
    accepted = {(f["path"], f["type"], f["hashed_secret"]) for f in allowlist()}
    unexpected = [
        f"{path}:{finding['line_number']} ({finding['type']})"
        for path, findings in scan().items()
        for finding in findings
        if (path, finding["type"], finding["hashed_secret"]) not in accepted
    ]
    assert not unexpected, (
        "possible secrets (remove them, or explain them in "
        f"{ALLOWLIST.relative_to(ROOT)}): " + ", ".join(unexpected)
    )


def test_each_accepted_finding_says_why():
    for finding in allowlist():
        assert len(finding.get("reason", "")) > 20, finding
        assert (ROOT / finding["path"]).is_file(), finding["path"]


def test_the_scanner_finds_a_planted_secret(tmp_path):
    (tmp_path / "settings.env").write_text(
        "DATABASE_URL=postgresql://app:Zq8-rT4vX2mP9kL@db:5432/app\n"
    )
    detect = Path(sys.executable).parent / "detect-secrets"
    run = subprocess.run(
        [str(detect), "scan", "--all-files", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(run.stdout)["results"]["settings.env"]


def test_the_local_ca_keeps_its_key_private_and_names_a_bad_host_name(tmp_path):
    from coursekit.tls import local_ca

    paths = local_ca(tmp_path, "localhost")
    assert paths.key_path.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN CERTIFICATE" in paths.cert_path.read_bytes()
    with pytest.raises(ValueError, match="no certificate for .*'bad host'"):
        local_ca(tmp_path / "bad", "bad host")


@pytest.mark.parametrize("user", ["current", "nobody"])
def test_nginx_gateway_runs_as_root_and_unprivileged(tmp_path, user):
    import httpx

    from coursekit.tls import local_ca

    if nginx.nginx_binary() is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    as_user = None
    if user == "nobody":
        if os.geteuid() != 0:
            pytest.skip("already unprivileged: the 'current' case covers it")
        if shutil.which("runuser") is None:
            unavailable("runuser is missing (util-linux)")
        as_user = "nobody"
        for parent in [tmp_path, *tmp_path.parents]:
            if str(parent) in ("/", "/tmp"):
                break
            os.chmod(parent, parent.stat().st_mode | 0o711)
    prefix = tmp_path / "nginx"
    tls = local_ca(prefix / "tls")
    gateway = nginx.Nginx(
        TEMPLATE,
        prefix,
        upstreams=[free_port()],
        cert=tls.cert_path,
        key=tls.key_path,
        as_user=as_user,
    )
    with gateway:
        https = httpx.Client(verify=ssl.create_default_context(cafile=tls.ca_path))
        statuses = [
            httpx.get(gateway.http + "/x").status_code,
            https.get(gateway.https + "/metrics").status_code,
            https.post(gateway.https + "/predict", content=b"x" * 9000).status_code,
            https.get(gateway.https + "/health/live").status_code,
        ]
    # redirect, internal route hidden, body too large, no upstream listening (502)
    assert statuses == [301, 404, 413, 502]
    assert not gateway.running


def test_the_template_keeps_the_rules_the_page_describes():
    text = TEMPLATE.read_text()
    for rule in [
        "listen 127.0.0.1:@HTTPS_PORT@ ssl",
        "return 301 https://",
        "client_max_body_size 8k",
        "limit_req_status 429",
        "Strict-Transport-Security",
        "server_tokens off",
        "proxy_next_upstream error timeout",
        "daemon off",
    ]:
        assert rule in text, rule
    assert "listen 80" not in text and "0.0.0.0" not in text
