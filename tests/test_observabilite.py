"""The observability chapter's configuration files and the two-process service."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from coursekit.policy import require_tools
from coursekit.runner import ManagedProcess, free_port
from resilia.api import create_app
from resilia.config import load_settings
from resilia.data import request_payloads
from resilia.feature_store import create_feature_store
from resilia.model import save_model, train_from_settings
from tests.helpers import ROOT

RESILIA = str(Path(sys.executable).parent / "resilia")  # the venv's command, PATH or not
EXAMPLES = ROOT / "examples" / "observabilite"
PROMETHEUS = EXAMPLES / "prometheus"
RULES = PROMETHEUS / "rules"
DASHBOARD = EXAMPLES / "grafana" / "dashboards" / "resilia-overview.json"
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "avg", "max",
    "min", "count", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
}  # fmt: skip


def test_prometheus_config_is_valid():
    require_tools("promtool", why="sudo apt-get install prometheus")
    result = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=PROMETHEUS, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerting_rules_pass_their_unit_tests():
    require_tools("promtool", why="sudo apt-get install prometheus")
    result = subprocess.run(
        ["promtool", "test", "rules", "resilia.rules.test.yml"],
        cwd=RULES, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test():
    rules = yaml.safe_load((RULES / "resilia.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((RULES / "resilia.rules.test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case.get("alert_rule_test", [])}
    firing = {
        t["alertname"] for case in tests for t in case.get("alert_rule_test", []) if t["exp_alerts"]
    }
    assert alerts == tested == firing


def test_alertmanager_config_is_valid():
    require_tools("amtool", why="sudo apt-get install prometheus-alertmanager")
    result = subprocess.run(
        ["amtool", "check-config", "alertmanager/alertmanager.yml"],
        cwd=EXAMPLES, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _exposed_names():
    """Metric names the API and the feature store expose, plus recording rules and `up`."""
    settings = load_settings("dev", environ={})
    names = {"up"}
    with TestClient(create_app(settings, *train_from_settings(settings))) as api:
        api.post("/predict", json=request_payloads(1)[0])
        api.get("/customers/C000001/churn")
        texts = [api.get("/metrics").text]
    with TestClient(create_feature_store(settings)) as store:
        store.get("/customers/C000001")
        texts.append(store.get("/metrics").text)
    for text in texts:
        names |= {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    rules = yaml.safe_load((RULES / "resilia.rules.yml").read_text())
    names |= {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    return names


def _metric_names(expr):
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers and ranges
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)  # grouping labels
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return words - PROMQL_WORDS


def test_dashboard_queries_name_only_exposed_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    exposed = _exposed_names()
    used = set().union(*map(_metric_names, exprs))
    assert used, "no metric found in the dashboard queries"
    assert used <= exposed, f"not exposed by the service: {sorted(used - exposed)}"


def test_dashboard_uses_the_provisioned_datasource():
    datasource = yaml.safe_load(
        (EXAMPLES / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}


@pytest.fixture
def two_services(tmp_path):
    """The feature store and the API as two real processes on free ports."""
    api_port, store_port = free_port(), free_port()
    env = {
        "RESILIA_ENV": "dev",
        "RESILIA_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "RESILIA_API__PORT": str(api_port),
        "RESILIA_FEATURE_STORE__URL": f"http://127.0.0.1:{store_port}",
    }
    settings = load_settings(environ=env)
    save_model(*train_from_settings(settings), settings.model_path)
    processes = []
    for name, command, port, ready in (
        ("feature-store", "feature-store", store_port, "/health/ready"),
        ("api", "serve", api_port, "/health/ready"),
    ):
        process = ManagedProcess(
            name,
            [RESILIA, command],
            env={**env, "RESILIA_TRACING__EXPORT_PATH": str(tmp_path / f"{name}.jsonl")},
            log_path=tmp_path / f"{name}.out",
            ready_url=f"http://127.0.0.1:{port}{ready}",
            port=port,
        )
        processes.append(process.start())
    yield f"http://127.0.0.1:{api_port}", tmp_path, processes
    for process in reversed(processes):
        process.stop()


def test_trace_context_crosses_the_two_processes(two_services):
    url, tmp_path, processes = two_services
    headers = {"X-Request-ID": "trace-test-42"}
    response = httpx.get(f"{url}/customers/C000007/churn", headers=headers, timeout=5)
    assert response.status_code == 200
    for process in reversed(processes):
        process.stop()  # graceful stop flushes the spans
    spans = [
        json.loads(line)
        for name in ("api", "feature-store")
        for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()
    ]
    store = next(s for s in spans if s["name"] == "lookup_customer")
    trace = [s for s in spans if s["trace_id"] == store["trace_id"]]
    by_id = {s["span_id"]: s for s in trace}
    server = by_id[store["parent_id"]]
    assert server["service"] == "resilia-feature-store" and server["kind"] == "SERVER"
    client = by_id[server["parent_id"]]
    assert client["service"] == "resilia-api" and client["kind"] == "CLIENT"
    assert {s["service"] for s in trace} == {"resilia-api", "resilia-feature-store"}
    # The request id reached the feature store's log lines too.
    for name in ("api", "feature-store"):
        assert "[trace-test-42]" in (tmp_path / f"{name}.out").read_text()
    # Instrumentations record URLs; the customer id must not survive in any attribute.
    assert "C000007" not in json.dumps(spans)
    assert any("C******" in json.dumps(s["attributes"]) for s in trace)


def test_api_reports_the_feature_store_outage_and_recovers(two_services):
    url, _, (store, _) = two_services
    assert httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
    store.stop()
    assert httpx.get(f"{url}/customers/C000007/churn", timeout=5).status_code == 503
    assert httpx.get(f"{url}/health/ready", timeout=5).status_code == 503
    assert httpx.get(f"{url}/health/live", timeout=5).status_code == 200
    store.start()
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/health/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "API not ready again after the feature store restart"
        time.sleep(0.2)
    assert httpx.get(f"{url}/customers/C000007/churn", timeout=5).status_code == 200


def test_service_refuses_to_start_without_a_model(tmp_path):
    result = subprocess.run(
        [RESILIA, "serve", "--port", str(free_port())],
        env={"PATH": subprocess.os.environ["PATH"], "RESILIA_ARTIFACTS_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no model file" in result.stderr and "Traceback" not in result.stderr
