"""The resilia scoring API.

- ``POST /predict``: churn probability of a customer described in the request body;
- ``GET /customers/{customer_id}/churn``: the same for a known customer, whose
  attributes come from the feature store;
- ``GET /health/live`` and ``GET /health/ready``: liveness and readiness probes;
- ``GET /metrics``: Prometheus metrics; ``/docs`` and ``/openapi.json``: the schema.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Literal

import httpx
from fastapi import FastAPI, HTTPException
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from pydantic import BaseModel, Field, ValidationError
from sklearn.pipeline import Pipeline

import resilia
from resilia.config import Settings
from resilia.logs import REQUEST_ID
from resilia.model import TrainingReport, load_model, risk_band
from resilia.schema import EXAMPLE_CUSTOMER, Customer  # noqa: F401 (re-exported)
from resilia.scoring import FastScorer
from resilia.service import REQUEST_ID_HEADER, Telemetry

SERVICE = "resilia-api"


class Prediction(BaseModel):
    customer_id: str | None
    churn_probability: float = Field(ge=0, le=1)
    risk_band: Literal["low", "medium", "high"]
    model_version: str


def create_app(
    settings: Settings,
    pipeline: Pipeline | None = None,
    report: TrainingReport | None = None,
) -> FastAPI:
    """Build the API around a trained pipeline (loaded from ``settings.model_path`` if None)."""
    if pipeline is None:
        pipeline, report = load_model(settings.model_path)
    scorer = FastScorer.from_pipeline(pipeline)
    telemetry = Telemetry.for_service(settings, SERVICE, "api")
    logger, metrics, tracer = telemetry.logger, telemetry.metrics, telemetry.tracer
    provider = telemetry.tracer_provider
    model_version = f"{resilia.__version__}-{settings.environment.value}"
    metrics.model_info.labels(
        settings.environment.value, model_version, str(report.roc_auc if report else "")
    ).set(1)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        client = httpx.AsyncClient(
            base_url=str(settings.feature_store.url), timeout=settings.feature_store.timeout_s
        )
        if provider is not None:
            HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
        app.state.feature_store = client
        logger.info("api started", extra={"environment": settings.environment.value})
        yield
        await client.aclose()

    app = FastAPI(
        title="resilia",
        summary="Prédiction de la résiliation des abonnés",
        version=resilia.__version__,
        lifespan=lifespan,
    )
    telemetry.install(app)

    def predict(customer: Customer) -> Prediction:
        with tracer.start_as_current_span("score") as span:
            probability = scorer.score(customer.model_dump())
            span.set_attribute("resilia.churn_probability", probability)
        if settings.api.instrumented:
            metrics.observe_prediction(probability)
        logger.debug("scored", extra={"customer_id": customer.customer_id})
        return Prediction(
            customer_id=customer.customer_id,
            churn_probability=round(probability, 6),
            risk_band=risk_band(probability),
            model_version=model_version,
        )

    @app.post("/predict", response_model=Prediction, tags=["prédiction"])
    async def predict_body(customer: Customer) -> Prediction:
        """Churn probability of the customer described in the body."""
        return predict(customer)

    @app.get(
        "/customers/{customer_id}/churn",
        response_model=Prediction,
        tags=["prédiction"],
        responses={
            404: {"description": "Unknown customer"},
            503: {"description": "Feature store down"},
        },
    )
    async def predict_known(customer_id: str) -> Prediction:
        """Churn probability of a known customer, read from the feature store."""
        client: httpx.AsyncClient = app.state.feature_store
        with tracer.start_as_current_span("fetch_features"):
            try:
                response = await client.get(
                    f"/customers/{customer_id}", headers={REQUEST_ID_HEADER: REQUEST_ID.get()}
                )
            except httpx.HTTPError as exc:
                metrics.feature_store_requests.labels("unreachable").inc()
                logger.warning("feature store unreachable", extra={"error": type(exc).__name__})
                raise HTTPException(503, "feature store unavailable") from None
        if response.status_code == 404:
            metrics.feature_store_requests.labels("not_found").inc()
            raise HTTPException(404, f"unknown customer {customer_id}")
        if response.status_code != 200:
            metrics.feature_store_requests.labels("error").inc()
            raise HTTPException(503, "feature store unavailable")
        metrics.feature_store_requests.labels("ok").inc()
        try:
            customer = Customer.model_validate(response.json())
        except ValidationError:
            logger.error("feature store sent an invalid record", extra={"customer_id": customer_id})
            raise HTTPException(502, "invalid record from the feature store") from None
        return predict(customer)

    @app.get("/health/ready", tags=["santé"])
    async def ready():
        """Readiness: the model is loaded and the feature store answers."""
        try:
            response = await app.state.feature_store.get("/health/live")
            store_ok = response.status_code == 200
        except httpx.HTTPError:
            store_ok = False
        status = {"model": model_version, "feature_store": "up" if store_ok else "down"}
        if not store_ok:
            raise HTTPException(503, detail={"status": "not ready", **status})
        return {"status": "ready", **status}

    return app
