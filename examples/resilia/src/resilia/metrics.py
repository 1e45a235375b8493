"""Prometheus metrics: RED metrics of the HTTP service and metrics of the model."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from resilia.model import risk_band

# The *_created series double the output for no use here.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Metrics:
    """One registry per application, so tests can build several apps side by side."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time spent handling an HTTP request.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress", "HTTP requests being handled.", registry=r
        )
        self.predictions = Counter(
            "resilia_predictions_total", "Churn predictions served.", ["risk_band"], registry=r
        )
        self.probability = Histogram(
            "resilia_churn_probability",
            "Distribution of the predicted churn probabilities.",
            buckets=PROBABILITY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "resilia_model_info",
            "The model being served (value is always 1).",
            ["environment", "version", "roc_auc"],
            registry=r,
        )
        self.feature_store_requests = Counter(
            "resilia_feature_store_requests_total",
            "Calls from the API to the feature store.",
            ["outcome"],
            registry=r,
        )

        # Create every labelled series at 0, so queries see them before the first event.
        for band in ("low", "medium", "high"):
            self.predictions.labels(band)
        for outcome in ("ok", "not_found", "unreachable", "error"):
            self.feature_store_requests.labels(outcome)

    def observe_prediction(self, probability: float) -> None:
        self.predictions.labels(risk_band(probability)).inc()
        self.probability.observe(probability)
