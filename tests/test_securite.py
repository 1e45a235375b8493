"""The security chapter: the secret scanner over the repository and the stored notebook
outputs, the nginx gateway as root and unprivileged, the firewall's ruleset and the
network namespaces it is shown in, and the page's claims that the notebook does not
check (the notebook itself runs under nbval)."""

import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from coursekit import netns, nginx
from coursekit.policy import missing_capabilities, unavailable
from coursekit.runner import free_port
from tests.helpers import ROOT

ALLOWLIST = ROOT / "examples" / "securite" / "secrets-allowlist.toml"
TEMPLATE = ROOT / "examples" / "securite" / "nginx" / "nginx.conf.template"
RULESET = ROOT / "examples" / "securite" / "firewall.nft"
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


# --- the firewall (nftables in network namespaces) ------------------------------------


@pytest.fixture
def can_netns():
    if reason := netns.unavailable_reason():
        unavailable(reason)


def namespaces() -> set[str]:
    listing = subprocess.run(
        [netns.tool("ip"), "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def test_the_ruleset_parses(can_netns):
    check = subprocess.run(
        [*netns.privileged(), netns.tool("nft"), "-c", "-f", str(RULESET)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_the_ruleset_matches_the_namespaces_and_the_page():
    text = RULESET.read_text()
    client_net = re.search(r"define CLIENT_NET = (\S+)", text)[1]
    assert ipaddress.ip_address(netns.NetnsPair.CLIENT_ADDRESS) in ipaddress.ip_network(
        client_net
    )
    assert re.search(r"define API_PORT = 8000\b", text)
    assert "policy drop;" in text and "ct state established,related accept" in text
    assert "flush ruleset" not in text  # loaded by hand on a host, it would wipe it


def test_namespaces_are_deleted_even_when_the_body_raises(can_netns, tmp_path):
    seen = {}

    def body_that_fails():
        with netns.NetnsPair() as lab, netns.NetnsPair() as other:
            seen["names"] = {*lab.names.values(), *other.names.values()}
            seen["listed"] = namespaces()
            seen["sleeper"] = lab.start(
                "server", "sleeper", ["sleep", "60"], log_path=tmp_path / "sleep.log"
            )
            seen["stray"] = subprocess.Popen(lab.command("client", ["sleep", "60"]))
            url = f"http://{lab.addresses['server']}:9/"
            seen["probe"] = lab.run("client", "curl", "-sS", url, check=False)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        body_that_fails()
    names = seen["names"]
    assert len(names) == 4 and names <= seen["listed"]  # unique names, all created
    assert "Couldn't connect" in seen["probe"].stderr  # the cable works: refused
    assert not names & namespaces()
    assert not seen["sleeper"].running
    assert seen["stray"].wait(5) == -9  # killed: it would have kept its namespace


def test_nothing_is_left_when_creation_fails_midway(can_netns):
    class BadAddress(netns.NetnsPair):
        CLIENT_ADDRESS = "10.77.0.300"

    lab = BadAddress()
    with pytest.raises(netns.NetnsError, match="10.77.0.300"):
        lab.create()
    assert not set(lab.names.values()) & namespaces()


def test_namespaces_of_a_killed_run_are_removed_by_the_next(can_netns):
    orphan = f"{netns.NAME_PREFIX}999999999-dead00-server"  # above any pid_max
    add = [*netns.privileged(), netns.tool("ip"), "netns", "add", orphan]
    subprocess.run(add, check=True)
    with netns.NetnsPair():
        assert orphan not in namespaces()


def test_a_broken_ruleset_names_the_file_and_nft_s_message(can_netns, tmp_path):
    broken = tmp_path / "broken.nft"
    broken.write_text(RULESET.read_text().replace("policy drop;", "policy dorp;"))
    with netns.NetnsPair() as lab:
        with pytest.raises(netns.RulesetError) as error:
            lab.load_ruleset("server", broken)
        missing = tmp_path / "missing.nft"
        with pytest.raises(netns.RulesetError, match="no such ruleset file") as absent:
            lab.load_ruleset("server", missing)
        with pytest.raises(ValueError, match="unknown namespace"):
            lab.run("router", "true")
    message = str(error.value)
    assert str(broken) in message and "Error:" in message and "dorp" in message
    assert str(missing) in str(absent.value)


def test_an_unknown_capability_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown capability 'CAP_NET_ADMN'"):
        missing_capabilities(["CAP_NET_ADMN"])
