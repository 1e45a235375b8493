"""The API's bodies: the customer it scores, its answer and its error bodies.

Every status code the service can answer is described here, so that the OpenAPI
schema says what the service really does (a test drives it with Schemathesis).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from resilia.data import PLANS, REFERENCE_DATE

CUSTOMER_ID_PATTERN = r"^C[0-9]{6}$"
RISK_BANDS = ("low", "medium", "high")

EXAMPLE_CUSTOMER = {
    "customer_id": "C000042",
    "birth_date": "1990-04-12",
    "postcode": "69003",
    "signup_date": "2023-09-01",
    "plan": "confort",
    "monthly_fee": 19.9,
    "rides_last_month": 3,
    "support_calls_90d": 2,
    "late_payments_12m": 1,
}
"""A valid request body: the example of the OpenAPI schema, reused by the tests."""


def risk_band(probability: float) -> str:
    if probability >= 0.5:
        return "high"
    return "medium" if probability >= 0.2 else "low"


class Customer(BaseModel):
    """What the model needs to know about a customer (no name, no e-mail)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [EXAMPLE_CUSTOMER]},
    )

    customer_id: str | None = Field(default=None, pattern=CUSTOMER_ID_PATTERN)
    birth_date: date
    postcode: str = Field(pattern=r"^[0-9]{5}$", description="French postcode")
    signup_date: date
    plan: Literal[tuple(PLANS)]  # type: ignore[valid-type]
    monthly_fee: float = Field(ge=0, le=100)
    rides_last_month: int = Field(ge=0, le=1000)
    support_calls_90d: int = Field(ge=0, le=100)
    late_payments_12m: int = Field(ge=0, le=12)

    @field_validator("birth_date")
    @classmethod
    def plausible_age(cls, value: date) -> date:
        age = (REFERENCE_DATE - value).days / 365.25
        if not 16 <= age <= 110:
            raise ValueError(
                f"age must be between 16 and 110 on {REFERENCE_DATE}, got {age:.0f}"
            )
        return value

    @field_validator("signup_date")
    @classmethod
    def not_in_the_future(cls, value: date) -> date:
        if not date(2000, 1, 1) <= value <= REFERENCE_DATE:
            raise ValueError(f"must be between 2000-01-01 and {REFERENCE_DATE}")
        return value


class Prediction(BaseModel):
    customer_id: str | None
    churn_probability: float = Field(ge=0, le=1)
    risk_band: Literal[RISK_BANDS]  # type: ignore[valid-type]
    model_version: str


class Health(BaseModel):
    status: Literal["alive", "ready", "degraded"]
    model: str | None = None
    feature_store: Literal["up", "down"] | None = None


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the field, or 'body'")
    message: str = Field(description="why it was refused (never the value itself)")


class ValidationProblem(BaseModel):
    detail: list[FieldError]


class Problem(BaseModel):
    detail: str
    request_id: str | None = None


def _problem(description: str, **extra) -> dict:
    return {"model": Problem, "description": description, **extra}


RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
}

COMMON_RESPONSES: dict[int | str, dict] = {
    400: _problem("Body not UTF-8 or JSON nested too deeply"),
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
