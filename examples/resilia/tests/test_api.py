import json

import pytest
from fastapi.testclient import TestClient

from resilia.api import EXAMPLE_CUSTOMER, create_app
from resilia.feature_store import create_feature_store

VALID = EXAMPLE_CUSTOMER


@pytest.fixture
def client(dev_settings, trained):
    with TestClient(create_app(dev_settings, *trained)) as client:
        yield client


def test_predict_returns_a_probability(client):
    response = client.post("/predict", json=VALID)
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "C000042"
    assert 0 <= body["churn_probability"] <= 1
    assert body["risk_band"] in {"low", "medium", "high"}
    assert response.headers["X-Request-ID"]


def test_request_id_is_propagated(client):
    response = client.post("/predict", json=VALID, headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


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


def test_liveness_and_readiness_without_feature_store(client):
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["detail"]["feature_store"] == "down"


def test_known_customer_without_feature_store_is_a_503(client):
    response = client.get("/customers/C000001/churn")
    assert response.status_code == 503
    assert response.json()["detail"] == "feature store unavailable"


def test_metrics_expose_red_and_model_series(client):
    client.post("/predict", json=VALID)
    client.post("/predict", json={**VALID, "plan": "gold"})
    text = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    assert 'http_requests_total{method="POST",route="/predict",status="422"} 1.0' in text
    assert 'http_request_duration_seconds_bucket{le="0.05",method="POST",route="/predict"}' in text
    assert "resilia_predictions_total{risk_band=" in text
    assert "resilia_churn_probability_count 1.0" in text
    assert 'resilia_model_info{environment="dev"' in text


def test_openapi_schema_documents_the_contract(client):
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/customers/{customer_id}/churn", "/health/live", "/health/ready"} <= set(
        schema["paths"]
    )
    customer = schema["components"]["schemas"]["Customer"]
    assert customer["properties"]["postcode"]["pattern"] == "^[0-9]{5}$"


def test_uninstrumented_app_serves_without_metrics(trained):
    from resilia.config import load_settings

    settings = load_settings("dev", environ={"RESILIA_API__INSTRUMENTED": "false"})
    with TestClient(create_app(settings, *trained)) as client:
        assert client.post("/predict", json=VALID).status_code == 200
        assert "http_requests_total{" not in client.get("/metrics").text


def test_feature_store_serves_only_model_columns(dev_settings):
    with TestClient(create_feature_store(dev_settings)) as client:
        record = client.get("/customers/C000001").json()
        assert "email" not in record and "last_name" not in record
        assert client.get("/customers/C999999").status_code == 404
        assert client.get("/health/ready").json()["customers"] == dev_settings.data.n_customers
    # What the feature store returns is a valid API request body.
    json.dumps(record)
    assert set(record) == set(VALID)


def test_unhandled_error_is_a_500_with_request_id_and_the_service_goes_on():
    import logging

    from fastapi import FastAPI

    from resilia.metrics import Metrics
    from resilia.service import install_observability

    app, metrics = FastAPI(), Metrics()
    install_observability(
        app, metrics=metrics, logger=logging.getLogger("resilia.test"), tracer_provider=None
    )

    @app.get("/boom")
    def boom():
        raise RuntimeError("bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "r-500"})
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error", "request_id": "r-500"}
        assert client.get("/health/live").status_code == 200
        text = client.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/boom",status="500"} 1.0' in text
