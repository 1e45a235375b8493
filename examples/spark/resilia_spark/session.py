"""Start and stop the SparkSession the same way in a notebook, a test and a job.

The Java check runs first, so a machine without Java gets a clear message instead of
a py4j stack trace. Local defaults keep tests quiet and deterministic; on Kubernetes
the master, the image and the executors come from the configuration, not from here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIN_JAVA = 17
PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])
LOG4J_CONF = Path(PACKAGE_PARENT) / "conf" / "log4j2.properties"

INSTALL_HINT = (
    "Install a Java runtime (17 or newer) and make it visible to Spark: "
    "`sudo apt-get install openjdk-17-jre-headless` on Debian/Ubuntu, "
    "`brew install openjdk@17` on macOS, or set JAVA_HOME to an existing JDK. "
    "On Onyxia, the jupyter-pyspark service ships Java and Spark."
)

# PySpark 4.x warns on every pandas>=3 import; the notebooks check Spark's results
# against pandas and DuckDB instead of relying on that warning.
warnings.filterwarnings(
    "ignore",
    message="PySpark does not yet fully support pandas",
    category=FutureWarning,
)


class JavaNotFoundError(RuntimeError):
    """No usable Java runtime for Spark."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a stack trace.
        return [f"JavaNotFoundError: {self}"]


@dataclass(frozen=True)
class JavaRuntime:
    executable: str
    version: int
    description: str


def check_java(environ: Mapping[str, str] | None = None) -> JavaRuntime:
    """Find the java Spark launches (JAVA_HOME, else PATH) and check its version."""
    environ = os.environ if environ is None else environ
    java_home = environ.get("JAVA_HOME")
    if java_home:
        java = str(Path(java_home) / "bin" / "java")
        if not os.access(java, os.X_OK):
            raise JavaNotFoundError(
                f"Spark needs Java {MIN_JAVA}+, "
                f"but JAVA_HOME={java_home} has no bin/java. " + INSTALL_HINT
            )
    else:
        java = shutil.which("java", path=environ.get("PATH", ""))
        if java is None:
            raise JavaNotFoundError(
                f"Spark needs Java {MIN_JAVA}+, but no `java` was found "
                "(JAVA_HOME is unset and java is not on PATH). " + INSTALL_HINT
            )
    try:
        result = subprocess.run(  # nosec B603: the java found above, fixed argument
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise JavaNotFoundError(
            f"Spark cannot run {java}: {exc}. {INSTALL_HINT}"
        ) from None
    first_line = (result.stderr or result.stdout).strip().splitlines()[:1]
    match = re.search(
        r'version "(\d+)(?:\.(\d+))?', first_line[0] if first_line else ""
    )
    if result.returncode != 0 or match is None:
        raise JavaNotFoundError(f"`{java} -version` failed: {result.stderr.strip()}")
    major = int(match.group(1))
    if major == 1:  # Java 8 and older report "1.8"
        major = int(match.group(2) or 0)
    if major < MIN_JAVA:
        raise JavaNotFoundError(
            f"Spark 4 needs Java {MIN_JAVA}+, found Java {major} at {java}. "
            + INSTALL_HINT
        )
    return JavaRuntime(java, major, first_line[0])


def local_conf(ui: bool | None = None) -> dict[str, str]:
    """Defaults for local mode: quiet, deterministic, UI off unless SPARK_UI=1."""
    if ui is None:
        ui = os.environ.get("SPARK_UI", "0") == "1"
    return {
        "spark.ui.enabled": str(ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY", "2g"),
        "spark.driver.extraJavaOptions": (
            f"-Dlog4j2.configurationFile={LOG4J_CONF.as_uri()}"
        ),
    }


def get_spark(
    app_name: str = "resilia",
    master: str | None = "local[2]",
    conf: Mapping[str, str] | None = None,
):
    """Check Java, then build (or return) the SparkSession.

    ``master=None`` keeps what spark-submit or spark-defaults.conf says (Kubernetes on
    Onyxia's jupyter-pyspark); a local master adds the local defaults.
    """
    check_java()
    from pyspark.sql import SparkSession

    settings: dict[str, str] = {}
    if master is not None and master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers use this interpreter (the one where resilia is installed).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        settings.update(local_conf())
    settings.update(conf or {})
    _launch_jvm(app_name, master, settings)
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def jvm_log() -> Path:
    """Where the JVM this process launches writes its own output."""
    return Path(tempfile.gettempdir()) / f"spark-jvm-{os.getpid()}.log"


def _launch_jvm(app_name: str, master: str | None, settings: Mapping[str, str]) -> None:
    """Start PySpark's JVM with its output in jvm_log(), not in the notebook.

    The JVM inherits the kernel's stderr, and Jupyter shows what is written there
    in whichever cell runs at the time; Spark's own errors still reach Python as
    exceptions. Nothing to do when spark-submit already started the JVM.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    conf = SparkConf().setAppName(app_name).setAll(list(settings.items()))
    if master is not None:
        conf.setMaster(master)
    with open(jvm_log(), "ab") as log:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
    SparkContext._ensure_initialized(gateway=gateway)


def jvm_process():
    """The Popen of the JVM this Python process launched, or None."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    return getattr(gateway, "proc", None) if gateway is not None else None


def stop_spark(spark, timeout: float = 60) -> int | None:
    """Stop the session and wait for its JVM to exit; safe to call twice.

    ``spark.stop()`` alone keeps the JVM alive for a next session; closing its stdin
    makes PySpark's gateway exit. Returns the JVM's exit code (None if none ran).
    """
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:  # already stopped
        return None
    spark.stop()
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if proc is None:
        return None
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    if code == 0:
        jvm_log().unlink(missing_ok=True)
    return code
