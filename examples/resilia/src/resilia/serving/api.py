"""The scoring API's routes.

- ``POST /predict``: churn probability of a customer described in the request body;
- ``GET /customers/{customer_id}/churn``: the same for a known customer, whose
  attributes come from the feature store;
- ``GET /health/live`` and ``GET /health/ready``: liveness and readiness probes;
- ``GET /metrics``: Prometheus metrics; ``/docs`` and ``/openapi.json``: the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from opentelemetry import trace
from pydantic import ValidationError

from resilia.config import Settings
from resilia.model import risk_band
from resilia.schema import CUSTOMER_ID_PATTERN, Customer
from resilia.scoring import FastScorer
from resilia.serving.auth import AUTH_RESPONSES, require_scope
from resilia.serving.common import JsonRoute, require_json
from resilia.serving.metrics import FeatureStoreMetrics, ModelMetrics
from resilia.serving.schemas import (
    BODY_RESPONSES,
    COMMON_RESPONSES,
    STORE_RESPONSES,
    Health,
    Prediction,
)
from resilia.serving.store_client import FeatureStoreClient, StoreBusy, StoreError
from resilia.serving.telemetry import Telemetry

RETRY = {"Retry-After": "1"}
INVALID_ANSWER = "invalid answer from the feature store"


@dataclass
class Api:
    """What the routes need, built once per application (``app.state.api``)."""

    settings: Settings
    scorer: FastScorer
    model_version: str
    telemetry: Telemetry
    model_metrics: ModelMetrics
    store_metrics: FeatureStoreMetrics
    store: FeatureStoreClient | None = None  # opened by the lifespan

    @property
    def tracer(self) -> trace.Tracer:
        return self.telemetry.tracer

    def predict(self, customer: Customer) -> Prediction:
        with self.tracer.start_as_current_span("score") as span:
            probability = self.scorer.score(customer.model_dump())
            span.set_attribute("resilia.churn_probability", probability)
        if self.settings.api.instrumented:
            self.model_metrics.observe(probability)
        self.telemetry.logger.debug(
            "scored", extra={"risk_band": risk_band(probability)}
        )
        return Prediction(
            customer_id=customer.customer_id,
            churn_probability=round(probability, 6),
            risk_band=risk_band(probability),
            model_version=self.model_version,
        )


async def get_api(request: Request) -> Api:
    """Dependency: the application's :class:`Api`."""
    return request.app.state.api


ApiDep = Annotated[Api, Depends(get_api)]
CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN, examples=["C000042"])]

router = APIRouter(responses=COMMON_RESPONSES, route_class=JsonRoute)


@router.post(
    "/predict",
    response_model=Prediction,
    tags=["prédiction"],
    responses=BODY_RESPONSES | AUTH_RESPONSES,
    dependencies=[Depends(require_scope("churn:predict")), Depends(require_json)],
)
async def predict_body(customer: Customer, api: ApiDep) -> Prediction:
    """Churn probability of the customer described in the body."""
    return api.predict(customer)


@router.get(
    "/customers/{customer_id}/churn",
    response_model=Prediction,
    tags=["prédiction"],
    responses=STORE_RESPONSES | AUTH_RESPONSES,
    dependencies=[Depends(require_scope("customers:read"))],
)
async def predict_known(customer_id: CustomerId, api: ApiDep) -> Prediction:
    """Churn probability of a known customer, read from the feature store."""
    with api.tracer.start_as_current_span("fetch_features"):
        try:
            answer = await api.store.get(f"/customers/{customer_id}")
        except StoreBusy:
            raise HTTPException(503, "feature store saturated", headers=RETRY) from None
        except StoreError as error:
            if error.outcome == "invalid":
                raise HTTPException(502, INVALID_ANSWER) from None
            raise HTTPException(
                503, "feature store unavailable", headers=RETRY
            ) from None
    if answer.status_code == 404:
        raise HTTPException(404, "unknown customer")
    if answer.status_code != 200:
        raise HTTPException(503, "feature store unavailable", headers=RETRY)
    try:
        customer = Customer.model_validate(answer.body)
    except ValidationError:
        api.telemetry.logger.error("feature store sent an invalid record")
        raise HTTPException(502, INVALID_ANSWER) from None
    return api.predict(customer)


@router.get("/health/ready", tags=["santé"], response_model=Health)
async def ready(api: ApiDep) -> Health:
    """Readiness: the model is loaded, so the service can take traffic.

    The feature store's state is reported, not required: without it only
    ``/customers/{customer_id}/churn`` fails (503), ``/predict`` still serves, so
    the replica stays in the load balancer in a degraded mode.
    """
    store_up = await api.store.alive()
    return Health(
        status="ready" if store_up else "degraded",
        model=api.model_version,
        feature_store="up" if store_up else "down",
    )
