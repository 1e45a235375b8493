"""Prometheus metrics, one class per concern.

Every service exports ``HttpMetrics`` (RED metrics and load shedding); only the API
adds ``ModelMetrics`` (what the model predicts) and ``FeatureStoreMetrics`` (its
calls to the store). Each class registers its series in the registry it is given,
so that tests can build several applications side by side.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from resilia.model import risk_band
from resilia.serving.schemas import RISK_BANDS

# The *_created series double the output for no use here.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SHED_REASONS = ("overloaded", "feature_store_busy")
STORE_OUTCOMES = ("ok", "not_found", "unreachable", "timeout", "error", "invalid")


class HttpMetrics:
    """RED metrics of an HTTP service, and the requests it refused to queue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time spent handling an HTTP request.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being handled.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.shed = Counter(
            "http_requests_shed_total",
            "Requests answered 503 at once because the service was saturated.",
            ["reason"],
            registry=registry,
        )
        for reason in SHED_REASONS:
            self.shed.labels(reason)


class ModelMetrics:
    """What the served model predicts: the integrity signals of the service."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter(
            "resilia_predictions_total",
            "Churn predictions served.",
            ["risk_band"],
            registry=registry,
        )
        self.probability = Histogram(
            "resilia_churn_probability",
            "Distribution of the predicted churn probabilities.",
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.model_info = Gauge(
            "resilia_model_info",
            "The model being served (value is always 1).",
            ["environment", "version", "roc_auc"],
            registry=registry,
            multiprocess_mode="max",
        )
        # Every labelled series exists at 0, so queries see it before the first event.
        for band in RISK_BANDS:
            self.predictions.labels(band)

    def observe(self, probability: float) -> None:
        self.predictions.labels(risk_band(probability)).inc()
        self.probability.observe(probability)


class FeatureStoreMetrics:
    """The API's calls to the feature store, by outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "resilia_feature_store_requests_total",
            "Calls from the API to the feature store.",
            ["outcome"],
            registry=registry,
        )
        for outcome in STORE_OUTCOMES:
            self.requests.labels(outcome)
