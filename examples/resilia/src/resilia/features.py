"""Turn raw customer records into model features.

Direct identifiers (names, e-mail) never reach the model; birth date and postcode
are coarsened into an age and a département (data minimisation).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from resilia.data import REFERENCE_DATE

NUMERIC_FEATURES = (
    "age",
    "tenure_months",
    "monthly_fee",
    "rides_last_month",
    "support_calls_90d",
    "late_payments_12m",
)
CATEGORICAL_FEATURES = ("plan", "department")
FEATURE_COLUMNS = NUMERIC_FEATURES + CATEGORICAL_FEATURES

REQUIRED_COLUMNS = (
    "birth_date",
    "postcode",
    "signup_date",
    "plan",
    "monthly_fee",
    "rides_last_month",
    "support_calls_90d",
    "late_payments_12m",
)


def build_features(customers: pd.DataFrame, reference_date: date = REFERENCE_DATE) -> pd.DataFrame:
    """Return the feature table (one row per customer, columns ``FEATURE_COLUMNS``)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in customers.columns]
    if missing:
        raise ValueError(f"missing columns in customer data: {', '.join(missing)}")
    ref = pd.Timestamp(reference_date)
    birth = pd.to_datetime(customers["birth_date"])
    signup = pd.to_datetime(customers["signup_date"])
    features = pd.DataFrame(
        {
            "age": (ref - birth).dt.days / 365.25,
            "tenure_months": (ref - signup).dt.days / 30.44,
            "monthly_fee": customers["monthly_fee"].astype(float),
            "rides_last_month": customers["rides_last_month"].astype(float),
            "support_calls_90d": customers["support_calls_90d"].astype(float),
            "late_payments_12m": customers["late_payments_12m"].astype(float),
            "plan": customers["plan"].astype(str),
            "department": customers["postcode"].astype(str).str[:2],
        },
        index=customers.index,
    )
    return features[list(FEATURE_COLUMNS)]
