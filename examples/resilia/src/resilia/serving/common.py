"""What both services share: liveness, metrics and error bodies that name the
problem without echoing the input."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from resilia.serving.middleware import BodyLimit, LoadShedder
from resilia.serving.schemas import Health
from resilia.serving.telemetry import Telemetry

JSON_TYPES = ("application/json",)
MAX_JSON_DEPTH = 32
"""Deeper bodies are refused with a 400. A limit of our own, the same on every
Python: 3.11's json module gives up near 1,000 levels, 3.13's parses 5,000."""


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise RecursionError when ``body`` nests arrays or objects deeper than
    ``limit`` (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= limit:  # the common case, in C
        return
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                raise RecursionError(f"JSON nested deeper than {limit} levels")
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1


class DepthLimitedRequest(Request):
    """A request whose JSON body goes through :func:`check_json_depth` first."""

    async def json(self):
        check_json_depth(await self.body())
        return await super().json()


class JsonRoute(APIRoute):
    """A route whose JSON body is refused, before parsing, when nested too deeply."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route_handler(request: Request):
            return await handler(DepthLimitedRequest(request.scope, request.receive))

        return route_handler


async def get_telemetry(request: Request) -> Telemetry:
    """Dependency: the application's telemetry."""
    return request.app.state.telemetry


TelemetryDep = Annotated[Telemetry, Depends(get_telemetry)]

router = APIRouter()


@router.get(
    "/health/live",
    tags=["santé"],
    response_model=Health,
    response_model_exclude_none=True,
)
async def live() -> Health:
    """Liveness: the process answers."""
    return Health(status="alive")


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(telemetry: TelemetryDep) -> Response:
    """``GET /metrics``: the Prometheus exposition."""
    content, media_type = telemetry.exposition()
    return Response(content, media_type=media_type)


async def require_json(request: Request) -> None:
    """Dependency of the routes that read a JSON body: 415 for any other type."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in JSON_TYPES:
        raise HTTPException(415, "the body must be application/json")


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: RequestValidationError):
    # Name the field and the reason, never the submitted (possibly personal) value.
    errors = [
        {"field": "body", "message": f"invalid JSON at position {e['loc'][-1]}"}
        if e["type"] == "json_invalid"
        else {"field": _field(e["loc"]), "message": e["msg"]}
        for e in exc.errors()
    ]
    request.app.state.telemetry.logger.info(
        "request rejected", extra={"errors": errors}
    )
    return JSONResponse(status_code=422, content={"detail": errors})


PARSE_ERRORS = {
    UnicodeDecodeError: "the body is not valid UTF-8",
    RecursionError: "the JSON body is nested too deeply",
}


async def _http_error(request: Request, exc: StarletteHTTPException):
    detail = exc.detail
    if exc.status_code == 400:
        detail = PARSE_ERRORS.get(type(exc.__cause__), "the body cannot be parsed")
    return JSONResponse(
        {"detail": detail}, status_code=exc.status_code, headers=exc.headers
    )


def install(app: FastAPI, telemetry: Telemetry) -> None:
    """What every service has: the routes above, clean errors, limits on what a
    request may cost, then the telemetry around it all."""
    api = telemetry.settings.api
    app.state.telemetry = telemetry
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes)
    app.add_middleware(
        LoadShedder, max_in_flight=api.max_in_flight, metrics=telemetry.http
    )
    telemetry.install(app)
