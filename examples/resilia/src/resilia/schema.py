"""What a customer is, stated once.

This module owns the reference date, the customer's fields (the request model
``Customer``), the columns the model needs (derived from ``Customer``) and one
definition of each feature. Training works on tables, ``FastScorer`` and the API on
one customer, the Spark job on batches: all of them compute the features here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)

REFERENCE_DATE = date(2025, 12, 31)
"""Date at which the customer base is observed (ages and tenures count from it)."""

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = 30.44
FIRST_SIGNUP_DATE = date(2000, 1, 1)
AGE_RANGE = (16, 110)

PLANS = {"essentiel": 9.90, "confort": 19.90, "premium": 29.90}
"""Subscription plans and their full monthly fee (students pay 70 %)."""

# ASCII digits only: in Python and in pydantic's regex engine, \d also matches
# other scripts' digits ("٦٩٠٠٣"), which would reach the model as a département.
CUSTOMER_ID_PATTERN = r"^C[0-9]{6}$"
POSTCODE_PATTERN = r"^[0-9]{5}$"

IDENTIFIER_COLUMNS = ("customer_id", "first_name", "last_name", "email")
"""Columns that identify a person directly."""

QUASI_IDENTIFIER_COLUMNS = ("birth_date", "postcode")
"""Columns that identify a person once combined with others."""

TARGET_COLUMN = "churned"

CUSTOMER_TABLE = {
    "customer_id": "string",
    "first_name": "string",
    "last_name": "string",
    "email": "string",
    "birth_date": "date",
    "postcode": "string",
    "signup_date": "date",
    "plan": "string",
    "monthly_fee": "float",
    "rides_last_month": "int",
    "support_calls_90d": "int",
    "late_payments_12m": "int",
    TARGET_COLUMN: "bool",
}
"""The customer table (``resilia.data.generate_customers``): column -> logical type."""

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> date:
    """Accept a ``date`` or a ``YYYY-MM-DD`` string, nothing else (no timestamps)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return date.fromisoformat(value)  # an impossible day raises ValueError
    raise ValueError("must be a date written YYYY-MM-DD")


def _whole_number(value: Any) -> Any:
    """JSON does not tell 3 from 3.0 (JSON Schema calls both integers): accept both."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Count = Annotated[StrictInt, BeforeValidator(_whole_number)]

# The date ranges of the validators below, written for the JSON schema (which has no
# date bounds), so that clients and fuzzers know which dates are accepted; a test
# checks that pattern and validator agree on every day.
_MONTH_DAY = r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
BIRTH_DATE_PATTERN = r"^(19(1[6-9]|[2-9][0-9])|200[0-9])" + _MONTH_DAY
SIGNUP_DATE_PATTERN = r"^20(0[0-9]|1[0-9]|2[0-5])" + _MONTH_DAY
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False)]

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
"""A valid customer record, the example of the API's schema (reused by the tests)."""


class Customer(BaseModel):
    """What the model needs to know about a customer (no name, no e-mail).

    Validation is strict: numbers must be JSON numbers (``"19.9"`` and ``true`` are
    refused), counts whole numbers, dates ``YYYY-MM-DD`` strings, identifiers and
    postcodes ASCII digits.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [EXAMPLE_CUSTOMER]},
    )

    customer_id: Annotated[StrictStr, Field(pattern=CUSTOMER_ID_PATTERN)] | None = None
    birth_date: IsoDate = Field(
        description=f"age from {AGE_RANGE[0]} to {AGE_RANGE[1]} on {REFERENCE_DATE}",
        json_schema_extra={"pattern": BIRTH_DATE_PATTERN},
    )
    postcode: StrictStr = Field(
        pattern=POSTCODE_PATTERN, description="French postcode, 5 digits"
    )
    signup_date: IsoDate = Field(
        description=f"between {FIRST_SIGNUP_DATE} and {REFERENCE_DATE}",
        json_schema_extra={"pattern": SIGNUP_DATE_PATTERN},
    )
    plan: Literal[tuple(PLANS)]  # type: ignore[valid-type]
    monthly_fee: Amount = Field(ge=0, le=100)
    rides_last_month: Count = Field(ge=0, le=1000)
    support_calls_90d: Count = Field(ge=0, le=100)
    late_payments_12m: Count = Field(ge=0, le=12)

    @field_validator("birth_date")
    @classmethod
    def plausible_age(cls, value: date) -> date:
        low, high = AGE_RANGE
        age = age_years(value)
        if not low <= age <= high:
            raise ValueError(
                f"age must be between {low} and {high} on {REFERENCE_DATE}, "
                f"got {age:.0f}"
            )
        return value

    @field_validator("signup_date")
    @classmethod
    def within_service_life(cls, value: date) -> date:
        if not FIRST_SIGNUP_DATE <= value <= REFERENCE_DATE:
            raise ValueError(
                f"must be between {FIRST_SIGNUP_DATE} and {REFERENCE_DATE}"
            )
        return value


REQUIRED_COLUMNS = tuple(
    name for name in Customer.model_fields if name != "customer_id"
)
"""The columns the model needs, the request model's fields without the id."""


# --- Features -----------------------------------------------------------------
# Each feature is defined once, on "a customer": a dict of scalars (one request) or
# a DataFrame (one column per field). The helpers below do the one thing that
# differs between the two: how to read a value.


def _days_before_reference(value, reference_date: date = REFERENCE_DATE):
    if isinstance(value, pd.Series):
        return (pd.Timestamp(reference_date) - pd.to_datetime(value)).dt.days
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    elif isinstance(value, datetime):
        value = value.date()
    return (reference_date - value).days


def _number(value):
    return value.astype(float) if isinstance(value, pd.Series) else float(value)


def _text(value):
    return value.astype(str) if isinstance(value, pd.Series) else str(value)


def _prefix(value, length: int):
    return (
        _text(value).str[:length]
        if isinstance(value, pd.Series)
        else str(value)[:length]
    )


def age_years(birth_date, reference_date: date = REFERENCE_DATE):
    # exercise: documentation-doctest
    """Age in years at ``reference_date``.

    Examples:
        >>> round(age_years("2000-01-01", date(2025, 1, 1)), 1)
        25.0
    """
    # end of exercise
    return _days_before_reference(birth_date, reference_date) / DAYS_PER_YEAR


def tenure_months(signup_date, reference_date: date = REFERENCE_DATE):
    """Months of subscription at ``reference_date``."""
    return _days_before_reference(signup_date, reference_date) / DAYS_PER_MONTH


def department(postcode):
    """The département: the first two digits of the postcode (data minimisation)."""
    return _prefix(postcode, 2)


Feature = Callable[[Mapping, date], Any]

NUMERIC_FEATURES: dict[str, Feature] = {
    "age": lambda c, ref: age_years(c["birth_date"], ref),
    "tenure_months": lambda c, ref: tenure_months(c["signup_date"], ref),
    "monthly_fee": lambda c, ref: _number(c["monthly_fee"]),
    "rides_last_month": lambda c, ref: _number(c["rides_last_month"]),
    "support_calls_90d": lambda c, ref: _number(c["support_calls_90d"]),
    "late_payments_12m": lambda c, ref: _number(c["late_payments_12m"]),
}
CATEGORICAL_FEATURES: dict[str, Feature] = {
    "plan": lambda c, ref: _text(c["plan"]),
    "department": lambda c, ref: department(c["postcode"]),
}
FEATURE_COLUMNS = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)


def customer_features(customer: Mapping, reference_date: date = REFERENCE_DATE) -> dict:
    """The model's features of one customer (a dict of scalars)."""
    return {
        name: feature(customer, reference_date)
        for name, feature in (NUMERIC_FEATURES | CATEGORICAL_FEATURES).items()
    }


def build_features(
    customers: pd.DataFrame, reference_date: date = REFERENCE_DATE
) -> pd.DataFrame:
    """The feature table: one row per customer, columns ``FEATURE_COLUMNS``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in customers.columns]
    if missing:
        raise ValueError(f"missing columns in customer data: {', '.join(missing)}")
    return pd.DataFrame(
        {
            name: feature(customers, reference_date)
            for name, feature in (NUMERIC_FEATURES | CATEGORICAL_FEATURES).items()
        },
        index=customers.index,
    )
