"""A small feature store: serves the stored attributes of known customers by id.

It stands for the second component a real scoring API depends on (a database, a
feature store, a model backend), so that traces and alerts have two processes to
follow. It only exposes the columns the model needs: no name, no e-mail.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request
from opentelemetry.sdk.trace.export import SpanExporter

import resilia
from resilia.config import Settings
from resilia.data import request_payloads
from resilia.schema import CUSTOMER_ID_PATTERN
from resilia.serving import common
from resilia.serving.schemas import COMMON_RESPONSES
from resilia.serving.telemetry import Telemetry

SERVICE = "resilia-feature-store"


@dataclass(frozen=True)
class Store:
    """The feature store's records, keyed by customer id."""

    records: dict[str, dict]
    telemetry: Telemetry


async def get_store(request: Request) -> Store:
    """Dependency: the application's :class:`Store`."""
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]
CustomerId = Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN)]

router = APIRouter(responses=COMMON_RESPONSES, route_class=common.JsonRoute)


@router.get(
    "/customers/{customer_id}",
    tags=["clients"],
    responses={404: COMMON_RESPONSES[500] | {"description": "Unknown customer"}},
)
async def customer(customer_id: CustomerId, store: StoreDep) -> dict:
    """The stored attributes of one customer."""
    with store.telemetry.tracer.start_as_current_span("lookup_customer"):
        record = store.records.get(customer_id)
    if record is None:
        raise HTTPException(status_code=404, detail="unknown customer")
    return record


@router.get("/health/ready", tags=["santé"])
async def ready(store: StoreDep) -> dict:
    """``GET /health/ready``: ready, with the number of customers served."""
    return {"status": "ready", "customers": len(store.records)}


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Start and stop the feature store's telemetry with the application."""
    store: Store = app.state.store
    async with store.telemetry.running():
        store.telemetry.logger.info("feature store started")
        yield


def create_feature_store(
    settings: Settings, *, span_exporter: SpanExporter | None = None
) -> FastAPI:
    """The feature store, filled with the environment's synthetic customers."""
    payloads = request_payloads(settings.data.n_customers, seed=settings.data.seed)
    telemetry = Telemetry.for_service(settings, SERVICE, "feature_store", span_exporter)
    store = Store({p["customer_id"]: p for p in payloads}, telemetry)
    app = FastAPI(
        title="resilia feature store",
        version=resilia.__version__,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.store = store
    app.include_router(router)
    common.install(app, telemetry)
    return app


def store_from_environment() -> FastAPI:
    """Factory for uvicorn's workers: settings from ``RESILIA_*`` variables."""
    from resilia.config import load_settings

    return create_feature_store(load_settings())
