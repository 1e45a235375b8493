"""pytest plugin: how the suite spreads over several processes (pytest-xdist, as
``make test`` runs it with ``-n 2``).

A notebook's cells share one kernel, so a file is never split: each file is a unit of
work. The files that drive the one Docker daemon form a single unit, run one after the
other. The longest units are sent first, so that no worker is left alone with a long
notebook at the end.
"""

from __future__ import annotations

import os

import pytest

SHARED_UNITS = {
    "docker": ("tests/test_docker.py", "notebooks/docker.ipynb"),
    # Every reader of _build/html, one after the other: a rebuild rewrites the static
    # files (pygments.css goes through Sphinx's default style) and the API reference
    # while the browser reads them (code tokens then failed colour contrast at random).
    "site": (
        "tests/test_site.py",
        "tests/test_site_browser.py",
        "tests/test_documentation.py",
    ),
}

# The longest units (seconds of a serial run on a busy machine, rounded); the others keep
# their collection order after these.
LONGEST_FIRST = {
    "tests/test_onyxia_pod.py": 400,
    "docker": 300,
    "notebooks/spark.ipynb": 200,
    "notebooks/airflow.ipynb": 75,
    "notebooks/spark-kubernetes.ipynb": 100,
    "tests/test_onyxia_init.py": 100,
    "site": 140,
}


def unit_of(nodeid: str) -> str:
    """The unit of work of a test: its file, or the shared unit its file belongs to."""
    path = nodeid.split("::", 1)[0]
    for unit, files in SHARED_UNITS.items():
        if path in files:
            return unit
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return UnitScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    weight = {id(item): LONGEST_FIRST.get(unit_of(item.nodeid), 0) for item in items}
    items.sort(key=lambda item: -weight[id(item)])  # stable: files keep their order
