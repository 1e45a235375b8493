"""pytest plugin: a notebook must not leave a process or a listening port behind.

Every process a notebook starts inherits ``COURSE_NBVAL_RUN`` from the kernel. Once
nbval has shut the kernel down (teardown of the notebook's last cell), any process
still carrying the marker is reported as an error of that notebook, with the ports it
listens on, and killed so the rest of the suite runs clean. (Ports are looked up per
leftover process, not machine-wide: other programs may open ports meanwhile.)
"""

from __future__ import annotations

import os
import time
import uuid

import psutil
import pytest

from tests.plugins import is_notebook_cell

MARKER = "COURSE_NBVAL_RUN"
GRACE_SECONDS = 5.0


def _listening_ports(proc: psutil.Process) -> list[str]:
    try:
        conns = proc.net_connections(kind="inet")
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        return []
    return [
        f"{c.laddr.ip}:{c.laddr.port}" for c in conns if c.status == psutil.CONN_LISTEN
    ]


def marked_processes(token: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(MARKER) == token:
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # One token per worker: another worker's running notebook is not a leak.
        os.environ[MARKER] = uuid.uuid4().hex
    config._nbval_guard_token = os.environ.setdefault(MARKER, uuid.uuid4().hex)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    result = yield
    if not is_notebook_cell(item) or (
        nextitem is not None and nextitem.parent is item.parent
    ):
        return result
    # The notebook's kernel has just been shut down: whatever is left is a leak.
    token = item.config._nbval_guard_token
    deadline = time.monotonic() + GRACE_SECONDS
    leftovers = marked_processes(token)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.2)
        leftovers = [p for p in leftovers if p.is_running() and p.status() != "zombie"]
    problems = []
    for proc in leftovers:
        try:
            ports = _listening_ports(proc)
            listening = f" (listening on {', '.join(ports)})" if ports else ""
            problems.append(
                f"process {proc.pid} still running{listening}: {' '.join(proc.cmdline())}"
            )
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    if problems:
        pytest.fail(
            f"{item.parent.nodeid} left things behind after its kernel stopped "
            "(stop them in a finally/try block or a context manager):\n  "
            + "\n  ".join(problems),
            pytrace=False,
        )
    return result
