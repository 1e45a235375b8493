"""The Onyxia init script, run for real against a local clone in a temporary HOME."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / ".onyxia" / "init.sh"
NOTEBOOK = "notebooks/industrialisation.ipynb"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
}


@pytest.fixture(scope="module")
def source_repo(tmp_path_factory):
    """A git repository holding the working tree's notebooks, requirements and package."""
    repo = tmp_path_factory.mktemp("origin") / "cours"
    for part in ("notebooks", "requirements", "examples/resilia"):
        shutil.copytree(
            ROOT / part,
            repo / part,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
        )
    env = {**os.environ, **GIT_ENV}
    for cmd in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "course"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    return repo


@pytest.fixture(scope="module")
def python(tmp_path_factory):
    """A fresh venv that sees the suite's packages, so pip has nothing to download."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "course_suite.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "python"


def run_init(home, python, *args):
    env = {**os.environ, "HOME": str(home), "PYTHON": str(python)}
    env.pop("WORKSPACE", None)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_init_clones_installs_and_opens_the_notebook(tmp_path, source_repo, python):
    home = tmp_path / "home"
    result = run_init(home, python, NOTEBOOK, "main", source_repo.as_uri())
    assert result.returncode == 0, result.stderr
    clone = home / "work" / "cours"
    assert (clone / NOTEBOOK).is_file()
    shallow = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"], cwd=clone, capture_output=True, text=True
    )
    assert shallow.stdout.strip() == "true"

    config = (home / ".jupyter" / "jupyter_server_config.py").read_text()
    assert f"c.LabApp.default_url = '/lab/tree/cours/{NOTEBOOK}'" in config

    imported = subprocess.run(
        [str(python), "-c", "import resilia.config, sys; print(resilia.config.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(imported.stdout.strip()).is_relative_to(clone / "examples" / "resilia")

    # A relaunch keeps the student's work and does not pile up config lines.
    (clone / NOTEBOOK).write_text("my edits")
    again = run_init(home, python, NOTEBOOK, "main", source_repo.as_uri())
    assert again.returncode == 0, again.stderr
    assert "keeping it" in again.stdout
    assert (clone / NOTEBOOK).read_text() == "my edits"
    config = (home / ".jupyter" / "jupyter_server_config.py").read_text()
    assert config.count("c.LabApp.default_url") == 1


def test_unknown_notebook_is_a_clear_error(tmp_path, source_repo, python):
    result = run_init(
        tmp_path / "home", python, "notebooks/nope.ipynb", "main", source_repo.as_uri()
    )
    assert result.returncode == 1
    assert "notebooks/nope.ipynb not found" in result.stderr


def test_missing_arguments_print_usage(tmp_path, python):
    result = run_init(tmp_path / "home", python)
    assert result.returncode != 0
    assert "usage: init.sh NOTEBOOK" in result.stderr
