"""A service's telemetry, set up in one place: logs, metrics and traces.

``Telemetry.for_service`` builds them from the settings; ``install`` adds the
middlewares and the tracing instrumentation to an application; ``running`` is the
part of the application's lifespan that exports the buffered spans when it stops.
"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from resilia.config import Settings
from resilia.serving.logs import configure_logging
from resilia.serving.metrics import HttpMetrics
from resilia.serving.middleware import ObservabilityMiddleware
from resilia.serving.tracing import get_tracer, make_tracer_provider

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class Telemetry:
    """A service's logger, metrics registry, HTTP metrics and tracing."""

    settings: Settings
    logger: logging.Logger
    tracer_provider: TracerProvider | None
    tracer: trace.Tracer
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    http: HttpMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.http = HttpMetrics(self.registry)

    @classmethod
    def for_service(
        cls,
        settings: Settings,
        service: str,
        component: str,
        exporter: SpanExporter | None = None,
    ) -> Telemetry:
        """``exporter``, if given, replaces the span file of the settings."""
        provider = None
        if settings.api.instrumented:
            provider = make_tracer_provider(settings, service, exporter)
        return cls(
            settings=settings,
            logger=configure_logging(settings, service).getChild(component),
            tracer_provider=provider,
            tracer=get_tracer(provider, f"resilia.{component}"),
        )

    def install(self, app: FastAPI) -> None:
        """Request ids, access logs, RED metrics and tracing, if instrumented."""
        if not self.settings.api.instrumented:
            return
        if self.tracer_provider is not None:
            FastAPIInstrumentor.instrument_app(
                app,
                tracer_provider=self.tracer_provider,
                excluded_urls="metrics,health",
                exclude_spans=["receive", "send"],
            )
        # Added last, so it is the outermost: it sees every answer, shed ones too.
        app.add_middleware(
            ObservabilityMiddleware, metrics=self.http, logger=self.logger
        )

    @asynccontextmanager
    async def running(self):
        """Export the buffered spans when the application stops.

        ``atexit`` is not enough: uvicorn re-raises SIGTERM after its graceful stop,
        and a process killed by a signal runs no ``atexit`` handler.
        """
        try:
            yield
        finally:
            if self.tracer_provider is not None:
                self.tracer_provider.shutdown()

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, summed over workers if several."""
        registry = self.registry
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
