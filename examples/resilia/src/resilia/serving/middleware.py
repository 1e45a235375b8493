"""ASGI middlewares shared by the API and the feature store.

Plain ASGI classes: cheaper than ``@app.middleware("http")``, which runs each request
in an extra task.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid

from fastapi.responses import JSONResponse

from resilia.serving.logs import REQUEST_ID
from resilia.serving.metrics import HttpMetrics

REQUEST_ID_HEADER = "X-Request-ID"
# Hex digits and hyphens (UUIDs, trace ids): a value that could spell a name or an
# e-mail is replaced by a fresh id rather than copied into every log line.
VALID_REQUEST_ID = re.compile(rb"[0-9A-Fa-f-]{8,64}")
UNPROTECTED = ("/health/", "/metrics")
"""Paths that are never shed, so probes and scrapes still see a saturated service."""


def _request_id(scope) -> str:
    header = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
    if VALID_REQUEST_ID.fullmatch(header):
        return header.decode("ascii")
    return uuid.uuid4().hex[:16]


def _route(scope) -> str:
    """The route template (never the path, which may hold an id or an e-mail)."""
    return getattr(scope.get("route"), "path", "unmatched")


class ObservabilityMiddleware:
    """Request id, access log line and RED metrics for every HTTP request, and a
    clean 500 (with the request id) for any unhandled error."""

    def __init__(self, app, metrics: HttpMetrics, logger: logging.Logger) -> None:
        self.app, self.metrics, self.logger = app, metrics, logger

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        status, started = 500, False

        async def send_with_id(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_progress.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # The type and the stack, not the message: it may quote the input.
            self.logger.error(
                "unhandled error",
                extra={
                    "route": _route(scope),
                    "error": type(exc).__name__,
                    "stack": "".join(traceback.format_tb(exc.__traceback__)),
                },
            )
            if not started:
                body = {"detail": "internal error", "request_id": request_id}
                response = JSONResponse(status_code=500, content=body)
                await response(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - start
            route, method = _route(scope), scope["method"]
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


class LoadShedder:
    """Answers 503 with ``Retry-After`` at once when ``max_in_flight`` requests are
    already being handled, instead of queueing the next ones into timeouts."""

    def __init__(
        self, app, max_in_flight: int, metrics: HttpMetrics, retry_after_s: int = 1
    ) -> None:
        self.app, self.max_in_flight, self.metrics = app, max_in_flight, metrics
        self.retry_after = str(retry_after_s)
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNPROTECTED):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.shed.labels("overloaded").inc()
            response = JSONResponse(
                {"detail": "service saturated, retry later"},
                status_code=503,
                headers={"Retry-After": self.retry_after},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _too_large(scope, receive, send) -> None:
    response = JSONResponse({"detail": "the body is too large"}, status_code=413)
    await response(scope, receive, send)


class BodyLimit:
    """413 for a body over ``max_bytes``, before the application parses any of it.

    A declared ``Content-Length`` is checked at once; a chunked body is read up to the
    limit (it is small by then) and handed to the application whole.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _too_large(scope, receive, send)
            return
        if b"transfer-encoding" in headers:
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client left
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.max_bytes:
                    await _too_large(scope, receive, send)
                    return
                more = message.get("more_body", False)
            receive = _replay(b"".join(chunks), receive)
        await self.app(scope, receive, send)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
