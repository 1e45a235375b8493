"""pytest fixtures for code built on resilia, loaded by pytest through an entry point
(``pytest11``), so the package's tests and the book's share one trained model."""

from __future__ import annotations

import pytest

from resilia.config import Settings, load_settings
from resilia.model import TrainingReport, save_model, train_from_settings


@pytest.fixture(scope="session")
def dev_settings() -> Settings:
    """The dev settings, ignoring the caller's RESILIA_* variables."""
    return load_settings("dev", environ={})


@pytest.fixture(scope="session")
def trained(dev_settings: Settings) -> tuple:
    """The dev model, trained once per test session: ``(pipeline, report)``."""
    return train_from_settings(dev_settings)


@pytest.fixture(scope="session")
def dev_model_path(trained: tuple[object, TrainingReport], tmp_path_factory):
    """The dev model saved once to a file, for what loads it (CLI, services)."""
    return save_model(*trained, tmp_path_factory.mktemp("model") / "model.joblib")
