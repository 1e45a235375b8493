"""pytest plugins for the notebooks that nbval runs (registered in the root conftest.py)."""

import pytest


def is_notebook_cell(item: pytest.Item) -> bool:
    """True for the items nbval makes of notebook cells."""
    return type(item).__name__ == "IPyNbCell"
