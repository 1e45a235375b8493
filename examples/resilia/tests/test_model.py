import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from resilia.config import load_settings
from resilia.data import generate_customers
from resilia.model import (
    ModelFileError,
    ModelQualityError,
    churn_lift,
    load_model,
    predict_churn_proba,
    risk_band,
    save_model,
    train,
    train_from_settings,
)


def test_training_report_counts_every_customer(trained, dev_settings):
    # (report.roc_auc >= min_roc_auc would be a test that cannot fail: train() raises
    # below the bar. The gate itself is tested at its boundary below.)
    _, report = trained
    assert report.n_train + report.n_test == dev_settings.data.n_customers
    assert report.n_test == round(
        dev_settings.data.n_customers * dev_settings.model.test_size
    )


def test_training_is_deterministic(dev_settings, trained):
    _, again = train_from_settings(dev_settings)
    assert again == trained[1]


def _with_bar(bar: float):
    return load_settings("dev", environ={"RESILIA_MODEL__MIN_ROC_AUC": str(bar)})


def test_quality_gate_blocks_a_weak_model():
    strict = _with_bar(0.99)
    with pytest.raises(ModelQualityError, match="below the dev threshold 0.99"):
        train(generate_customers(1_000), strict)


def test_quality_gate_is_at_the_bar_exactly():
    """At the bar the model is accepted, one ten-thousandth above it is refused."""
    customers = generate_customers(1_000)
    _, report = train(customers, _with_bar(0.5))
    assert train(customers, _with_bar(report.roc_auc))[1] == report
    with pytest.raises(ModelQualityError):
        train(customers, _with_bar(round(report.roc_auc + 0.0001, 4)))


def test_save_load_round_trip(tmp_path, trained):
    pipeline, report = trained
    path = save_model(pipeline, report, tmp_path / "sub" / "model.joblib")
    loaded, loaded_report = load_model(path)
    customers = generate_customers(300, seed=99)
    np.testing.assert_array_equal(
        predict_churn_proba(pipeline, customers), predict_churn_proba(loaded, customers)
    )
    assert loaded_report == report


def test_load_missing_model_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="resilia train"):
        load_model(tmp_path / "nope.joblib")


def test_load_rejects_foreign_file(tmp_path):
    import joblib

    path = tmp_path / "other.joblib"
    joblib.dump({"something": "else"}, path)
    with pytest.raises(ValueError, match="not a resilia model bundle"):
        load_model(path)


def test_probabilities_are_probabilities(trained):
    proba = predict_churn_proba(trained[0], generate_customers(500, seed=5))
    assert proba.shape == (500,)
    assert ((proba >= 0) & (proba <= 1)).all()


def test_probabilities_rank_and_match_the_churn_rate(trained):
    """A constant 0.5 passes the range test above; it fails this one."""
    customers = generate_customers(5_000, seed=5)
    churned = customers["churned"].to_numpy(dtype=bool)
    proba = predict_churn_proba(trained[0], customers)
    assert roc_auc_score(churned, proba) >= 0.75
    assert proba[churned].mean() > proba[~churned].mean() + 0.1
    # Calibrated on average: logistic regression matches the base rate.
    assert abs(proba.mean() - churned.mean()) < 0.02


def test_more_late_payments_never_lower_the_risk(trained):
    """A business rule the model must keep: its coefficient's sign."""
    customers = generate_customers(200, seed=8)
    base = predict_churn_proba(trained[0], customers.assign(late_payments_12m=0))
    worse = predict_churn_proba(trained[0], customers.assign(late_payments_12m=6))
    assert (worse > base).all()


@pytest.mark.parametrize(
    "content", [b"", b"not a pickle at all", b"\x80\x04\x95garbage", b"PK\x03\x04zip?"]
)
def test_corrupt_model_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "model.joblib"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="cannot be read as a resilia model"):
        load_model(path)


@pytest.mark.parametrize(
    ("probability", "band"),
    [(0.0, "low"), (0.1999, "low"), (0.2, "medium"), (0.4999, "medium"), (0.5, "high")],
)
def test_risk_band_follows_the_thresholds(probability, band):
    assert risk_band(probability) == band


def test_training_uses_the_environment_size_and_regularization():
    settings = load_settings(
        "dev",
        environ={
            "RESILIA_DATA__N_CUSTOMERS": "1200",
            "RESILIA_MODEL__REGULARIZATION_C": "0.05",
            "RESILIA_MODEL__TEST_SIZE": "0.2",
        },
    )
    pipeline, report = train_from_settings(settings)
    assert (report.n_train, report.n_test) == (960, 240)
    assert pipeline.named_steps["classifier"].C == 0.05


def test_the_bundle_records_the_versions_that_made_it(tmp_path, trained):
    import joblib
    import sklearn

    import resilia

    bundle = joblib.load(save_model(*trained, tmp_path / "model.joblib"))
    assert bundle["resilia_version"] == resilia.__version__
    assert bundle["sklearn_version"] == sklearn.__version__
    assert bundle["format"] == 1 and bundle["report"] == trained[1].to_dict()


def test_unreadable_model_error_names_the_cause_and_the_fix(tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "Error)" in message and "train it again with `resilia train`" in message


def test_incomplete_bundle_is_a_clear_error(tmp_path):
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump({"format": 1, "pipeline": None}, path)
    with pytest.raises(ModelFileError, match="is an incomplete resilia model bundle"):
        load_model(path)


def test_churn_lift():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    assert churn_lift(y, p, fraction=0.1) == pytest.approx(5.0)
    assert churn_lift(y, p, fraction=0.5) == pytest.approx(2.0)
    assert churn_lift(y, p, fraction=1.0) == pytest.approx(1.0)
    assert churn_lift(y, p[::-1], fraction=0.1) == pytest.approx(0.0)
    for fraction in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"fraction must be in \]0, 1\]"):
            churn_lift(y, p, fraction=fraction)
    with pytest.raises(ValueError, match="no churner"):
        churn_lift(np.zeros(10), p)
    assert churn_lift(y, p, fraction=0.01) == pytest.approx(5.0)  # at least one
