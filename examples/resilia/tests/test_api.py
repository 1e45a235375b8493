import json
import logging
import re
from datetime import date, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from coursekit.runner import free_port
from resilia.config import load_settings
from resilia.data import generate_customers
from resilia.model import predict_churn_proba, risk_band
from resilia.schema import EXAMPLE_CUSTOMER
from resilia.serving.app import create_app
from resilia.serving.feature_store import create_feature_store

VALID = EXAMPLE_CUSTOMER


@pytest.fixture
def client(trained):
    """The API, with its feature store URL on a port where nothing listens."""
    store = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(
        "dev", environ={}, overrides={"feature_store": {"url": store}}
    )
    with TestClient(create_app(settings, *trained)) as client:
        yield client


def test_predict_returns_a_probability(client):
    response = client.post("/predict", json=VALID)
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "C000042"
    assert 0 <= body["churn_probability"] <= 1
    assert body["risk_band"] in {"low", "medium", "high"}
    assert response.headers["X-Request-ID"]


def test_predict_answers_the_model_probability_and_its_band(client, trained):
    """Functional test: the content of the answer, not only its shape.

    A service answering a constant 0.5, or a band that ignores the probability,
    passes the test above; it fails this one.
    """
    pipeline, report = trained
    customers = generate_customers(40, seed=3)
    records = json.loads(
        customers[list(VALID)].to_json(orient="records", date_format="iso")
    )
    expected = predict_churn_proba(pipeline, customers)
    bands = set()
    for record, proba in zip(records, expected, strict=True):
        record["customer_id"] = VALID["customer_id"]
        record["birth_date"] = record["birth_date"][:10]
        record["signup_date"] = record["signup_date"][:10]
        body = client.post("/predict", json=record).json()
        assert body["churn_probability"] == pytest.approx(proba, abs=1e-6)
        assert body["risk_band"] == risk_band(body["churn_probability"])
        assert body["model_version"] == client.app.state.api.model_version
        bands.add(body["risk_band"])
    assert bands == {"low", "medium", "high"}, "these customers should cover every band"


def test_a_hex_request_id_is_propagated(client):
    request_id = "0af7651916cd43dd8448eb211c80319c"
    response = client.post("/predict", json=VALID, headers={"X-Request-ID": request_id})
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [b"jane.doe@example.org", b"\xe9t\xe9-2026-0001", b"a" * 65, b"ab\tcd-ef01"],
)
def test_any_other_request_id_is_replaced(client, request_id):
    response = client.post("/predict", json=VALID, headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"].encode() != request_id


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"postcode": "6900"}, "postcode", "pattern"),
        ({"plan": "gold"}, "plan", "'essentiel', 'confort' or 'premium'"),
        ({"monthly_fee": -3}, "monthly_fee", "greater than or equal to 0"),
        ({"birth_date": "2020-01-01"}, "birth_date", "age must be between 16 and 110"),
        ({"signup_date": "2031-01-01"}, "signup_date", "must be between"),
        ({"rides_last_month": "many"}, "rides_last_month", "valid integer"),
        ({"surname": "Martin"}, "surname", "Extra inputs are not permitted"),
    ],
)
def test_bad_field_is_a_422_naming_field_and_reason(client, change, field, reason):
    response = client.post("/predict", json={**VALID, **change})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(e["field"] == field and reason in e["message"] for e in errors), errors


def test_missing_field_is_named(client):
    body = {k: v for k, v in VALID.items() if k != "plan"}
    errors = client.post("/predict", json=body).json()["detail"]
    assert errors == [{"field": "plan", "message": "Field required"}]


def test_malformed_json_is_a_422(client):
    response = client.post(
        "/predict", content=b'{"plan": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "body"


def test_errors_never_echo_submitted_values(client):
    response = client.post("/predict", json={**VALID, "postcode": "secret-75001"})
    assert "secret-75001" not in response.text


def test_service_survives_bad_input(client):
    for payload in ([], "x", {"plan": None}, {**VALID, "monthly_fee": 1e308}):
        assert client.post("/predict", json=payload).status_code == 422
    assert client.post("/predict", json=VALID).status_code == 200


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded"]
)
def test_a_body_that_is_not_json_is_a_415(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/predict", content=json.dumps(VALID), headers=headers)
    assert response.status_code == 415
    assert response.json() == {"detail": "the body must be application/json"}


def test_a_big_body_is_a_413_before_being_parsed(client, dev_settings):
    big = b'{"plan": "' + b"x" * (dev_settings.api.max_body_bytes + 1) + b'"}'
    headers = {"content-type": "application/json"}
    response = client.post("/predict", content=big, headers=headers)
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is too large"}

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(64):
            yield b" " * 1024

    response = client.post("/predict", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert response.json() == {"detail": "the body is too large"}

    def small():  # a chunked body within the limit reaches the application whole
        yield json.dumps(VALID)[:20].encode()
        yield json.dumps(VALID)[20:].encode()

    assert client.post("/predict", content=small(), headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"plan": "\xff\xfe"}', "the body is not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "the JSON body is nested too deeply"),
    ],
)
def test_unparsable_bodies_are_a_400_with_the_reason(client, body, reason):
    headers = {"content-type": "application/json"}
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"detail": reason}


def test_no_redirect_built_from_the_host_header(client):
    response = client.post(
        "/predict/",
        json=VALID,
        headers={"Host": "evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 404
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "customer_id",
    ["C000042%0A", "%0A", "C000%0042", "C000042%09", "C000042%3Fx", "C000042%23zzz",
     "%D9%A6%D9%A9%D9%A0%D9%A0%D9%A3%D9%A1", "c000042", "C0000420"],
)  # fmt: skip
def test_customer_id_is_validated_before_any_call(client, customer_id):
    response = client.get(f"/customers/{customer_id}/churn")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "customer_id"


def test_readiness_without_feature_store_is_degraded_not_down(client):
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["feature_store"] == "down"
    # Only the endpoint that needs the store fails, and says when to retry.
    assert client.post("/predict", json=VALID).status_code == 200
    known = client.get("/customers/C000001/churn")
    assert known.status_code == 503
    assert known.json()["detail"] == "feature store unavailable"
    assert known.headers["Retry-After"] == "1"


def test_metrics_expose_red_and_model_series(client):
    client.post("/predict", json=VALID)
    client.post("/predict", json={**VALID, "plan": "gold"})
    text = client.get("/metrics").text
    assert (
        'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    )
    assert (
        'http_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    )
    assert (
        'http_request_duration_seconds_bucket{le="0.05",method="POST",route="/predict"}'
        in text
    )
    assert "resilia_predictions_total{risk_band=" in text
    assert "resilia_churn_probability_count 1.0" in text
    assert 'resilia_model_info{environment="dev"' in text
    assert 'http_requests_shed_total{reason="overloaded"} 0.0' in text


def test_openapi_schema_documents_every_status(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {
        "/predict",
        "/customers/{customer_id}/churn",
        "/health/live",
        "/health/ready",
    } <= set(paths)
    customer = schema["components"]["schemas"]["Customer"]
    assert customer["properties"]["postcode"]["pattern"] == r"^[0-9]{5}$"
    assert set(paths["/predict"]["post"]["responses"]) >= {
        "200",
        "400",
        "413",
        "415",
        "422",
        "500",
        "503",
    }
    known = paths["/customers/{customer_id}/churn"]["get"]["responses"]
    assert set(known) >= {"200", "404", "422", "500", "502", "503"}
    problem = known["422"]["content"]["application/json"]["schema"]["$ref"]
    assert problem.endswith("/ValidationProblem")


def test_uninstrumented_app_serves_without_metrics(trained):
    settings = load_settings("dev", environ={"RESILIA_API__INSTRUMENTED": "false"})
    with TestClient(create_app(settings, *trained)) as client:
        assert client.post("/predict", json=VALID).status_code == 200
        assert "http_requests_total{" not in client.get("/metrics").text


def test_feature_store_serves_only_model_columns(dev_settings, trained):
    with TestClient(create_feature_store(dev_settings)) as client:
        record = client.get("/customers/C000001").json()
        assert "email" not in record and "last_name" not in record
        missing = client.get("/customers/C999999")
        assert missing.status_code == 404 and "C999999" not in missing.text
        assert client.get("/customers/C000001%0A").status_code == 422
        assert (
            client.get("/health/ready").json()["customers"]
            == dev_settings.data.n_customers
        )
        text = client.get("/metrics").text
    # What the feature store returns is a valid API request body: post it.
    assert set(record) == set(VALID)
    api = load_settings("dev", environ={})
    with TestClient(create_app(api, *trained)) as client:
        scored = client.post("/predict", json=record)
    assert scored.status_code == 200, scored.text
    assert scored.json()["customer_id"] == "C000001"
    # The store serves records: it has no model series to export.
    assert "resilia_predictions_total" not in text and "http_requests_total{" in text


def test_unhandled_error_is_a_500_with_request_id_and_the_service_goes_on(dev_settings):
    from resilia.serving import common
    from resilia.serving.telemetry import Telemetry

    app = FastAPI()
    common.install(app, Telemetry.for_service(dev_settings, "test", "test"))

    @app.get("/boom")
    def boom():
        raise RuntimeError("bug with jane.doe@example.org")

    request_id = "0123456789abcdef"
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": request_id})
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error", "request_id": request_id}
        assert client.get("/health/live").status_code == 200
        text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/boom",status="500"} 1.0' in text
    logging.getLogger("resilia").handlers.clear()


def test_date_patterns_of_the_schema_match_the_validators():
    """JSON Schema has no date bounds: the schema states them as patterns."""
    from resilia.schema import BIRTH_DATE_PATTERN, SIGNUP_DATE_PATTERN, Customer

    day, disagreements = date(1900, 1, 1), []
    while day < date(2031, 1, 1):
        for field, pattern in (
            ("birth_date", BIRTH_DATE_PATTERN),
            ("signup_date", SIGNUP_DATE_PATTERN),
        ):
            try:
                Customer.model_validate({**VALID, field: day.isoformat()})
                accepted = True
            except ValidationError:
                accepted = False
            if accepted != bool(re.fullmatch(pattern, day.isoformat())):
                disagreements.append((field, day))
        day += timedelta(days=1)
    assert disagreements == []


def test_json_numbers_that_are_whole_count_as_integers(client):
    response = client.post("/predict", json={**VALID, "rides_last_month": 3.0})
    assert response.status_code == 200
    assert (
        client.post("/predict", json={**VALID, "rides_last_month": 3.5}).status_code
        == 422
    )


def test_exported_spans_keep_only_safe_attributes(trained):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from resilia.serving.tracing import SAFE_ATTRIBUTES

    exporter = InMemorySpanExporter()
    store = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(
        "dev", environ={}, overrides={"feature_store": {"url": store}}
    )
    app = create_app(settings, *trained, span_exporter=exporter)
    personal = {"User-Agent": "jane.doe@example.org"}
    with TestClient(app) as client:
        client.post("/predict?email=jane.doe@example.org", json=VALID, headers=personal)
        client.get("/customers/C000042/churn?name=jane", headers=personal)
    spans = exporter.get_finished_spans()  # the lifespan's end flushed them
    assert {s.name for s in spans} >= {"score", "fetch_features", "POST /predict"}
    for span in spans:
        assert "jane" not in json.dumps(dict(span.attributes)) + span.name
        assert "C000042" not in json.dumps(dict(span.attributes)) + span.name
        unsafe = {k for k in span.attributes if not k.startswith("resilia.")}
        assert unsafe <= SAFE_ATTRIBUTES


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 33 + b"]" * 33, True),
        (b'{"a":' * 40 + b"1" + b"}" * 40, True),
        (b"[" * 32 + b"]" * 32, False),
        (b'{"plan": "' + b"[" * 500 + b'"}', False),  # brackets inside a string
        (b'{"plan": "\\"' + b"[" * 500 + b'"}', False),  # after an escaped quote
    ],
)
def test_json_depth_has_one_limit_on_every_python(body, deep):
    from resilia.serving.common import MAX_JSON_DEPTH, check_json_depth

    assert MAX_JSON_DEPTH == 32
    if deep:
        with pytest.raises(RecursionError):
            check_json_depth(body)
    else:
        check_json_depth(body)


def test_a_body_just_past_the_depth_limit_is_a_400(client):
    body = b'{"customer_id": ' + b"[" * 40 + b"]" * 40 + b"}"
    response = client.post(
        "/predict", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "the JSON body is nested too deeply"
