# Root conftest: every notebook run by nbval goes through the leftover guard.
pytest_plugins = ["tests.nbval_guard"]
