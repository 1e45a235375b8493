import pytest

from resilia.data import generate_customers
from resilia.schema import FEATURE_COLUMNS, IDENTIFIER_COLUMNS, build_features


def test_features_have_no_direct_identifier():
    features = build_features(generate_customers(100))
    assert list(features.columns) == list(FEATURE_COLUMNS)
    assert not set(IDENTIFIER_COLUMNS) & set(features.columns)
    assert "birth_date" not in features and "postcode" not in features


def test_department_is_postcode_prefix():
    customers = generate_customers(50)
    features = build_features(customers)
    assert (features["department"] == customers["postcode"].str[:2]).all()


def test_missing_column_is_named():
    customers = generate_customers(10).drop(columns=["plan", "postcode"])
    with pytest.raises(ValueError, match="postcode, plan"):
        build_features(customers)
