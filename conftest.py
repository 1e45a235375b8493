"""Root conftest: the plugins for the notebooks that nbval runs. Shared fixtures
(settings, the trained dev model) come from resilia's pytest plugin, resilia.testing."""

pytest_plugins = [
    "tests.plugins.nbval_guard",
    "tests.plugins.notebook_requirements",
    "tests.plugins.exercises",
    "tests.plugins.distribution",
]
