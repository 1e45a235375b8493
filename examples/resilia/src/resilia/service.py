"""What every resilia HTTP service shares: request ids, access logs, RED metrics,
tracing, health and metrics endpoints, and clean errors for bad requests."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from resilia.config import Settings
from resilia.logs import REQUEST_ID, configure_logging
from resilia.metrics import Metrics
from resilia.tracing import get_tracer, make_tracer_provider, redact_span

REQUEST_ID_HEADER = "X-Request-ID"


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


class ObservabilityMiddleware:
    """Request id, access log line and RED metrics for every HTTP request.

    A plain ASGI middleware: cheaper than ``@app.middleware("http")``, which runs each
    request in an extra task.
    """

    def __init__(self, app, metrics: Metrics, logger: logging.Logger) -> None:
        self.app, self.metrics, self.logger = app, metrics, logger

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = header.decode("latin-1")[:64] or uuid.uuid4().hex[:16]
        token = REQUEST_ID.set(request_id)
        status, started = 500, False

        async def send_with_id(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_progress.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            self.logger.exception("unhandled error", extra={"path": scope["path"]})
            if not started:
                body = {"detail": "internal error", "request_id": request_id}
                await JSONResponse(status_code=500, content=body)(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.in_progress.dec()
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(duration)
            self.logger.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "%s %s %d",
                method,
                route,
                status,
                extra={"duration_ms": round(duration * 1000, 2)},
            )
            REQUEST_ID.reset(token)


@dataclass(frozen=True)
class Telemetry:
    """A service's logger, metrics and tracing, built from its settings."""

    logger: logging.Logger
    metrics: Metrics
    tracer_provider: TracerProvider | None
    tracer: trace.Tracer
    instrumented: bool

    @classmethod
    def for_service(cls, settings: Settings, service: str, component: str) -> Telemetry:
        instrumented = settings.api.instrumented
        provider = make_tracer_provider(settings, service) if instrumented else None
        return cls(
            logger=configure_logging(settings, service).getChild(component),
            metrics=Metrics(),
            tracer_provider=provider,
            tracer=get_tracer(provider, f"resilia.{component}"),
            instrumented=instrumented,
        )

    def install(self, app: FastAPI) -> None:
        install_observability(
            app,
            metrics=self.metrics,
            logger=self.logger,
            tracer_provider=self.tracer_provider,
            instrumented=self.instrumented,
        )
        if self.tracer_provider is not None:
            app.router.lifespan_context = _flush_after(
                app.router.lifespan_context, self.tracer_provider
            )


def _flush_after(lifespan, provider: TracerProvider):
    """Wrap an app's lifespan so that the buffered spans are exported when it ends.

    ``atexit`` is not enough: uvicorn re-raises SIGTERM after its graceful stop, and a
    process killed by a signal runs no ``atexit`` handler.
    """

    @asynccontextmanager
    async def flushing_lifespan(app):
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            provider.shutdown()

    return flushing_lifespan


def install_observability(
    app: FastAPI,
    *,
    metrics: Metrics,
    logger: logging.Logger,
    tracer_provider: TracerProvider | None,
    instrumented: bool = True,
) -> None:
    """Add health and metrics endpoints, error handling and, if ``instrumented``,
    request ids, access logs, RED metrics and tracing."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the field and the reason, never echo the submitted (possibly personal) value.
        errors = [
            {"field": "body", "message": f"invalid JSON at position {e['loc'][-1]}"}
            if e["type"] == "json_invalid"
            else {"field": _field(e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        logger.info("request rejected", extra={"errors": errors})
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health/live", tags=["santé"])
    def live() -> dict:
        """Liveness: the process answers."""
        return {"status": "alive"}

    if not instrumented:
        return

    app.add_middleware(ObservabilityMiddleware, metrics=metrics, logger=logger)

    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls="metrics,health",
            exclude_spans=["receive", "send"],
            server_request_hook=redact_span,  # the server span's URL holds customer ids
        )
