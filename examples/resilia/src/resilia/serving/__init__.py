"""Serving resilia over HTTP: the scoring API, the feature store and their telemetry.

Needs the ``api`` extra (``pip install 'resilia[api]'``). The core package never
imports this one, except the CLI's ``serve`` and ``feature-store`` commands.
"""
