# Root conftest: plugins for the notebooks run by nbval.
pytest_plugins = ["tests.nbval_guard", "tests.notebook_requirements"]
