"""A throw-away PostgreSQL server for the notebooks and tests: TLS only, loopback only.

``PostgresServer`` runs ``initdb`` in a directory of its own, gives the server a
certificate issued by a local certificate authority (``trustme``), installs the
configuration files it is given (``pg_hba.conf`` and an included ``resilia.conf``),
then starts ``postgres`` on a free port of 127.0.0.1 through ``ManagedProcess``, so it
is stopped even when a cell fails. PostgreSQL refuses to run as root: as root (CI), the
server runs as the unprivileged user ``nobody``, with its data directory in a fresh
directory of its own under the system's temporary folder (``workdir`` may sit where
``nobody`` cannot go), removed when the server stops.

    with PostgresServer(workdir, config_dir) as server:
        psycopg.connect(server.conninfo())
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from coursekit.policy import find_tool
from coursekit.runner import ManagedProcess, free_port

SERVER_NAME = "localhost"
"""The host name in the server's certificate (clients check it with verify-full)."""
SUPERUSER = "resilia_admin"
UNPRIVILEGED_USER = "nobody"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def bin_dir() -> Path:
    """The directory of ``initdb`` and ``postgres``: on the PATH, else Debian's newest."""
    if found := find_tool("initdb"):
        return found.resolve().parent
    raise PostgresUnavailable(
        "PostgreSQL server not installed (initdb not found on the PATH nor under "
        "/usr/lib/postgresql/*/bin); on Debian/Ubuntu: apt-get install postgresql"
    )


def server_version() -> str:
    """The major.minor version of the server binaries, e.g. "15.18"."""
    out = subprocess.run(
        [bin_dir() / "postgres", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"\d+\.\d+", out)
    return match.group(0) if match else out.strip()


class PostgresServer:
    """initdb + TLS certificate + ``postgres`` on a free loopback port, as a context."""

    def __init__(self, workdir: Path, config_dir: Path, *, ca=None) -> None:
        import trustme

        self.workdir = Path(workdir)
        self.config_dir = Path(config_dir)
        self.data_dir = self.workdir / "data"
        self._private_dir: Path | None = None
        self.ca = ca or trustme.CA(organization_name="resilia course CA")
        self.ca_file = self.workdir / "ca.pem"
        self.log_path = self.workdir / "postgres.log"
        self.password = secrets.token_urlsafe(24)
        self.port = free_port()
        self.process: ManagedProcess | None = None
        self._as_user: list[str] = []
        self._owner: pwd.struct_passwd | None = None

    # --- set-up -------------------------------------------------------------------
    def _run(self, *args: str | Path) -> None:
        run = subprocess.run(
            [*self._as_user, *map(str, args)], capture_output=True, text=True
        )
        if run.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed:\n{run.stderr[-2000:]}")

    def _chown(self, path: Path) -> None:
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _initdb(self) -> None:
        binaries = bin_dir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # postgres will not run as root
            self._owner = pwd.getpwnam(UNPRIVILEGED_USER)
            self._as_user = [
                "setpriv",
                f"--reuid={self._owner.pw_uid}",
                f"--regid={self._owner.pw_gid}",
                "--clear-groups",
                "--",
            ]
            self._private_dir = Path(tempfile.mkdtemp(prefix="coursekit-pg-"))
            self._private_dir.chmod(0o700)
            self._chown(self._private_dir)
            self.data_dir = self._private_dir / "data"
        pwfile = (self._private_dir or self.workdir) / "superuser.pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run(
                binaries / "initdb",
                "--pgdata",
                self.data_dir,
                "--username",
                SUPERUSER,
                "--pwfile",
                pwfile,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            )
        finally:
            pwfile.unlink()
        # The server's certificate and key, issued by the local CA for SERVER_NAME.
        cert = self.ca.issue_cert(SERVER_NAME)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert.cert_chain_pems[0].write_to_path(str(self.data_dir / "server.crt"))
        key = self.data_dir / "server.key"
        cert.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)  # postgres refuses a key that others can read
        for name in ("server.crt", "server.key"):
            self._chown(self.data_dir / name)
        for name in ("pg_hba.conf", "resilia.conf"):
            shutil.copyfile(self.config_dir / name, self.data_dir / name)
            self._chown(self.data_dir / name)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'resilia.conf'\n")

    # --- life cycle -----------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> PostgresServer:
        self._initdb()
        self.process = ManagedProcess(
            "postgres",
            [
                *self._as_user,
                bin_dir() / "postgres",
                "-D",
                self.data_dir,
                "-p",
                str(self.port),
            ],
            log_path=self.log_path,
            port=self.port,
        ).start()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        isready = [
            bin_dir() / "pg_isready",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--timeout",
            "1",
        ]
        while time.monotonic() < deadline:
            if not self.process.running:
                raise RuntimeError(f"postgres exited:\n{self.process.tail()}")
            if subprocess.run(isready, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres not ready after {timeout:.0f} s")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions are closed), then the process group."""
        if self.process is not None and self.process.running:
            try:
                os.kill(self.process.process.pid, signal.SIGINT)
                self.process.process.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            self.process.stop()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- clients --------------------------------------------------------------------
    def conninfo(
        self,
        user: str = SUPERUSER,
        password: str | None = None,
        dbname: str = "postgres",
        **options: str,
    ) -> str:
        """A libpq connection string: verify-full against the local CA by default."""
        params = {
            "host": SERVER_NAME,
            "hostaddr": "127.0.0.1",
            "port": str(self.port),
            "user": user,
            "password": self.password if password is None else password,
            "dbname": dbname,
            "sslmode": "verify-full",
            "sslrootcert": str(self.ca_file),
            "connect_timeout": "5",
            **options,
        }
        return " ".join(f"{key}='{value}'" for key, value in params.items())

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )
