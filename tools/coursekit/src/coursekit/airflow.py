"""Drive Airflow from the book's kernel: Airflow lives in its own venv
(``.venv-airflow``, ``make airflow``) and is only ever run as a subprocess.

``AirflowHome`` is a throwaway ``AIRFLOW_HOME`` (database, logs, configuration) in a
temporary directory: nothing goes to the user's home. One driver process per home
(``airflow_driver.py serve``) answers its requests (migrate, report, test, call, pod),
so Airflow starts once per home. Its API server is a ``ManagedProcess``; both stop
even when a cell fails.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from coursekit.runner import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[4]
VENV = ROOT / ".venv-airflow"
DAGS = ROOT / "examples" / "airflow" / "dags"
DRIVER = Path(__file__).with_name("airflow_driver.py")
MARKER = "AIRFLOW-DRIVER-JSON "


class AirflowError(RuntimeError):
    """An Airflow command failed; the message quotes the end of its output."""


def airflow_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        raise AirflowError(f"{VENV} is missing: build it with `make airflow`")
    return python


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class AirflowHome:
    """A temporary AIRFLOW_HOME with its database migrated, and the fil rouge's data
    directory as the Airflow variable ``resilia_data_dir``."""

    def __init__(self, dags: Path = DAGS, prefix: str = "airflow-home-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.dags = Path(dags)
        self.data = self.path / "resilia-data"
        self.servers: list[ManagedProcess] = []
        self.timeout = 600.0  # seconds for one request to the driver
        self._worker: subprocess.Popen | None = None
        self._requests = 0

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.path),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_VAR_RESILIA_DATA_DIR": str(self.data),
        }

    def run(self, *args: str, timeout: float = 300) -> str:
        """``airflow <args>``; its stdout, or AirflowError with the end of the output."""
        command = [str(VENV / "bin" / "airflow"), *args]
        airflow_python()
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise AirflowError(
                f"airflow {' '.join(args)} exited with {done.returncode}:\n"
                + _tail(done.stdout + done.stderr)
            )
        return done.stdout

    def start_driver(self) -> subprocess.Popen:
        """This home's driver process, started at the first request, then kept:
        Airflow's start-up is paid once per home, not once per step."""
        worker = self._worker
        if worker is not None and worker.poll() is None:
            return worker
        log = (self.path / "driver.err").open("ab")
        try:
            worker = subprocess.Popen(
                [str(airflow_python()), "-P", str(DRIVER), "serve"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=self.env, text=True, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        self._worker = worker
        atexit.register(self._stop_driver)
        self._read_answer(timeout=self.timeout)  # "ready"
        return worker

    def _driver(self, command: str, *args: str, env: dict | None = None) -> object:
        worker = self.start_driver()
        self._requests += 1
        request = {
            "id": self._requests, "command": command, "args": list(args),
            "env": env or {},
        }  # fmt: skip
        worker.stdin.write(json.dumps(request) + "\n")
        worker.stdin.flush()
        reply = self._read_answer(timeout=self.timeout, request=self._requests)
        if not reply["ok"]:
            raise AirflowError(
                f"the Airflow driver's {command} failed:\n"
                + _tail(reply["output"] + reply["error"])
            )
        return reply["result"]

    def _read_answer(self, timeout: float, request: int | None = None) -> dict:
        # An answer to an earlier request (one the user interrupted) is skipped.
        worker = self._worker
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([worker.stdout], [], [], 1.0)
            if not ready:
                continue
            line = worker.stdout.readline()
            if line.startswith(MARKER):
                reply = json.loads(line[len(MARKER) :])
                if reply.get("id") == request:
                    return reply
                continue
            if not line:  # the driver exited
                break
        self._stop_driver()
        raise AirflowError(
            f"the Airflow driver stopped answering (code {worker.returncode}):\n"
            + _tail((self.path / "driver.err").read_text(errors="replace"))
        )

    def _stop_driver(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        if worker.poll() is None:
            worker.stdin.close()  # the driver ends at the end of its input
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        worker.stdout.close()

    def migrate(self) -> AirflowHome:
        """Create the metadata database (what `airflow db migrate` does)."""
        self._driver("migrate")
        return self

    def report(self, dags: Path | None = None) -> dict:
        """What the scheduler sees in a DAG folder: DAGs, tasks, import errors."""
        return self._driver("report", str(dags or self.dags))

    def test(self, dag_id: str, *logical_dates: str) -> list[dict]:
        """Run the DAG once per logical date with ``dag.test()`` (no scheduler).

        Each run lists its task states and, in ``errors``, the exceptions its tasks
        raised (``DataValidationError: ...``), read from the run's log.
        """
        return self._driver("test", str(self.dags), dag_id, *logical_dates)

    def call(
        self,
        dag_id: str,
        task_id: str,
        *,
        dags: Path | None = None,
        env: dict | None = None,
        **kwargs,
    ) -> object:
        """Call one TaskFlow task's function with ``kwargs`` (JSON), outside a run,
        from the home's DAG folder or ``dags``; ``env`` sets (or, with None, removes)
        environment variables for this call only."""
        args = (str(dags or self.dags), dag_id, task_id, json.dumps(kwargs))
        return self._driver("call", *args, env=env)

    def pod(self, dag_id: str, task_id: str, logical_date: str) -> dict:
        """The pod spec a KubernetesPodOperator task renders for a date (offline)."""
        return self._driver("pod", str(self.dags), dag_id, task_id, logical_date)

    def api_server(self, timeout: float = 120) -> ManagedProcess:
        port = free_port()
        server = ManagedProcess(
            "airflow api-server",
            [
                VENV / "bin" / "airflow",
                "api-server",
                "-H",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=self.env | {"AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"},
            log_path=self.path / "logs" / "api-server.out",
            ready_url=f"http://127.0.0.1:{port}/api/v2/monitor/health",
            port=port,
        )
        self.servers.append(server)
        server.start(timeout)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self._stop_driver()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> AirflowHome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def api_client(home: AirflowHome, server: ManagedProcess) -> httpx.Client:
    """An HTTP client holding a JWT from the simple auth manager (user ``admin``).

    Airflow 3's simple auth manager writes the generated passwords to
    ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``; ``POST /auth/token``
    exchanges a user and its password for a token.
    """
    base = f"http://127.0.0.1:{server.port}"
    passwords = json.loads(
        (home.path / "simple_auth_manager_passwords.json.generated").read_text()
    )
    user, password = next(iter(passwords.items()))
    token = httpx.post(
        f"{base}/auth/token", json={"username": user, "password": password}, timeout=10
    )
    token.raise_for_status()
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
