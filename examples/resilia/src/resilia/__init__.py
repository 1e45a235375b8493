"""resilia: churn prediction for a fictional bike-sharing subscription service."""

__version__ = "0.1.0"
