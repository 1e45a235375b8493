"""The API's answers and error bodies (the customer it scores is ``resilia.schema``).

Every status code the service can answer is described here, so that the OpenAPI
schema says what the service really does (a test drives it with Schemathesis).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

RISK_BANDS = ("low", "medium", "high")
"""What ``resilia.model.risk_band`` answers."""


class Prediction(BaseModel):
    """The churn probability of a customer and its risk band."""

    customer_id: str | None
    churn_probability: float = Field(ge=0, le=1)
    risk_band: Literal[RISK_BANDS]  # type: ignore[valid-type]
    model_version: str


class Health(BaseModel):
    """The answer of the health probes."""

    status: Literal["alive", "ready", "degraded"]
    model: str | None = None
    feature_store: Literal["up", "down"] | None = None


class FieldError(BaseModel):
    """One refused field of a request."""

    field: str = Field(description="dotted path of the field, or 'body'")
    message: str = Field(description="why it was refused (never the value itself)")


class ValidationProblem(BaseModel):
    """The body of a 422: every refused field, without its value."""

    detail: list[FieldError]


class Problem(BaseModel):
    """The body of any other error: what went wrong, and the request id."""

    detail: str
    request_id: str | None = None


def _problem(description: str, **extra) -> dict:
    return {"model": Problem, "description": description, **extra}


RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
}

COMMON_RESPONSES: dict[int | str, dict] = {
    400: _problem("Body not UTF-8 or JSON nested too deeply"),
    408: _problem("Request not received whole within api.read_timeout_s"),
    422: {"model": ValidationProblem, "description": "Invalid field or parameter"},
    500: _problem("Unexpected error (the request id is in the body)"),
    503: _problem("Service saturated, retry later", headers=RETRY_AFTER),
}
"""Statuses any route of the API may answer."""

BODY_RESPONSES: dict[int | str, dict] = {
    413: _problem("Body too large"),
    415: _problem("Body is not application/json"),
}
"""Statuses of the routes that read a body."""

STORE_RESPONSES: dict[int | str, dict] = {
    404: _problem("Unknown customer"),
    502: _problem("The feature store answered something invalid"),
    503: _problem(
        "Feature store down, slow or saturated (or service saturated)",
        headers=RETRY_AFTER,
    ),
}
"""Statuses of the route that needs the feature store."""
