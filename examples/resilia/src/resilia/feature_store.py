"""A small feature store: serves the stored attributes of known customers by id.

It stands for the second component a real scoring API depends on (a database, a
feature store, a model backend), so that traces and alerts have two processes to
follow. It only exposes the columns the model needs: no name, no e-mail.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

import resilia
from resilia.config import Settings
from resilia.data import request_payloads
from resilia.logs import configure_logging
from resilia.metrics import Metrics
from resilia.service import install_observability
from resilia.tracing import get_tracer, make_tracer_provider

SERVICE = "resilia-feature-store"


def create_feature_store(settings: Settings) -> FastAPI:
    payloads = request_payloads(settings.data.n_customers, seed=settings.data.seed)
    records = {p["customer_id"]: p for p in payloads}
    logger = configure_logging(settings, SERVICE).getChild("feature_store")
    provider = make_tracer_provider(settings, SERVICE) if settings.api.instrumented else None
    tracer = get_tracer(provider, __name__)
    metrics = Metrics()
    app = FastAPI(title="resilia feature store", version=resilia.__version__)
    app.state.tracer_provider = provider
    install_observability(
        app,
        metrics=metrics,
        logger=logger,
        tracer_provider=provider,
        instrumented=settings.api.instrumented,
    )

    @app.get("/customers/{customer_id}", tags=["clients"])
    def customer(customer_id: str) -> dict:
        """The stored attributes of one customer."""
        with tracer.start_as_current_span("lookup_customer"):
            record = records.get(customer_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"unknown customer {customer_id}")
        return record

    @app.get("/health/ready", tags=["santé"])
    def ready() -> dict:
        return {"status": "ready", "customers": len(records)}

    return app
