"""The customer is defined once: strict request model, one definition per feature."""

from datetime import date

import numpy as np
import pytest
from pydantic import ValidationError

from resilia.data import generate_customers
from resilia.model import predict_churn_proba
from resilia.schema import (
    EXAMPLE_CUSTOMER,
    FEATURE_COLUMNS,
    REQUIRED_COLUMNS,
    Customer,
    build_features,
    customer_features,
)
from resilia.scoring import FastScorer


def test_required_columns_are_the_request_model_fields():
    assert set(REQUIRED_COLUMNS) == set(Customer.model_fields) - {"customer_id"}
    assert Customer.model_validate(EXAMPLE_CUSTOMER).customer_id == "C000042"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("postcode", "٦٩٠٠٣"),  # Arabic-Indic digits
        ("postcode", "６９００３"),  # full-width digits
        ("postcode", 69003),
        ("customer_id", "C٠٠٠٠٤٢"),
        ("birth_date", 0),
        ("birth_date", "1990-04-12T00:00:00"),
        ("birth_date", "12/04/1990"),
        ("birth_date", "1990-02-30"),
        ("signup_date", 1_693_526_400),
        ("monthly_fee", "19.9"),
        ("monthly_fee", True),
        ("monthly_fee", float("nan")),
        ("rides_last_month", True),
        ("rides_last_month", "3"),
        ("rides_last_month", 3.5),
        ("support_calls_90d", False),
        ("late_payments_12m", "1"),
        ("plan", "Confort"),
    ],
)
def test_loose_values_are_refused(field, value):
    with pytest.raises(ValidationError) as caught:
        Customer.model_validate({**EXAMPLE_CUSTOMER, field: value})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_whole_fees_and_date_objects_are_accepted():
    customer = Customer.model_validate(
        {**EXAMPLE_CUSTOMER, "monthly_fee": 20, "birth_date": date(1990, 4, 12)}
    )
    assert customer.monthly_fee == 20.0 and customer.birth_date == date(1990, 4, 12)


def test_the_schema_says_it_is_strict():
    schema = Customer.model_json_schema()
    assert "strict" in schema["description"].lower()
    assert schema["properties"]["birth_date"]["format"] == "date"


def _random_customers(n, seed):
    customers = generate_customers(n, seed=seed)
    records = [
        Customer.model_validate(
            {
                **row,
                "birth_date": row["birth_date"].date(),
                "signup_date": row["signup_date"].date(),
            }
        ).model_dump()
        for row in customers[["customer_id", *REQUIRED_COLUMNS]].to_dict("records")
    ]
    return customers, records


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_table_and_single_customer_features_agree(seed):
    customers, records = _random_customers(300, seed)
    table = build_features(customers)
    assert list(table.columns) == list(FEATURE_COLUMNS)
    for i, record in enumerate(records):
        one = customer_features(record)
        row = table.iloc[i]
        assert list(one) == list(FEATURE_COLUMNS)
        for name in FEATURE_COLUMNS:
            if isinstance(one[name], float):
                assert one[name] == pytest.approx(row[name]), (i, name)
            else:
                assert one[name] == row[name], (i, name)


@pytest.mark.parametrize("seed", [3, 4])
def test_fast_scorer_and_pipeline_agree_on_random_customers(trained, seed):
    pipeline, _ = trained
    customers, records = _random_customers(500, seed)
    scorer = FastScorer.from_pipeline(pipeline)
    np.testing.assert_allclose(
        [scorer.score(r) for r in records],
        predict_churn_proba(pipeline, customers),
        rtol=1e-9,
        atol=1e-12,
    )


def test_features_accept_iso_strings_like_the_feature_store_sends():
    as_json = {**EXAMPLE_CUSTOMER}
    as_dates = Customer.model_validate(EXAMPLE_CUSTOMER).model_dump()
    assert customer_features(as_json) == customer_features(as_dates)


# Each bound of the request model, just inside and just outside. Without these, any
# bound (ge=0, le=12, the id pattern, the age range...) can be deleted and the suite
# still passes.
BOUNDS = [
    ("customer_id", "C000000", "C00000"),
    ("customer_id", "C999999", "C0000000"),
    ("customer_id", "C000042", "c000042"),
    ("postcode", "00000", "690031"),
    ("birth_date", "2009-12-31", "2010-01-01"),  # 16 years old on 2025-12-31
    ("birth_date", "1916-01-01", "1915-12-31"),  # 110
    ("signup_date", "2000-01-01", "1999-12-31"),
    ("signup_date", "2025-12-31", "2026-01-01"),
    ("monthly_fee", 0.0, -0.01),
    ("monthly_fee", 100.0, 100.01),
    ("rides_last_month", 0, -1),
    ("rides_last_month", 1000, 1001),
    ("support_calls_90d", 0, -1),
    ("support_calls_90d", 100, 101),
    ("late_payments_12m", 0, -1),
    ("late_payments_12m", 12, 13),
]


@pytest.mark.parametrize(("field", "inside", "outside"), BOUNDS)
def test_every_bound_accepts_its_edge_and_refuses_one_step_beyond(
    field, inside, outside
):
    accepted = Customer.model_validate({**EXAMPLE_CUSTOMER, field: inside})
    assert str(getattr(accepted, field)) == str(inside)
    with pytest.raises(ValidationError) as caught:
        Customer.model_validate({**EXAMPLE_CUSTOMER, field: outside})
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_every_field_with_a_bound_is_tested():
    schema = Customer.model_json_schema()["properties"]
    bounded = {
        name
        for name, spec in schema.items()
        if {"minimum", "maximum", "pattern"} & set(spec)
        or any({"pattern"} & set(s) for s in spec.get("anyOf", []))
    }
    assert bounded == {field for field, _, _ in BOUNDS}


def test_ages_and_tenures_are_in_years_and_months():
    """A tenure in days would train the same model (the scaler divides any unit
    away): only a test on the feature itself sees the unit."""
    from resilia.schema import age_years, tenure_months

    assert age_years(date(1990, 12, 31)) == pytest.approx(35, abs=0.01)
    assert tenure_months(date(2024, 12, 31)) == pytest.approx(12, abs=0.01)
    assert tenure_months("2024-12-31T08:30:00") == pytest.approx(12, abs=0.01)
    other = date(2030, 12, 31)
    assert age_years(date(1990, 12, 31), other) == pytest.approx(40, abs=0.01)
    assert tenure_months(date(2024, 12, 31), other) == pytest.approx(72, abs=0.05)


def test_build_features_keeps_the_rows_index():
    customers = generate_customers(5).set_axis([10, 20, 30, 40, 50])
    features = build_features(customers)
    assert list(features.index) == [10, 20, 30, 40, 50]
    assert features["monthly_fee"].dtype == float


def test_a_bad_date_says_which_format_is_expected():
    with pytest.raises(ValidationError, match="must be a date written YYYY-MM-DD"):
        Customer.model_validate({**EXAMPLE_CUSTOMER, "birth_date": "12/04/1990"})
