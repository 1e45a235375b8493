"""The CI files: GitHub workflows lint clean, and the README and .ci/run use the two commands."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def test_workflows_pass_actionlint():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert actionlint, "actionlint is missing from the venv (requirements/test.in)"
    result = subprocess.run(
        [actionlint, "-no-color", "-oneline"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _steps(name):
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_test_workflow_runs_make_test_with_pip_cache():
    steps = _steps("tests.yml")
    assert any(step.get("run") == "make test" for step in steps)
    setup = next(
        s for s in steps if s.get("uses", "").startswith("actions/setup-python")
    )
    assert setup["with"]["cache"] == "pip"


def test_pages_workflow_builds_and_deploys():
    steps = _steps("pages.yml")
    assert any(step.get("run") == "make html" for step in steps)
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in steps)


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert [c for c in commands if c] == ["make html", "make test"]


def test_ci_run_calls_make_test():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in lines


def test_pre_commit_config_is_valid_and_pinned_like_the_suite():
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    config = ROOT / ".pre-commit-config.yaml"
    subprocess.run([pre_commit, "validate-config", str(config)], check=True)
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    hooks = yaml.safe_load(config.read_text())["repos"][0]["hooks"]
    assert {h["id"] for h in hooks} >= {"ruff", "jupytext-sync", "trailing-whitespace"}
    for hook in hooks:
        for dep in hook.get("additional_dependencies", []):
            name, version = dep.split("==")
            if name in pins:
                assert pins[name].split(" ")[0].split(";")[0] == version, (
                    f"{hook['id']}: {dep}"
                )
