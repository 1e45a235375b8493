"""Two network namespaces joined by a virtual cable, to demonstrate a firewall.

``NetnsPair`` creates a "server" and a "client" namespace (``ip netns``), joined by a
veth pair with private addresses, and runs commands and processes inside them; an
nftables ruleset can be loaded in either. Traffic between them never leaves this
machine, and the host's own network and firewall are not touched.

Everything is deleted on exit (processes first, then the namespaces, which takes the
veth pair with them), even when the body raises, when creation fails midway, or at
interpreter exit; namespaces left by a run that was killed are removed by the next
one. Names carry the process id and a random part, so parallel workers do not collide.
Needs iproute2's ``ip``, ``nft`` for rulesets, curl, and root: either the process has
CAP_NET_ADMIN, or passwordless ``sudo`` (GitHub's runners), which then runs the
namespace commands and the processes inside as root.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from coursekit.policy import lacks_capabilities, passwordless_sudo
from coursekit.runner import ManagedProcess

SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
ROLES = ("server", "client")
NAME_PREFIX = "ck-"


class NetnsUnavailable(RuntimeError):
    """This machine or this user cannot create network namespaces."""


class NetnsError(RuntimeError):
    """A command inside a namespace failed."""


class RulesetError(NetnsError):
    """An nftables ruleset file is missing or rejected by nft."""


def tool(name: str) -> str | None:
    """``name`` on the PATH, else in /usr/sbin (often off a normal user's PATH)."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)


def privileged() -> list[str] | None:
    """The prefix that runs a command with CAP_NET_ADMIN: none (root), passwordless
    sudo keeping the environment, or None when there is no way."""
    if not lacks_capabilities(["CAP_NET_ADMIN"]):
        return []
    sudo = passwordless_sudo()
    return [*sudo, "-E"] if sudo else None


def unavailable_reason() -> str | None:
    """Why namespaces cannot be created here, or None when they can."""
    missing = [name for name in ("ip", "nft", "curl") if tool(name) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install iproute2 nftables curl)"
    if privileged() is None:
        return (
            "creating network namespaces and loading nftables rules needs the "
            "CAP_NET_ADMIN capability (root) or passwordless sudo; this process (uid "
            f"{os.geteuid()}) has neither"
        )
    return None


class NetnsPair:
    """A "server" and a "client" namespace joined by a veth pair.

    ``with NetnsPair() as lab:`` or ``lab = NetnsPair().create()`` then ``lab.delete()``
    (also called at interpreter exit).
    """

    SERVER_ADDRESS = "10.77.0.1"
    CLIENT_ADDRESS = "10.77.0.2"
    PREFIX_LENGTH = 24

    def __init__(self) -> None:
        run_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self.names = {role: f"{NAME_PREFIX}{run_id}-{role}" for role in ROLES}
        self.addresses = {
            "server": self.SERVER_ADDRESS,
            "client": self.CLIENT_ADDRESS,
        }
        self.created: list[str] = []
        self.processes: list[ManagedProcess] = []
        self.sudo: list[str] = []

    # --- life cycle ---------------------------------------------------------------

    def create(self) -> NetnsPair:
        if reason := unavailable_reason():
            raise NetnsUnavailable(reason)
        self.sudo = privileged() or []
        remove_orphans(self.sudo)
        atexit.register(self.delete)
        try:
            for role in ROLES:
                self._ip("netns", "add", self.names[role])
                self.created.append(self.names[role])
            # Each end is created directly in its namespace: no name in the host's.
            self._ip(
                "link", "add", "veth0", "netns", self.names["server"], "type", "veth",
                "peer", "name", "veth0", "netns", self.names["client"],
            )  # fmt: skip
            for role in ROLES:
                ns = self.names[role]
                address = f"{self.addresses[role]}/{self.PREFIX_LENGTH}"
                self._ip("-n", ns, "address", "add", address, "dev", "veth0")
                self._ip("-n", ns, "link", "set", "veth0", "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        """Stop the processes started here, then delete the namespaces. Idempotent."""
        for process in self.processes:
            process.stop()
        self.processes.clear()
        for ns in reversed(self.created):
            self._kill_leftovers(ns)
            subprocess.run(
                [*self.sudo, tool("ip"), "netns", "delete", ns],
                capture_output=True,
                text=True,
            )
        self.created.clear()

    def __enter__(self) -> NetnsPair:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.delete()

    # --- inside the namespaces ----------------------------------------------------

    def command(self, role: str, args: Sequence[str | os.PathLike]) -> list[str]:
        """The command line that runs ``args`` inside the ``role`` namespace."""
        if role not in self.names:
            raise ValueError(f"unknown namespace {role!r}: expected one of {ROLES}")
        if self.names[role] not in self.created:
            raise NetnsError(f"the {role} namespace does not exist (call create())")
        # Commands by absolute path: sudo replaces PATH with its secure_path.
        program = str(args[0])
        if os.sep not in program:
            program = tool(program) or program
        inside = [program, *map(str, args[1:])]
        return [*self.sudo, tool("ip"), "netns", "exec", self.names[role], *inside]

    def run(
        self, role: str, *args: str | os.PathLike, check: bool = True, timeout=30
    ) -> subprocess.CompletedProcess:
        """Run ``args`` inside ``role``; with ``check``, a failure says what it printed."""
        done = subprocess.run(
            self.command(role, args), capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise NetnsError(
                f"in the {role} namespace, {' '.join(map(str, args))} exited with "
                f"code {done.returncode}: {(done.stderr or done.stdout).strip()}"
            )
        return done

    def start(
        self,
        role: str,
        name: str,
        args: Sequence[str | os.PathLike],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        ready_url: str | None = None,
        timeout: float = 60.0,
    ) -> ManagedProcess:
        """Start a process inside ``role``; it is stopped by ``delete()``.

        ``ready_url`` is polled with curl from inside the same namespace."""
        process = ManagedProcess(
            name, self.command(role, args), log_path=log_path, env=env
        )
        self.processes.append(process)
        process.start()
        if ready_url:
            self.wait_ready(role, process, ready_url, timeout)
        return process

    def wait_ready(
        self, role: str, process: ManagedProcess, url: str, timeout: float = 60.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.running:
                raise NetnsError(
                    f"{process.name} exited with code {process.process.returncode}:"
                    f"\n{process.tail()}"
                )
            probe = self.run(
                role, "curl", "-fsS", "-o", "/dev/null", "--max-time", "1", url,
                check=False,
            )  # fmt: skip
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        process.stop()
        raise NetnsError(
            f"{process.name} not ready at {url} after {timeout:.0f} s:\n{process.tail()}"
        )

    # --- nftables -----------------------------------------------------------------

    def load_ruleset(self, role: str, path: str | os.PathLike) -> None:
        """Load an nftables ruleset file inside ``role`` (checked first by nft)."""
        path = Path(path)
        if not path.is_file():
            raise RulesetError(f"{path}: no such ruleset file")
        done = self.run(role, "nft", "-f", path.resolve(), check=False)
        if done.returncode != 0:
            raise RulesetError(
                f"{path}: nft rejected the ruleset:\n{done.stderr.strip()}"
            )

    def counters(self, role: str) -> dict[str, dict[str, int]]:
        """The named nftables counters inside ``role``: name -> packets, bytes."""
        listing = json.loads(self.run(role, "nft", "-j", "list", "counters").stdout)
        return {
            entry["counter"]["name"]: {
                "packets": entry["counter"]["packets"],
                "bytes": entry["counter"]["bytes"],
            }
            for entry in listing["nftables"]
            if "counter" in entry
        }

    # --- helpers ------------------------------------------------------------------

    def _ip(self, *args: str) -> None:
        done = subprocess.run(
            [*self.sudo, tool("ip"), *args], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def _kill_leftovers(self, ns: str) -> None:
        """Processes still inside ``ns`` (a probe that hung...) would keep it alive."""
        pids = subprocess.run(
            [*self.sudo, tool("ip"), "netns", "pids", ns],
            capture_output=True,
            text=True,
        ).stdout.split()
        if pids and self.sudo:  # root's processes: kill them as root
            subprocess.run([*self.sudo, "kill", "-KILL", *pids], capture_output=True)
        for pid in pids if not self.sudo else ():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def existing() -> list[str]:
    """The namespaces this module created that still exist (all runs)."""
    ip = tool("ip")
    if ip is None:
        return []
    listing = subprocess.run([ip, "netns", "list"], capture_output=True, text=True)
    names = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(NAME_PREFIX)]


def remove_orphans(sudo: Sequence[str] = ()) -> list[str]:
    """Delete the namespaces of runs whose process is gone (a killed kernel)."""
    removed = []
    for name in existing():
        pid = name[len(NAME_PREFIX) :].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            subprocess.run(
                [*sudo, tool("ip"), "netns", "delete", name], capture_output=True
            )
            removed.append(name)
    return removed
