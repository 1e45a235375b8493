"""Serving over a real socket: a request must arrive whole and in time."""

import socket
import time
from contextlib import contextmanager

import pytest
import uvicorn

from resilia.serving.app import create_app
from resilia.serving.server import GuardedH11Protocol, ServeError, bind
from resilia.testing import served_in_thread

READ_TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def server(dev_settings, trained):
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(
        create_app(dev_settings, *trained), http=GuardedH11Protocol, log_level="error"
    )
    config.read_timeout_s = READ_TIMEOUT_S
    with served_in_thread(config, sock) as address:
        yield address


@contextmanager
def connection(address):
    with socket.create_connection(address, timeout=5) as sock:
        yield sock


def _read_until_closed(sock) -> tuple[bytes, float]:
    started, data = time.perf_counter(), b""
    while chunk := sock.recv(4096):
        data += chunk
    return data, time.perf_counter() - started


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connects and says nothing
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        b"POST /predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b'content-length: 300\r\n\r\n{"plan":',  # body never finished
    ],
    ids=["silent", "half headers", "half body"],
)
def test_an_unfinished_request_is_cut_after_the_read_timeout(server, sent):
    with connection(server) as sock:
        sock.sendall(sent)
        answer, waited = _read_until_closed(sock)
    assert READ_TIMEOUT_S * 0.8 < waited < READ_TIMEOUT_S + 1
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_a_whole_request_on_a_kept_alive_connection_is_served(server):
    request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with connection(server) as sock:
        for _ in range(3):
            sock.sendall(request)
            answer = b""
            while not answer.endswith(b'{"status":"alive"}'):
                answer += sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200")
            time.sleep(READ_TIMEOUT_S * 0.6)  # idle between requests is not a slow read


def test_a_taken_port_is_a_clear_error(server):
    host, port = server
    with pytest.raises(ServeError, match=f"cannot listen on {host}:{port}"):
        bind(host, port)
