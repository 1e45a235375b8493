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
from resilia.service import Telemetry

SERVICE = "resilia-feature-store"


def create_feature_store(settings: Settings) -> FastAPI:
    payloads = request_payloads(settings.data.n_customers, seed=settings.data.seed)
    records = {p["customer_id"]: p for p in payloads}
    telemetry = Telemetry.for_service(settings, SERVICE, "feature_store")
    app = FastAPI(title="resilia feature store", version=resilia.__version__)
    telemetry.install(app)

    @app.get("/customers/{customer_id}", tags=["clients"])
    def customer(customer_id: str) -> dict:
        """The stored attributes of one customer."""
        with telemetry.tracer.start_as_current_span("lookup_customer"):
            record = records.get(customer_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"unknown customer {customer_id}")
        return record

    @app.get("/health/ready", tags=["santé"])
    def ready() -> dict:
        return {"status": "ready", "customers": len(records)}

    return app
