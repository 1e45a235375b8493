"""The scoring job on Kubernetes: find a cluster, build spark-submit, watch the pods.

The job code does not change: only the spark-submit command does. It is built from
``k8s/spark-k8s.conf``, the pod templates and the environment (namespace, service
account, image, S3 variables).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from resilia_spark.s3 import CREDENTIAL_VARS, s3a_conf

K8S_DIR = Path(__file__).resolve().parents[1] / "k8s"
PROPERTIES_FILE = K8S_DIR / "spark-k8s.conf"
DRIVER_TEMPLATE = K8S_DIR / "driver-pod-template.yaml"
EXECUTOR_TEMPLATE = K8S_DIR / "executor-pod-template.yaml"
RBAC_MANIFEST = K8S_DIR / "rbac.yaml"

KUBERNETES_VERSION = "1.33.0"  # schemas the manifests are validated against
IN_CLUSTER_API = "https://kubernetes.default.svc:443"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
APP_NAME = "resilia-scoring"
# Path of the job inside the image built from examples/spark/Dockerfile.
APP_FILE = "local:///opt/resilia/spark/score_customers.py"
DEFAULT_IMAGE = "resilia-spark:0.1.0"
S3_SECRET = "resilia-s3"  # nosec B105: the Secret's name, not its value


@dataclass(frozen=True)
class Cluster:
    api_server: str
    namespace: str
    service_account: str
    source: str


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


def _service_account_from_token(token: str) -> str | None:
    """Name from the token's subject (system:serviceaccount:<ns>:<name>), unverified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (IndexError, ValueError):
        return None
    subject = claims.get("sub", "")
    return (
        subject.split(":")[-1] if subject.startswith("system:serviceaccount:") else None
    )


def find_cluster(
    environ: Mapping[str, str] | None = None, sa_dir: Path = SERVICE_ACCOUNT_DIR
) -> tuple[Cluster | None, str]:
    """A reachable cluster and how it was found, or None and the reason."""
    environ = os.environ if environ is None else environ
    host = environ.get("KUBERNETES_SERVICE_HOST")
    token_file = sa_dir / "token"
    try:
        from kubernetes import client, config
    except ImportError:
        return None, "the `kubernetes` Python client is not installed"
    if host and token_file.is_file():
        loader = config.incluster_config.InClusterConfigLoader(
            token_filename=str(token_file),
            cert_filename=str(sa_dir / "ca.crt"),
            environ=environ,
        )
        try:
            loader.load_and_set()
        except config.ConfigException as exc:
            return None, f"in-cluster service account found but not usable: {exc}"
        namespace = (sa_dir / "namespace").read_text().strip()
        account = (
            _service_account_from_token(token_file.read_text().strip()) or "default"
        )
        api_server = client.Configuration.get_default_copy().host
        cluster = Cluster(api_server, namespace, account, "in-cluster")
    else:
        kubeconfig = environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        if not Path(kubeconfig.split(os.pathsep)[0]).is_file():
            return None, (
                "no in-cluster service account (KUBERNETES_SERVICE_HOST and "
                f"{token_file}) and no kubeconfig ({kubeconfig})"
            )
        try:
            config.load_kube_config(config_file=kubeconfig)
            _contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except Exception as exc:  # malformed kubeconfig
            return None, f"kubeconfig {kubeconfig} is not usable: {exc}"
        namespace = active.get("context", {}).get("namespace", "default")
        api_server = client.Configuration.get_default_copy().host
        cluster = Cluster(
            api_server, namespace, "resilia-spark", f"kubeconfig {kubeconfig}"
        )
    try:
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as exc:  # any network or auth failure means: not reachable
        return None, f"{cluster.api_server} ({cluster.source}) is not reachable: {exc}"
    return (
        cluster,
        f"{cluster.api_server} ({cluster.source}), namespace {cluster.namespace}",
    )


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
