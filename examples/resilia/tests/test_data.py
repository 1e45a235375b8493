import pandas as pd
import pytest

from resilia.data import DEPARTMENTS, generate_customers
from resilia.schema import (
    CUSTOMER_TABLE,
    IDENTIFIER_COLUMNS,
    QUASI_IDENTIFIER_COLUMNS,
    REFERENCE_DATE,
)


def test_same_seed_same_data():
    pd.testing.assert_frame_equal(
        generate_customers(500, seed=1), generate_customers(500, seed=1)
    )


def test_other_seed_other_data():
    assert not generate_customers(200, seed=1).equals(generate_customers(200, seed=2))


def test_columns_and_plausible_values():
    df = generate_customers(2_000, seed=3)
    assert len(df) == 2_000
    assert set(IDENTIFIER_COLUMNS + QUASI_IDENTIFIER_COLUMNS) <= set(df.columns)
    assert df["customer_id"].is_unique
    ref = pd.Timestamp(REFERENCE_DATE)
    ages = (ref - df["birth_date"]).dt.days / 365.25
    assert ages.between(17.9, 80).all()
    assert (df["signup_date"] <= ref).all()
    assert df["postcode"].str.fullmatch(r"\d{5}").all()
    assert set(df["postcode"].str[:2]) <= set(DEPARTMENTS)
    assert df["email"].str.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z.]+").all()
    assert 0.05 < df["churned"].mean() < 0.30


def test_rejects_empty_request():
    with pytest.raises(ValueError, match="positive"):
        generate_customers(0)


def test_generated_table_has_the_schema_columns_and_types():
    customers = generate_customers(50, seed=3)
    assert list(customers.columns) == list(CUSTOMER_TABLE)
    kinds = {"string": "O", "date": "M", "float": "f", "int": "i", "bool": "b"}
    for column, logical in CUSTOMER_TABLE.items():
        assert customers[column].dtype.kind == kinds[logical], column
