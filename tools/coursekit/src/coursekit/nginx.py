"""nginx (Debian package) as the fil rouge's reverse proxy, started unprivileged.

Everything nginx writes (pid, logs, temporary files) lives under a private prefix,
it stays in the foreground (``daemon off``) so that ``ManagedProcess`` stops it, and
it listens on 127.0.0.1 only. As root (CI), its worker runs as ``nobody``, and the
directories it writes to are given to that user.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from coursekit.runner import ManagedProcess, free_port

TEMP_DIRS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, often not on a normal user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/bin")


def version() -> str:
    run = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True)
    return run.stderr.strip().split("/")[-1]


def render(template: str, values: dict[str, str | int]) -> str:
    text = template
    for name, value in values.items():
        text = text.replace(f"@{name}@", str(value))
    if left := sorted(set(re.findall(r"@([A-Z_]+)@", text))):
        raise ValueError(f"nginx template: no value for {', '.join(left)}")
    return text


class Nginx(ManagedProcess):
    """nginx with ``template`` rendered into ``prefix``; ``https`` is its base URL."""

    def __init__(
        self,
        template: Path,
        prefix: Path,
        *,
        upstreams: list[int],
        cert: Path,
        key: Path,
        rate: int = 20,
        burst: int = 10,
        as_user: str | None = None,
    ) -> None:
        """``as_user`` (as root only): run nginx itself as that user, through
        ``runuser``; the prefix is given to that user."""
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.prefix = prefix
        self.http_port, self.https_port = free_port(), free_port()
        self.https = f"https://127.0.0.1:{self.https_port}"
        self.http = f"http://127.0.0.1:{self.http_port}"
        for sub in ("logs", *(f"tmp/{d}" for d in TEMP_DIRS)):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        user, wrapper = "", []
        if as_user is not None and os.geteuid() == 0:
            account = pwd.getpwnam(as_user)
            for path in [prefix, *prefix.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
            wrapper = ["runuser", "-u", as_user, "--"]
        elif os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for d in TEMP_DIRS:
                os.chown(prefix / "tmp" / d, nobody.pw_uid, nobody.pw_gid)
            for path in (prefix.parent, prefix, prefix / "tmp"):
                os.chmod(path, path.stat().st_mode | 0o711)  # traverse, not list
            user = f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};"
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;"
            for port in upstreams
        )
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(
            render(
                template.read_text(),
                {
                    "USER": user,
                    "PREFIX": prefix,
                    "HTTP_PORT": self.http_port,
                    "HTTPS_PORT": self.https_port,
                    "CERT": cert,
                    "KEY": key,
                    "UPSTREAMS": servers,
                    "RATE": rate,
                    "BURST": burst,
                },
            )
        )
        if wrapper:
            os.chown(self.conf, account.pw_uid, account.pw_gid)
        check = subprocess.run(
            [
                *wrapper,
                binary,
                "-t",
                "-p",
                str(prefix),
                "-e",
                str(prefix / "logs/error.log"),
                "-c",
                str(self.conf),
            ],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration:\n{check.stderr}")
        super().__init__(
            "nginx",
            [
                *wrapper,
                binary,
                "-p",
                prefix,
                "-e",
                prefix / "logs/error.log",
                "-c",
                self.conf,
            ],
            log_path=prefix / "logs" / "nginx.out",
            ready_url=f"{self.http}/nginx-health",
            port=self.https_port,
        )

    def log(self, name: str = "access") -> list[str]:
        path = self.prefix / "logs" / f"{name}.log"
        return path.read_text().splitlines() if path.exists() else []
