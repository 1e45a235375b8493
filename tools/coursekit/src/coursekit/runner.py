"""Run the fil rouge's processes locally (API, feature store, Prometheus...) and always
stop them.

Each process gets its own session, so interrupting a notebook cell does not kill it
by accident, and its output goes to a log file that is quoted when it fails to
start. ``stop()`` ends the whole process group; ``atexit`` calls it too, so a failed
cell or a restarted kernel does not leave a server behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


class ManagedProcess:
    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        log_path: Path,
        ready_url: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.name, self.args, self.log_path = (
            name,
            [str(a) for a in args],
            Path(log_path),
        )
        self.ready_url, self.env, self.cwd, self.port = ready_url, env, cwd, port
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ManagedProcess:
        if self.port is not None and not port_is_free(self.port):
            raise RuntimeError(
                f"{self.name}: port {self.port} is already in use on 127.0.0.1"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise RuntimeError(
                f"{self.name}: command not found: {self.args[0]}"
            ) from None
        finally:
            log.close()
        atexit.register(self.stop)
        if self.ready_url:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode}:\n{self.tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(
            self.log_path.read_text(errors="replace").splitlines()[-lines:]
        )

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
