"""Build the scoring API: settings and model in, a FastAPI application out."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from sklearn.pipeline import Pipeline

import resilia
from resilia.config import Settings
from resilia.model import TrainingReport, load_model
from resilia.scoring import FastScorer
from resilia.serving import api, auth, common
from resilia.serving.metrics import FeatureStoreMetrics, ModelMetrics
from resilia.serving.store_client import FeatureStoreClient
from resilia.serving.telemetry import Telemetry

SERVICE = "resilia-api"


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Open the feature store client; at the end, close it, then flush the spans."""
    state: api.Api = app.state.api
    async with state.telemetry.running():
        state.store = FeatureStoreClient(
            state.settings.feature_store,
            state.store_metrics,
            state.telemetry.http,
            state.telemetry.tracer_provider,
        )
        try:
            state.telemetry.logger.info(
                "api started", extra={"environment": state.settings.environment.value}
            )
            yield
        finally:
            await state.store.aclose()


def create_app(
    settings: Settings,
    pipeline: Pipeline | None = None,
    report: TrainingReport | None = None,
    *,
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """The API around a trained pipeline (loaded from ``settings.model_path`` if None).

    ``span_exporter`` replaces the span file of the settings (tests read spans back).
    """
    if pipeline is None:
        pipeline, report = load_model(settings.model_path)
    telemetry = Telemetry.for_service(settings, SERVICE, "api", span_exporter)
    state = api.Api(
        settings=settings,
        scorer=FastScorer.from_pipeline(pipeline),
        model_version=f"{resilia.__version__}-{settings.environment.value}",
        telemetry=telemetry,
        model_metrics=ModelMetrics(telemetry.registry),
        store_metrics=FeatureStoreMetrics(telemetry.registry),
    )
    roc_auc = str(report.roc_auc) if report else ""
    state.model_metrics.model_info.labels(
        settings.environment.value, state.model_version, roc_auc
    ).set(1)

    app = FastAPI(
        title="resilia",
        summary="Prédiction de la résiliation des abonnés",
        version=resilia.__version__,
        lifespan=lifespan,
        redirect_slashes=False,  # a redirect would trust the Host header
    )
    app.state.api = state
    app.state.auth = auth.validator_for(settings.auth)
    app.include_router(api.router)
    common.install(app, telemetry)
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn's workers: settings from ``RESILIA_*`` variables."""
    from resilia.config import load_settings

    return create_app(load_settings())
