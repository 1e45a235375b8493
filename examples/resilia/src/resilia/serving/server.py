"""Run a service with uvicorn: bind first, then start one or more workers.

- The socket is bound here, before anything starts, so a busy port is one clear
  error and "started" is only ever logged by a service that can be reached.
- ``api.workers`` processes share that socket: each runs its own event loop on its
  own core. Their metrics are summed through prometheus_client's multiprocess mode.
- Each request must arrive whole within ``api.read_timeout_s``: a client that sends
  half its headers or half its body does not hold a connection any longer.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from resilia.config import Settings
from resilia.serving.telemetry import MULTIPROCESS_DIR

_TIMEOUT_BODY = b'{"detail": "request not received in time"}'
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
) % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class ServeError(OSError):
    """The service cannot start (for example, its port is taken)."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline on receiving each request."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._read_timer = None
        self._arm()

    def _arm(self) -> None:
        if self._read_timer is None:
            timeout = getattr(self.config, "read_timeout_s", 5.0)
            self._read_timer = self.loop.call_later(timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def data_received(self, data: bytes) -> None:
        self._arm()
        super().data_received(data)
        if self.conn.their_state in RECEIVED:
            self._disarm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, shared by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said explicitly: asyncio sets TCP_NODELAY only on sockets whose
    # protocol is TCP, and without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(app, factory: str, settings: Settings, host: str, port: int) -> None:
    """Serve ``app`` (one worker) or ``factory`` (an import string, several workers)
    on ``host:port``."""
    sock = bind(host, port)
    workers = settings.api.workers
    config = uvicorn.Config(
        factory if workers > 1 else app,
        factory=workers > 1,
        workers=workers,
        http=GuardedH11Protocol,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        timeout_worker_healthcheck=60,  # a worker loads its model before it answers
    )
    config.read_timeout_s = settings.api.read_timeout_s
    try:
        if workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
            return
        # Workers re-read their settings from the environment.
        os.environ["RESILIA_ENV"] = settings.environment.value
        metrics_dir = tempfile.mkdtemp(prefix="resilia-metrics-")
        os.environ[MULTIPROCESS_DIR] = metrics_dir
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    finally:
        sock.close()
