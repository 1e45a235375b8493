"""Train, evaluate, save and load the churn model; the business rules on its output."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import resilia
from resilia.config import ModelSettings, Settings
from resilia.data import generate_customers
from resilia.schema import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    TARGET_COLUMN,
    build_features,
)

BUNDLE_FORMAT = 1

CHURN_THRESHOLD = 0.5
"""At or above this probability a customer is counted as at risk of churning."""
WATCH_THRESHOLD = 0.2
"""At or above this probability (and below CHURN_THRESHOLD) a customer is watched."""


def risk_band(probability: float) -> str:
    """The business reading of a churn probability: low, medium or high risk.

    Examples:
        >>> risk_band(0.05), risk_band(CHURN_THRESHOLD), risk_band(0.99)
        ('low', 'high', 'high')
    """
    if probability >= CHURN_THRESHOLD:
        return "high"
    return "medium" if probability >= WATCH_THRESHOLD else "low"


class ModelQualityError(RuntimeError):
    """Raised when a trained model does not reach the environment's quality bar."""


class ModelFileError(ValueError):
    """Raised when a model file is missing, unreadable or not a resilia bundle."""


@dataclass(frozen=True)
class TrainingReport:
    """What a training run measured, stored next to the model."""

    environment: str
    n_train: int
    n_test: int
    churn_rate: float
    roc_auc: float
    accuracy: float

    def to_dict(self) -> dict:
        return asdict(self)


def build_pipeline(params: ModelSettings) -> Pipeline:
    """The untrained pipeline: scaling, one-hot encoding, logistic regression."""
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore"),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    classifier = LogisticRegression(C=params.regularization_c, max_iter=1_000)
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def train(
    customers: pd.DataFrame, settings: Settings
) -> tuple[Pipeline, TrainingReport]:
    """Fit the pipeline on a stratified split and check it on the held-out part.

    Raises ModelQualityError when the held-out ROC AUC is below ``model.min_roc_auc``.
    """
    features = build_features(customers)
    target = customers[TARGET_COLUMN].astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=settings.model.test_size,
        random_state=settings.data.seed,
        stratify=target,
    )
    pipeline = build_pipeline(settings.model).fit(x_train, y_train)
    proba = pipeline.predict_proba(x_test)[:, 1]
    report = TrainingReport(
        environment=settings.environment.value,
        n_train=len(x_train),
        n_test=len(x_test),
        churn_rate=round(float(target.mean()), 4),
        roc_auc=round(float(roc_auc_score(y_test, proba)), 4),
        accuracy=round(float(accuracy_score(y_test, proba >= CHURN_THRESHOLD)), 4),
    )
    if report.roc_auc < settings.model.min_roc_auc:
        raise ModelQualityError(
            f"ROC AUC {report.roc_auc} below the {settings.environment.value} "
            f"threshold {settings.model.min_roc_auc}: model not accepted"
        )
    return pipeline, report


def train_from_settings(settings: Settings) -> tuple[Pipeline, TrainingReport]:
    """Generate the environment's dataset and train on it."""
    customers = generate_customers(settings.data.n_customers, seed=settings.data.seed)
    return train(customers, settings)


def save_model(pipeline: Pipeline, report: TrainingReport, path: str | Path) -> Path:
    """Write the pipeline and its report to ``path`` (joblib); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bundle = {
        "format": BUNDLE_FORMAT,
        "resilia_version": resilia.__version__,
        "sklearn_version": sklearn.__version__,
        "report": report.to_dict(),
        "pipeline": pipeline,
    }
    joblib.dump(bundle, path)
    return path


def load_model(path: str | Path) -> tuple[Pipeline, TrainingReport]:
    """Load a bundle written by ``save_model``.

    Only load files you produced: like any pickle, a model file can run code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no model file at {path}; train one with `resilia train`"
        )
    try:
        bundle = joblib.load(path)
    except Exception as exc:  # truncated, corrupt or foreign files fail in many ways
        raise ModelFileError(
            f"{path} cannot be read as a resilia model ({type(exc).__name__}); "
            "train it again with `resilia train`"
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise ModelFileError(
            f"{path} is not a resilia model bundle (format {BUNDLE_FORMAT})"
        )
    try:
        return bundle["pipeline"], TrainingReport(**bundle["report"])
    except (KeyError, TypeError):
        raise ModelFileError(f"{path} is an incomplete resilia model bundle") from None


# exercise: industrialisation-lift
def churn_lift(y_true, probability, fraction: float = 0.1) -> float:
    """Churn rate among the ``fraction`` of customers with the highest scores,
    divided by the churn rate of the whole base (1.0: no better than chance)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in ]0, 1], got {fraction}")
    y_true = np.asarray(y_true, dtype=float)
    base_rate = y_true.mean() if y_true.size else 0.0
    if base_rate == 0:
        raise ValueError("no churner in y_true: the lift is undefined")
    top = max(1, round(fraction * y_true.size))
    order = np.argsort(-np.asarray(probability, dtype=float), kind="stable")
    return float(y_true[order[:top]].mean() / base_rate)


# end of exercise


def predict_churn_proba(pipeline: Pipeline, customers: pd.DataFrame) -> np.ndarray:
    """Churn probability for each customer row."""
    return pipeline.predict_proba(build_features(customers))[:, 1]
