"""pytest fixtures for code built on resilia, loaded by pytest through an entry point
(``pytest11``), so the package's tests and the book's share one trained model."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def served_in_thread(config, sock: socket.socket | None = None) -> Iterator[tuple]:
    """A ``uvicorn.Config`` served in a thread on ``sock`` (default: a free loopback
    port); yields the ``(host, port)`` address, and stops the server on exit."""
    import uvicorn  # the api extra: only what serves needs it

    if sock is None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before serving (see its log above)")
        time.sleep(0.01)
    try:
        yield sock.getsockname()
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
