"""Non-regression: today's model answers what the stored reference says.

The reference (``reference/dev_predictions.json``) holds the dev model's training
report and its probabilities for 50 fixed customers. Training is deterministic
(seeded data, seeded split, deterministic solver), so the same code and libraries
give the same numbers up to floating-point noise (different CPU or BLAS: about
1e-12). A change of feature, of data generator or of solver moves them by far more
than 1e-6: that is the tolerance. When a change is wanted (a retrained model, a new
feature), regenerate the reference and review its diff in the commit:

    RESILIA_UPDATE_REFERENCE=1 pytest examples/resilia/tests/test_non_regression.py
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from resilia.data import generate_customers
from resilia.model import predict_churn_proba, risk_band, train_from_settings

REFERENCE = Path(__file__).parent / "reference" / "dev_predictions.json"
PROBABILITY_TOLERANCE = 1e-6
"""Far above float noise (1e-12), far below any real change (1e-3 and more)."""
METRIC_TOLERANCE = 1e-9
"""The report's metrics are rounded to 4 decimals: the same rounding, or a failure."""


def _current(trained) -> dict:
    pipeline, report = trained
    customers = generate_customers(50, seed=2024)
    proba = predict_churn_proba(pipeline, customers)
    return {
        "report": report.to_dict(),
        "probabilities": [round(float(p), 12) for p in proba],
        "risk_bands": [risk_band(float(p)) for p in proba],
    }


@pytest.fixture(scope="module")
def reference(trained):
    if os.environ.get("RESILIA_UPDATE_REFERENCE") == "1":
        REFERENCE.write_text(json.dumps(_current(trained), indent=1) + "\n")
    return json.loads(REFERENCE.read_text())


def test_training_report_is_the_reference_one(dev_settings, reference):
    # Trained here, not taken from the session fixture, so that a mutation tool
    # knows this test runs the training code.
    report = train_from_settings(dev_settings)[1].to_dict()
    expected = reference["report"]
    assert {k: v for k, v in report.items() if not isinstance(v, float)} == {
        k: v for k, v in expected.items() if not isinstance(v, float)
    }
    for name in ("churn_rate", "roc_auc", "accuracy"):
        assert report[name] == pytest.approx(expected[name], abs=METRIC_TOLERANCE)
        assert round(report[name], 4) == report[name], f"{name} not rounded to 4"


def test_probabilities_are_the_reference_ones(trained, reference):
    current = _current(trained)
    got = np.array(current["probabilities"])
    want = np.array(reference["probabilities"])
    worst = int(np.argmax(np.abs(got - want)))
    assert np.abs(got - want).max() <= PROBABILITY_TOLERANCE, (
        f"customer {worst}: {got[worst]:.9f} instead of {want[worst]:.9f}; if the "
        "change is wanted, regenerate the reference (see this module's docstring)"
    )
    assert current["risk_bands"] == reference["risk_bands"]
