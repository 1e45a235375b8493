"""An Onyxia-like pod on this machine, for tests/test_onyxia_pod.py.

What a jupyter-python or jupyter-pyspark service gives a student, rebuilt from the
public sources (InseeFrLab/images-datascience): Debian trixie's Python 3.13 (the
images build 3.13 from source), user ``onyxia`` (uid 1000, group users), HOME
``/home/onyxia``, working directory ``/home/onyxia/work``, the packages of the images'
requirement lists (the part the book touches), and for jupyter-pyspark Java 21 and
Spark at the version of the image, whose Python comes from ``SPARK_HOME`` through
``PYTHONPATH``. Spark's distribution is not downloadable here: PyPI's pyspark of the
same version provides the same jars and ``bin/`` under ``SPARK_HOME``.

The root is built once with debootstrap (root or passwordless sudo required) and
cached under ``~/.cache/course-book/onyxia-pod/<key>``, the key hashing everything
that built it. Commands run in a private mount namespace (``unshare``) chrooted in
it, so nothing stays mounted whatever happens.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from coursekit.policy import passwordless_sudo
from tests.helpers import ROOT

SUITE = "trixie"
PACKAGES = [
    "python3.13",
    "python3.13-venv",
    "ca-certificates",
    "git",
    "curl",
    "openjdk-21-jre-headless",
]
# The images' requirement lists (python-minimal, python-datascience, jupyter),
# limited to what the book's dependencies touch; mlflow and s3fs bring the pins
# (python-dateutil, botocore, pyarrow) that a careless install breaks.
MINIMAL = [
    "duckdb",
    "ipykernel",
    "nbclient",
    "nbformat",
    "numpy>=2.0.0",
    "pandas",
    "pyarrow",
    "requests",
    "s3fs",
    "uv",
]
DATASCIENCE = ["matplotlib", "mlflow", "scikit-learn", "scipy", "seaborn"]
JUPYTER = ["jupyterlab"]
IMAGES = {
    "jupyter-python": MINIMAL + DATASCIENCE + JUPYTER,
    "jupyter-pyspark": MINIMAL + JUPYTER,
}
USER, UID, GID = "onyxia", 1000, 100
HOME = "/home/onyxia"
WORK = f"{HOME}/work"
SPARK_TARGET = "/usr/local/lib/spark-dist"
SPARK_HOME = f"{SPARK_TARGET}/pyspark"
PIP_CACHE = "/var/cache/course-pip"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "course-book"


def spark_version() -> str:
    """Spark of the jupyter-pyspark image that examples/spark/Dockerfile builds on."""
    dockerfile = (ROOT / "examples" / "spark" / "Dockerfile").read_text()
    tag = r"ARG BASE_IMAGE=\S*onyxia-jupyter-pyspark:\S*-spark(\d+\.\d+\.\d+)"
    match = re.search(tag, dockerfile)
    if match is None:
        raise ValueError("examples/spark/Dockerfile: no jupyter-pyspark base image tag")
    return match.group(1)


def mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def privileged() -> list[str] | None:
    """The prefix that runs a command as root: none, sudo -n, or None if neither."""
    return [] if os.geteuid() == 0 else passwordless_sudo()


def missing_requirements() -> str | None:
    """Why the pod cannot be built here, or None."""
    if privileged() is None:
        return "building the Onyxia-like root needs root or passwordless sudo (chroot)"
    missing = [t for t in ("debootstrap", "unshare", "chroot") if not shutil.which(t)]
    if missing:
        return f"not installed: {', '.join(missing)}"
    return None


def cache_key() -> str:
    recipe = "\n".join(
        [
            inspect.getsource(build),
            SUITE,
            mirror(),
            spark_version(),
            *PACKAGES,
            *(f"{k}={v}" for k, v in IMAGES.items()),
        ]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


@dataclass
class Pod:
    root: Path
    sudo: list[str]

    def run(
        self,
        command: str,
        image: str = "jupyter-python",
        user: bool = True,
        env: dict[str, str] | None = None,
        cwd: str = WORK,
        timeout: float = 1800,
        check: bool = False,
        background: bool = False,
        offline: bool = False,
    ):
        """``command`` (bash) inside the pod, as onyxia with the image's environment.

        ``offline``: in a network namespace of its own, with only a loopback: what
        runs there neither reaches the network nor meets this machine's other ports.
        """
        environment = {**self.environment(image), **(env or {})}
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment.items())
        userspec = f"--userspec={UID}:{GID}" if user else ""
        inner = f"cd {shlex.quote(cwd)} && exec {command}" if user else command
        script = (
            ("ip link set lo up && " if offline else "")
            + f"mount -t proc proc {self.root}/proc && "
            f"mount --rbind /dev {self.root}/dev && "
            f"exec chroot {userspec} {self.root} "
            f"/usr/bin/env -i {assignments} /bin/bash -c {shlex.quote(inner)}"
        )
        argv = [*self.sudo, "unshare", "--mount", "--propagation", "private", "--fork"]
        if offline:
            argv.insert(len(self.sudo) + 1, "--net")
        argv += ["/bin/sh", "-c", script]
        if background:
            return subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"{command!r} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def environment(self, image: str) -> dict[str, str]:
        arch = "arm64" if os.uname().machine in {"aarch64", "arm64"} else "amd64"
        path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        env = {
            "HOME": HOME,
            "USER": USER,
            "LANG": "C.UTF-8",
            "PATH": f"/opt/{image}/bin:{path}" if image in IMAGES else path,
            "SHELL": "/bin/bash",
            # The images' Python is not a venv, so Jupyter looks in the user's folders
            # (~/.local/share/jupyter) before the environment's; ours is a venv, where
            # jupyter_core would look in the environment's first: keep the images' order.
            "JUPYTER_PREFER_ENV_PATH": "0",
            "PIP_CACHE_DIR": PIP_CACHE,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            # Plumbing of this machine (its HTTPS proxy's CA), not of Onyxia.
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        }
        if image == "jupyter-pyspark":
            lib = f"{SPARK_HOME}/python/lib"
            py4j = next((self.root / lib.lstrip("/")).glob("py4j-*-src.zip")).name
            env |= {
                "JAVA_HOME": f"/usr/lib/jvm/java-21-openjdk-{arch}",
                "SPARK_HOME": SPARK_HOME,
                "PYTHONPATH": f"{lib}/pyspark.zip:{lib}/{py4j}",
            }
            env["PATH"] = f"{SPARK_HOME}/bin:{env['PATH']}"
        return env

    def freeze(self, image: str) -> str:
        freeze = f"/opt/{image}/bin/python -m pip freeze --all"
        return self.run(freeze, image, check=True).stdout

    def reset_home(self) -> None:
        """A new service: an empty persistent volume and the image's HOME."""
        remove(self.root / HOME.lstrip("/"), self.sudo)
        self.run(
            f"install -d -o {UID} -g {GID} {HOME} {WORK}",
            user=False,
            check=True,
        )

    def restart(self) -> None:
        """A container restart: only ~/work survives."""
        home = self.root / HOME.lstrip("/")
        for entry in home.iterdir():
            if entry.name != "work":
                remove(entry, self.sudo)


def _sh(sudo, *argv, **kwargs):
    return subprocess.run([*sudo, *argv], check=True, **kwargs)


def remove(path: Path, sudo: list[str]) -> None:
    """``rm -rf`` that never crosses into a mount (a killed debootstrap's /proc)."""
    mounts = Path("/proc/mounts").read_text().splitlines()
    inside = [m.split()[1] for m in mounts if m.split()[1].startswith(f"{path}/")]
    for mount in sorted(inside, reverse=True):
        subprocess.run([*sudo, "umount", "--lazy", mount], check=False)
    _sh(sudo, "rm", "-rf", "--one-file-system", str(path))


def build(root: Path, sudo: list[str], log) -> None:
    """Build the pod's root at ``root`` (not cached: see ``ensure``)."""
    started = time.monotonic()
    # In its own mount namespace: the /proc it mounts goes away with it.
    _sh(
        sudo,
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(root),
        mirror(),
        stdout=log,
        stderr=log,
    )
    print(f"debootstrap: {time.monotonic() - started:.0f} s", file=log, flush=True)
    pod = Pod(root, sudo)
    install_ca(pod)
    pod.run(
        f"useradd {USER} --uid {UID} --gid {GID} --no-create-home --home-dir {HOME}"
        f" --shell /bin/bash && install -d -m 777 {PIP_CACHE}",
        user=False,
        check=True,
    )
    for image, requirements in IMAGES.items():
        started = time.monotonic()
        pip = f"/opt/{image}/bin/python -m pip install --quiet"
        pod.run(
            f"python3.13 -m venv /opt/{image} && {pip} --upgrade pip && "
            f"{pip} {' '.join(shlex.quote(r) for r in requirements)}",
            "build",
            user=False,
            check=True,
            cwd="/",
        )
        print(f"{image}: {time.monotonic() - started:.0f} s", file=log, flush=True)
    started = time.monotonic()
    pod.run(
        f"/opt/jupyter-pyspark/bin/python -m pip install --quiet --no-deps "
        f"--target {SPARK_TARGET} pyspark=={spark_version()}",
        "build",
        user=False,
        check=True,
        cwd="/",
    )
    print(f"spark: {time.monotonic() - started:.0f} s", file=log, flush=True)
    # The images let user onyxia write to their Python (fix-user-permissions.sh).
    _sh(sudo, "chown", "-R", f"{UID}:{GID}", *(str(root / "opt" / i) for i in IMAGES))


def install_ca(pod: Pod) -> None:
    """This machine's extra CA certificates (its HTTPS proxy), added at each use."""
    target = pod.root / "usr/local/share/ca-certificates"
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        _sh(pod.sudo, "cp", str(cert), str(target / cert.name))
    pod.run("update-ca-certificates >/dev/null", user=False, check=True, cwd="/")


def ensure(log) -> Pod:
    """The cached pod, built first if needed (one builder at a time: .ci/run starts
    the build early, in the background, and the tests wait for it)."""
    sudo = privileged()
    assert sudo is not None
    root = CACHE / "onyxia-pod" / cache_key() / "root"
    root.parent.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_if_needed(root, sudo, log)
    pod = Pod(root, sudo)
    install_ca(pod)
    return pod


def _build_if_needed(root: Path, sudo: list[str], log) -> None:
    if not (root.parent / "complete").is_file():
        # Roots built by another recipe are stale: about 2 GB each.
        for other in root.parent.parent.glob("*"):
            if other != root.parent:
                remove(other, sudo)
        root.parent.mkdir(parents=True, exist_ok=True)
        for stale in root.parent.glob("building-*"):
            remove(stale, sudo)
        building = root.parent / f"building-{os.getpid()}"
        building.mkdir(parents=True)
        build(building / "root", sudo, log)
        remove(root, sudo)
        (building / "root").rename(root)
        building.rmdir()
        (root.parent / "complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))


if __name__ == "__main__":
    # python -m tests.onyxia_pod: build (or find) the cached pod, for .ci/run.
    if reason := missing_requirements():
        sys.exit(f"onyxia pod: not built: {reason}")
    start = time.monotonic()
    ensure(sys.stdout)
    print(f"onyxia pod: ready in {time.monotonic() - start:.0f} s")
