"""Generate the course's customer dataset.

The data are synthetic and reproducible: the same ``seed`` always gives the same
table. Names, e-mails, birth dates and postcodes look personal on purpose, so the
security and GDPR chapters have something to protect.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from resilia._names import EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES
from resilia.schema import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    PLANS,
    REFERENCE_DATE,
    REQUIRED_COLUMNS,
    TARGET_COLUMN,
)

PLAN_WEIGHTS = (0.50, 0.35, 0.15)
PLAN_RIDES = {"essentiel": 4.0, "confort": 10.0, "premium": 16.0}

# Départements served by the fictional operator, with their share of customers.
DEPARTMENTS = {
    "69": 0.22,
    "75": 0.18,
    "13": 0.10,
    "33": 0.08,
    "31": 0.08,
    "59": 0.07,
    "44": 0.06,
    "67": 0.05,
    "34": 0.05,
    "35": 0.04,
    "38": 0.04,
    "06": 0.03,
}


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode().lower().replace(" ", "")


def generate_customers(n: int = 5_000, seed: int = 42) -> pd.DataFrame:
    """Return ``n`` synthetic customers with a ``churned`` label.

    Churn is drawn from a logistic model of the behaviour columns (support calls,
    late payments, usage, tenure, age, plan), so a classifier can learn it but
    never perfectly.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of customers, got {n}")
    rng = np.random.default_rng(seed)
    ref = np.datetime64(REFERENCE_DATE, "D")

    first = rng.choice(FIRST_NAMES, size=n)
    last = rng.choice(LAST_NAMES, size=n)
    domains = rng.choice(EMAIL_DOMAINS, size=n)
    suffix = rng.integers(1, 100, size=n)
    emails = [
        f"{_ascii(f)}.{_ascii(la)}{s}@{d}"
        for f, la, s, d in zip(first, last, suffix, domains, strict=True)
    ]

    age_days = rng.integers(18 * 365, 80 * 365, size=n)
    birth = ref - age_days.astype("timedelta64[D]")
    age_years = age_days / DAYS_PER_YEAR

    dept_codes = np.array(list(DEPARTMENTS))
    dept_p = np.array(list(DEPARTMENTS.values()))
    depts = rng.choice(dept_codes, size=n, p=dept_p / dept_p.sum())
    postcodes = [f"{d}{rng.integers(0, 1000):03d}" for d in depts]

    tenure_days = rng.integers(30, 8 * 365, size=n)
    signup = ref - tenure_days.astype("timedelta64[D]")
    tenure_months = tenure_days / DAYS_PER_MONTH

    plans = rng.choice(list(PLANS), size=n, p=PLAN_WEIGHTS)
    base_fee = np.array([PLANS[p] for p in plans])
    student = age_years < 26
    monthly_fee = np.round(np.where(student, base_fee * 0.7, base_fee), 2)

    mean_rides = np.array([PLAN_RIDES[p] for p in plans]) * rng.lognormal(
        0.0, 0.5, size=n
    )
    rides = rng.poisson(mean_rides)
    support_calls = rng.poisson(0.6, size=n)
    late_payments = rng.poisson(0.3, size=n)

    plan_effect = np.select(
        [plans == "essentiel", plans == "premium"], [0.3, -0.4], 0.0
    )
    logit = (
        -0.9
        + 0.55 * support_calls
        + 0.85 * late_payments
        - 0.12 * rides
        - 0.025 * tenure_months
        + 0.02 * np.clip(35 - age_years, 0, None)
        + plan_effect
        + rng.normal(0.0, 0.5, size=n)
    )
    churned = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(1, n + 1)],
            "first_name": first,
            "last_name": last,
            "email": emails,
            "birth_date": pd.to_datetime(birth),
            "postcode": postcodes,
            "signup_date": pd.to_datetime(signup),
            "plan": plans,
            "monthly_fee": monthly_fee,
            "rides_last_month": rides,
            "support_calls_90d": support_calls,
            "late_payments_12m": late_payments,
            TARGET_COLUMN: churned,
        }
    )


def request_payloads(n: int = 1_000, seed: int = 0) -> list[dict]:
    """``n`` customers as JSON bodies for ``POST /predict`` (no name, no e-mail)."""
    customers = generate_customers(n, seed=seed)
    table = customers[["customer_id", *REQUIRED_COLUMNS]].copy()
    for column in ("birth_date", "signup_date"):
        table[column] = table[column].dt.strftime("%Y-%m-%d")
    return table.to_dict(orient="records")
