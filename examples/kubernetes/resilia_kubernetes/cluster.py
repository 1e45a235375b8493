"""Is a Kubernetes cluster reachable from here, and as whom?

In a pod (Onyxia's JupyterLab, a CI job in a cluster), Kubernetes mounts the pod's
service account: a token, the cluster's CA and the namespace. Elsewhere, a kubeconfig
file (``KUBECONFIG`` or ``~/.kube/config``, as kind writes it) says where the API is.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The Kubernetes version whose OpenAPI schemas every manifest is validated against
# (versions.toml, [kubernetes]); the kind cluster of the workflow runs it too.
KUBERNETES_VERSION = "1.35.0"
IN_CLUSTER_API = "https://kubernetes.default.svc:443"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Cluster:
    api_server: str
    namespace: str
    service_account: str
    source: str


def service_account_from_token(token: str) -> str | None:
    """Name from the token's subject (system:serviceaccount:<ns>:<name>), unverified."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (IndexError, ValueError):
        return None
    subject = claims.get("sub", "") if isinstance(claims, dict) else ""
    return (
        subject.split(":")[-1] if subject.startswith("system:serviceaccount:") else None
    )


def find_cluster(
    environ: Mapping[str, str] | None = None,
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
    default_account: str = "default",
) -> tuple[Cluster | None, str]:
    """A reachable cluster and how it was found, or None and the reason.

    ``default_account`` is the service account reported when a kubeconfig (not a pod)
    gives access: the one the workloads would use.
    """
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
            service_account_from_token(token_file.read_text().strip()) or "default"
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
            api_server, namespace, default_account, f"kubeconfig {kubeconfig}"
        )
    try:
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as exc:  # any network or auth failure means: not reachable
        return None, f"{cluster.api_server} ({cluster.source}) is not reachable: {exc}"
    return (
        cluster,
        f"{cluster.api_server} ({cluster.source}), namespace {cluster.namespace}",
    )
