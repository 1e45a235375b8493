"""The observability chapter's tools around the fil rouge: load test (locust),
benchmark of the instrumentation's cost, and the feature store's fault sequence."""
