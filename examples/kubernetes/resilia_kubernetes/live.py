"""A live deployment of the dev overlay, and its cleanup even when a step fails.

The commands are plain kubectl, as a student types them; :class:`Kubectl` only
builds them (namespace first, so that nothing lands elsewhere). :class:`LiveSession`
runs them, remembers every object it created and deletes them all in
:meth:`~LiveSession.close`, which also runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import copy
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import yaml

API = "resilia-api"
CRONJOB = "resilia-batch-scoring"
CONTAINERS = ("api", "feature-store", "score")  # the ones running the service image
LABEL = "app.kubernetes.io/part-of=resilia"


def onyxia_host(namespace: str) -> str:
    """The Ingress host of the dev overlay in ``namespace`` on SSP Cloud."""
    return f"resilia-{namespace}.user.lab.sspcloud.fr"


def for_namespace(
    objects: list[dict], image: str | None = None, host: str | None = None
) -> list[dict]:
    """The rendered objects, ready for ``kubectl apply -n``: no namespace of their
    own, the service's containers on ``image`` and the Ingress on ``host`` if given."""
    prepared = copy.deepcopy(objects)
    for obj in prepared:
        obj.get("metadata", {}).pop("namespace", None)
        spec = obj.get("spec", {})
        pod = (
            spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
            or spec.get("template", {}).get("spec")
            or {}
        )
        for container in pod.get("containers", []):
            if image and container["name"] in CONTAINERS:
                container["image"] = image
        if host and obj.get("kind") == "Ingress":
            spec["rules"][0]["host"] = host
            for tls in spec.get("tls", []):
                tls["hosts"] = [host]
    return prepared


def refs(objects: Iterable[dict]) -> list[str]:
    """``kind/name`` of each object, as kubectl delete takes them."""
    return [f"{obj['kind'].lower()}/{obj['metadata']['name']}" for obj in objects]


@dataclass(frozen=True)
class Kubectl:
    """kubectl commands, all in one namespace."""

    namespace: str
    binary: str = "kubectl"

    def __call__(self, *args: str) -> list[str]:
        return [self.binary, "--namespace", self.namespace, *args]

    def apply(self) -> list[str]:
        return self("apply", "--filename", "-")  # the manifests come on stdin

    def rollout_status(self, timeout: str = "180s") -> list[str]:
        return self("rollout", "status", f"deployment/{API}", f"--timeout={timeout}")

    def port_forward(self, port: int) -> list[str]:
        target = f"service/{API}"
        return self("port-forward", target, f"{port}:80", "--address=127.0.0.1")

    def logs(self, tail: int = 5) -> list[str]:
        return self("logs", f"deployment/{API}", f"--tail={tail}")

    def delete_pod(self, pod: str) -> list[str]:
        return self("delete", "pod", pod, "--wait=false")

    def scale(self, replicas: int) -> list[str]:
        return self("scale", f"deployment/{API}", f"--replicas={replicas}")

    def set_env(self, **variables: str) -> list[str]:
        pairs = [f"{key}={value}" for key, value in variables.items()]
        return self("set", "env", f"deployment/{API}", *pairs)

    def set_image(self, image: str) -> list[str]:
        return self("set", "image", f"deployment/{API}", f"api={image}")

    def history(self) -> list[str]:
        return self("rollout", "history", f"deployment/{API}")

    def undo(self) -> list[str]:
        return self("rollout", "undo", f"deployment/{API}")

    def run_cronjob(self, job: str) -> list[str]:
        return self("create", "job", job, f"--from=cronjob/{CRONJOB}")

    def wait_job(self, job: str, timeout: str = "180s") -> list[str]:
        condition = "--for=condition=complete"
        return self("wait", condition, f"job/{job}", f"--timeout={timeout}")

    def job_logs(self, job: str, tail: int = 5) -> list[str]:
        return self("logs", f"job/{job}", f"--tail={tail}")

    def delete(self, names: Iterable[str]) -> list[str]:
        # Waits until they are gone, so that a new apply never meets them half-deleted.
        wait = ["--ignore-not-found", "--wait=true", "--timeout=120s"]
        return self("delete", *wait, *names)


Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class LiveSession:
    """Runs kubectl commands and deletes, at the end, everything it created."""

    kubectl: Kubectl
    run: Runner = subprocess.run
    created: list[str] = field(default_factory=list)
    closed: bool = False

    def __post_init__(self) -> None:
        atexit.register(self.close)

    def __call__(self, command: list[str], input: str | None = None, check=True):
        result = self.run(
            command, input=input, capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr}"
            )
        return result

    def apply(self, objects: list[dict]) -> subprocess.CompletedProcess:
        # Remembered before the call: a half-applied set is deleted too.
        self.track(*refs(objects))
        return self(self.kubectl.apply(), input=yaml.safe_dump_all(objects))

    def track(self, *names: str) -> None:
        self.created += [name for name in names if name not in self.created]

    def close(self) -> list[str]:
        """Delete what was created, newest first; once; failures do not stop it."""
        if self.closed or not self.created:
            self.closed = True
            return []
        self.closed = True
        names = list(reversed(self.created))
        self(self.kubectl.delete(names), check=False)
        return names

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
