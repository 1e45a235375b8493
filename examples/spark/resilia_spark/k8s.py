"""The scoring job on Kubernetes: find a cluster, build spark-submit, watch the pods.

The job code does not change: only the spark-submit command does. It is built from
``k8s/spark-k8s.conf``, the pod templates and the environment (namespace, service
account, image, S3 variables).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from resilia_kubernetes.cluster import (  # the Kubernetes chapter's detection
    IN_CLUSTER_API,
    KUBERNETES_VERSION,
    SERVICE_ACCOUNT_DIR,
    Cluster,
)
from resilia_kubernetes.cluster import find_cluster as _find_cluster

from resilia_spark.s3 import CREDENTIAL_VARS, s3a_conf

__all__ = ["KUBERNETES_VERSION", "Cluster", "find_cluster", "submit_command"]

K8S_DIR = Path(__file__).resolve().parents[1] / "k8s"
PROPERTIES_FILE = K8S_DIR / "spark-k8s.conf"
DRIVER_TEMPLATE = K8S_DIR / "driver-pod-template.yaml"
EXECUTOR_TEMPLATE = K8S_DIR / "executor-pod-template.yaml"
RBAC_MANIFEST = K8S_DIR / "rbac.yaml"

APP_NAME = "resilia-scoring"
# Path of the job inside the image built from examples/spark/Dockerfile.
APP_FILE = "local:///opt/resilia/spark/score_customers.py"
DEFAULT_IMAGE = "resilia-spark:0.1.0"
S3_SECRET = "resilia-s3"  # nosec B105: the Secret's name, not its value


@dataclass(frozen=True)
class Target:
    """Where the job goes: everything that differs from one cluster to another."""

    api_server: str = IN_CLUSTER_API
    namespace: str = "resilia"
    service_account: str = "resilia-spark"
    image: str = DEFAULT_IMAGE


def read_properties(path: Path = PROPERTIES_FILE) -> dict[str, str]:
    """Parse a spark-defaults.conf style file (key, whitespace, value; # comments)."""
    props = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            props[key] = value.strip()
    return props


def submit_command(
    target: Target,
    app_args: list[str],
    environ: Mapping[str, str] | None = None,
    spark_submit: str = "spark-submit",
    extra_conf: Mapping[str, str] | None = None,
) -> list[str]:
    """The spark-submit command for ``target``; secrets never appear in it.

    S3 keys reach the pods as environment variables read from the ``resilia-s3``
    Secret; S3A's default credential chain reads them there.
    """
    environ = os.environ if environ is None else environ
    account = "spark.kubernetes.authenticate.driver.serviceAccountName"
    conf = {
        "spark.kubernetes.namespace": target.namespace,
        account: target.service_account,
        "spark.kubernetes.container.image": target.image,
        "spark.kubernetes.driver.podTemplateFile": str(DRIVER_TEMPLATE),
        "spark.kubernetes.executor.podTemplateFile": str(EXECUTOR_TEMPLATE),
        **s3a_conf(environ, credentials=False),
    }
    for var in CREDENTIAL_VARS:
        if environ.get(var):
            for role in ("driver", "executor"):
                conf[f"spark.kubernetes.{role}.secretKeyRef.{var}"] = (
                    f"{S3_SECRET}:{var}"
                )
    conf.update(extra_conf or {})
    command = [spark_submit, "--master", f"k8s://{target.api_server}"]
    command += ["--deploy-mode", "cluster", "--name", APP_NAME]
    command += ["--properties-file", str(PROPERTIES_FILE)]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, APP_FILE, *app_args]


def find_cluster(
    environ: Mapping[str, str] | None = None, sa_dir: Path = SERVICE_ACCOUNT_DIR
) -> tuple[Cluster | None, str]:
    """A reachable cluster, as the Kubernetes chapter finds it; with a kubeconfig the
    driver runs as ``resilia-spark`` (k8s/rbac.yaml)."""
    return _find_cluster(environ, sa_dir, default_account="resilia-spark")


def ensure_s3_secret(namespace: str, environ: Mapping[str, str] | None = None) -> bool:
    """Create or replace the ``resilia-s3`` Secret from the AWS_* variables."""
    from kubernetes import client

    environ = os.environ if environ is None else environ
    data = {var: environ[var] for var in CREDENTIAL_VARS if environ.get(var)}
    if not data:
        return False
    api = client.CoreV1Api()
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=S3_SECRET), string_data=data
    )
    try:
        api.replace_namespaced_secret(S3_SECRET, namespace, body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        api.create_namespaced_secret(namespace, body)
    return True


def submit_and_watch(
    command: list[str], namespace: str, run_id: str, timeout: float = 1800
):
    """Run spark-submit and record every pod phase change of this run.

    Returns spark-submit's return code, [(seconds, pod, role, phase)] and the
    driver's last log lines.
    """
    from kubernetes import client

    label = f"resilia-run={run_id}"
    labels = {
        f"spark.kubernetes.{r}.label.resilia-run": run_id
        for r in ("driver", "executor")
    }
    conf = [arg for k, v in labels.items() for arg in ("--conf", f"{k}={v}")]
    app = command.index(APP_FILE)
    # An argument list, no shell: spark-submit and the labels of this module.
    proc = subprocess.Popen([*command[:app], *conf, *command[app:]])  # nosec B603
    api, seen, events = client.CoreV1Api(), {}, []
    start = time.monotonic()
    try:
        while True:
            done = proc.poll() is not None
            pods = api.list_namespaced_pod(namespace, label_selector=label).items
            current = {
                p.metadata.name: (p.metadata.labels.get("spark-role"), p.status.phase)
                for p in pods
            }
            for name, state in current.items():
                if seen.get(name) != state:
                    events.append((round(time.monotonic() - start), name, *state))
            for name in set(seen) - set(current):
                events.append(
                    (round(time.monotonic() - start), name, seen[name][0], "Deleted")
                )
            seen = current
            if done or time.monotonic() - start > timeout:
                break
            time.sleep(2)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    drivers = [n for n, (role, _) in seen.items() if role == "driver"]
    log = (
        api.read_namespaced_pod_log(drivers[0], namespace, tail_lines=20)
        if drivers
        else ""
    )
    return proc.returncode, events, log
