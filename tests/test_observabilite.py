"""The observability chapter's configuration files and the two-process service."""

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from fastapi.testclient import TestClient
from resilia_observabilite.faults import Services, run_sequence

from coursekit.checkpoint import regions, stub_regions
from coursekit.policy import require_tools, unavailable
from coursekit.runner import free_port
from resilia.config import load_settings
from resilia.data import request_payloads
from resilia.schema import EXAMPLE_CUSTOMER
from resilia.serving.app import create_app
from resilia.serving.feature_store import create_feature_store
from tests.helpers import ROOT

RESILIA = str(
    Path(sys.executable).parent / "resilia"
)  # the venv's command, PATH or not
EXAMPLES = ROOT / "examples" / "observabilite"
PROMETHEUS = EXAMPLES / "prometheus"
RULES = PROMETHEUS / "rules"
DASHBOARD = EXAMPLES / "grafana" / "dashboards" / "resilia-overview.json"
PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "avg", "max",
    "min", "count", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
}  # fmt: skip


def test_prometheus_config_is_valid():
    require_tools("promtool", why="sudo bash .ci/trixie-tools observability")
    result = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=PROMETHEUS, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerting_rules_pass_their_unit_tests():
    require_tools("promtool", why="sudo bash .ci/trixie-tools observability")
    result = subprocess.run(
        ["promtool", "test", "rules", "resilia.rules.test.yml"],
        cwd=RULES, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test():
    # An alert written in an exercise region is unit-tested by the exercise's check
    # (promtool, three situations), which nbval runs from both sides.
    text = (RULES / "resilia.rules.yml").read_text()
    outside = stub_regions(text, ids=set(regions(text)))
    rules = yaml.safe_load(outside)
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((RULES / "resilia.rules.test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in tests for t in case.get("alert_rule_test", [])}
    firing = {
        t["alertname"]
        for case in tests
        for t in case.get("alert_rule_test", [])
        if t["exp_alerts"]
    }
    assert alerts == tested == firing


def test_alertmanager_config_is_valid():
    require_tools("amtool", why="sudo bash .ci/trixie-tools observability")
    result = subprocess.run(
        ["amtool", "check-config", "alertmanager/alertmanager.yml"],
        cwd=EXAMPLES, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _exposed_names(trained):
    """Metric names the API and the feature store expose, plus recording rules and `up`."""
    settings = load_settings("dev", environ={})
    names = {"up"}
    with TestClient(create_app(settings, *trained)) as api:
        api.post("/predict", json=request_payloads(1)[0])
        api.get("/customers/C000001/churn")
        texts = [api.get("/metrics").text]
    with TestClient(create_feature_store(settings)) as store:
        store.get("/customers/C000001")
        texts.append(store.get("/metrics").text)
    for text in texts:
        names |= {
            line.split("{")[0].split(" ")[0]
            for line in text.splitlines()
            if line[:1] != "#"
        }
    rules = yaml.safe_load((RULES / "resilia.rules.yml").read_text())
    names |= {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    return names


def _metric_names(expr):
    expr = re.sub(r'"[^"]*"', "", expr)  # label values
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # matchers and ranges
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)  # grouping labels
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return words - PROMQL_WORDS


def test_dashboard_queries_name_only_exposed_metrics(trained):
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 8
    exposed = _exposed_names(trained)
    used = set().union(*map(_metric_names, exprs))
    assert used, "no metric found in the dashboard queries"
    assert used <= exposed, f"not exposed by the service: {sorted(used - exposed)}"


def test_dashboard_uses_the_provisioned_datasource():
    datasource = yaml.safe_load(
        (
            EXAMPLES / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
        ).read_text()
    )["datasources"][0]
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}


PERSONAL = "jane.doe@example.org"
"""Personal data sent in every part of the requests; it must come out nowhere."""


@pytest.fixture
def two_services(tmp_path, dev_model_path):
    """The feature store and the API as two real processes on free ports, each with
    a log file and a span file."""
    env = {
        "RESILIA_ARTIFACTS_DIR": str(dev_model_path.parent),
        "RESILIA_LOG_LEVEL": "DEBUG",
        "RESILIA_TRACING__EXPORT_PATH": str(tmp_path / "spans.jsonl"),
        "RESILIA_LOGGING__FILE": str(tmp_path / "service.log"),
    }
    with Services(tmp_path, env) as services:
        yield services


def _spans(tmp_path):
    return [
        json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()
    ]


def test_trace_context_crosses_the_two_processes(two_services, tmp_path):
    request_id = "5f0c6b1e9a7d4c3b"
    response = httpx.get(
        f"{two_services.url}/customers/C000007/churn",
        headers={"X-Request-ID": request_id},
        timeout=5,
    )
    assert response.status_code == 200
    two_services.api.stop()  # a graceful stop flushes the spans
    two_services.store.stop()
    spans = _spans(tmp_path)
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
        assert f"[{request_id}]" in (tmp_path / f"{name}.out").read_text()
    # Spans keep the route, never the URL: the customer id is nowhere.
    assert "C000007" not in json.dumps(spans)
    assert server["attributes"]["http.route"] == "/customers/{customer_id}"


def test_no_personal_data_in_logs_or_spans_of_either_process(two_services, tmp_path):
    """Personal data in the path, the query string, User-Agent, X-Request-ID and the
    body, at DEBUG level, through both processes: none of it is written out."""
    headers = {"User-Agent": f"mail {PERSONAL}", "X-Request-ID": PERSONAL}
    with httpx.Client(base_url=two_services.url, headers=headers, timeout=5) as client:
        answers = [
            client.get(f"/customers/C000007/churn?email={PERSONAL}"),
            client.get(f"/customers/{PERSONAL}/churn"),
            client.get(f"/{PERSONAL}"),
            client.post(f"/predict?name={PERSONAL}", json=EXAMPLE_CUSTOMER),
            client.post("/predict", json={**EXAMPLE_CUSTOMER, "email": PERSONAL}),
            client.post("/predict", json={**EXAMPLE_CUSTOMER, "postcode": PERSONAL}),
        ]
    store_url = str(two_services.settings.feature_store.url).rstrip("/")
    answers.append(httpx.get(f"{store_url}/customers/{PERSONAL}", headers=headers))
    answers.append(
        httpx.get(f"{store_url}/customers/C999999?q={PERSONAL}", headers=headers)
    )
    assert [a.status_code for a in answers] == [200, 422, 404, 200, 422, 422, 422, 404]
    assert not any(PERSONAL in a.text for a in answers)
    two_services.api.stop()
    two_services.store.stop()
    written = {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}
    assert {"api.out", "feature-store.out", "service.log", "spans.jsonl"} <= set(
        written
    )
    assert "GET /customers/{customer_id}/churn 200" in written["service.log"]
    assert len(_spans(tmp_path)) >= 5
    for name, text in written.items():
        for secret in ("jane", "example.org", "C000007", "C999999"):
            assert secret not in text, f"{secret} written in {name}"


def test_readiness_stays_up_without_the_feature_store(two_services):
    """The store down: /predict still serves, the churn route answers 503 at once
    with Retry-After, readiness says degraded but keeps the replica in service."""
    url = two_services.url
    ready = httpx.get(f"{url}/health/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    two_services.store.stop()
    known = httpx.get(f"{url}/customers/C000007/churn", timeout=5)
    assert known.status_code == 503 and known.headers["Retry-After"] == "1"
    assert (
        httpx.post(f"{url}/predict", json=EXAMPLE_CUSTOMER, timeout=5).status_code
        == 200
    )
    ready = httpx.get(f"{url}/health/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json() | {"model": None} == {
        "status": "degraded",
        "model": None,
        "feature_store": "down",
    }
    two_services.store.start()
    assert httpx.get(f"{url}/health/ready", timeout=5).json()["status"] == "ready"
    assert httpx.get(f"{url}/customers/C000007/churn", timeout=5).status_code == 200


def test_store_hung_resumed_killed_restarted_under_bursts(tmp_path, dev_model_path):
    """The sequence that once jammed the client's pool for 18 minutes."""
    env = {"RESILIA_ARTIFACTS_DIR": str(dev_model_path.parent)}
    with Services(tmp_path, env) as services:
        run = asyncio.run(run_sequence(services, size=150))
        metrics = httpx.get(f"{services.url}/metrics", timeout=5).text
    print(run.summary())
    assert run.ok, run.summary()
    phases = {b.phase: b for b in run.bursts}
    assert phases["hung"].statuses[503] == 150  # nothing hangs, nothing succeeds
    assert phases["killed"].statuses[503] == 150
    assert 'resilia_feature_store_requests_total{outcome="timeout"}' in metrics


def test_service_refuses_to_start_without_a_model(tmp_path):
    result = subprocess.run(
        [RESILIA, "serve", "--port", str(free_port())],
        env={"PATH": subprocess.os.environ["PATH"], "RESILIA_ARTIFACTS_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no model file" in result.stderr and "Traceback" not in result.stderr


def test_two_workers_share_the_port_and_sum_their_metrics(tmp_path, dev_model_path):
    env = {
        "RESILIA_ARTIFACTS_DIR": str(dev_model_path.parent),
        "RESILIA_API__WORKERS": "2",
    }
    with Services(tmp_path, env) as services:
        api_pid = services.api.process.pid
        workers = [
            p
            for p in psutil.Process(api_pid).children()
            if "spawn_main" in " ".join(p.cmdline())
        ]
        with httpx.Client(base_url=services.url, timeout=5) as client:
            for _ in range(40):  # new connections, spread over the workers
                response = client.post(
                    "/predict", json=EXAMPLE_CUSTOMER, headers={"Connection": "close"}
                )
                assert response.status_code == 200
            metrics = client.get("/metrics").text
    assert len(workers) == 2
    assert "resilia_churn_probability_count 40.0" in metrics


# --- The schema drives a fuzzer against the real services, every check on --------
# Schemathesis generates valid and invalid requests from /openapi.json and checks that
# no answer is a 500, that every status, header and body is one the schema documents,
# that valid data is accepted and invalid data rejected.

try:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import CHECKS, load_all_checks
except ImportError:  # the notebooks' kernel on Onyxia has no fuzzer
    schemathesis = None

MUST_FUZZ = {
    "api": {"POST /predict", "GET /customers/{customer_id}/churn"},
    "feature store": {"GET /customers/{customer_id}"},
}


@pytest.fixture(scope="module")
def all_checks():
    if schemathesis is None:
        unavailable("schemathesis is not installed (requirements/test.in)")
    load_all_checks()
    return CHECKS.get_all()


@pytest.fixture(scope="module")
def fuzzed_services(tmp_path_factory, dev_model_path, all_checks):
    env = {"RESILIA_ARTIFACTS_DIR": str(dev_model_path.parent)}
    with Services(tmp_path_factory.mktemp("schemathesis"), env) as services:
        yield services


def test_every_check_is_on(all_checks):
    names = {getattr(c, "__name__", type(c).__name__) for c in all_checks}
    expected = {
        "not_a_server_error",
        "positive_data_acceptance",
        "negative_data_rejection",
    }
    assert expected <= names and len(all_checks) >= 14


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("target", list(MUST_FUZZ))
def test_the_services_do_what_their_schema_says(
    fuzzed_services, all_checks, target, mode
):
    services = fuzzed_services
    url = services.url if target == "api" else str(services.settings.feature_store.url)
    schema = schemathesis.openapi.from_url(f"{url.rstrip('/')}/openapi.json")
    generation_mode = schemathesis.GenerationMode(mode)
    fuzzed = set()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=generation_mode))
        @settings(
            max_examples=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(checks=all_checks)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameter, no body)
            assert mode == "negative", operation.label
            continue
        fuzzed.add(operation.label)
    assert MUST_FUZZ[target] <= fuzzed
