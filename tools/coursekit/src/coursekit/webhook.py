"""A webhook receiver for Alertmanager, run inside the notebook.

It stands for the chat channel or on-call tool that would receive alerts in
production: it records every notification Alertmanager posts to ``/alerts``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AlertReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 19095) -> None:
        self.notifications: list[dict] = []
        self._condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payload = json.loads(body)
                except json.JSONDecodeError:
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._condition:
                    receiver.notifications.append(payload)
                    receiver._condition.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:  # keep the notebook quiet
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/alerts"

    def start(self) -> AlertReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call more than once."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def alerts(self) -> list[dict]:
        """Every alert received, flattened, in arrival order."""
        with self._condition:
            return [alert for n in self.notifications for alert in n.get("alerts", [])]

    def wait_for(self, alertname: str, status: str, timeout: float = 120.0) -> dict:
        """Block until an alert named ``alertname`` arrives with ``status``; return it."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for alert in self.alerts():  # the condition's lock is re-entrant
                    if (
                        alert["labels"].get("alertname") == alertname
                        and alert["status"] == status
                    ):
                        return alert
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no {status} {alertname} alert after {timeout:.0f} s"
                    )
                self._condition.wait(remaining)

    def __enter__(self) -> AlertReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
