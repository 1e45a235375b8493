"""Spark jobs for the resilia fil rouge: local mode, then Kubernetes."""
