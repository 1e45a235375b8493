import pytest

from resilia.config import load_settings
from resilia.model import train_from_settings


@pytest.fixture(scope="session")
def dev_settings():
    return load_settings("dev", environ={})


@pytest.fixture(scope="session")
def trained(dev_settings):
    """The dev model, trained once for the whole session."""
    return train_from_settings(dev_settings)
