"""The observability chapter's tools around the fil rouge: load test (locust),
benchmark of the instrumentation's cost, and the feature store's fault sequence."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1]
"""``examples/observabilite``: the Prometheus, Alertmanager and Grafana files."""
