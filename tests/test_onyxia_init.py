"""The Onyxia init script, piped to `bash -s --` as onyxia-init.sh does, in a temporary
HOME, with the arguments decoded from the book's own launch link.

The "image" here is the suite's Python (it already has every package), so these tests
run in seconds; tests/test_onyxia_pod.py runs the same script in an Onyxia-like root
with Python 3.13.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import onyxia_launch
import pytest

from tests.helpers import ROOT
from tests.onyxia_launcher import parse_launch_url

SCRIPT = ROOT / ".onyxia" / "init.sh"
NOTEBOOK = "notebooks/industrialisation.ipynb"
REPOSITORY = "m2-imsd/mise-en-production"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
}


def onyxia_args(notebook=NOTEBOOK):
    """init.personalInitArgs of the book's link, split on whitespace like Onyxia."""
    config = SimpleNamespace(
        onyxia_url="https://datalab.sspcloud.fr",
        onyxia_catalog="ide",
        onyxia_chart="jupyter-python",
        onyxia_chart_versions={},
        onyxia_init_script=".onyxia/init.sh",
        onyxia_repository=REPOSITORY,
        onyxia_ref="main",
    )
    launch = parse_launch_url(onyxia_launch.launch_url(config, notebook))
    return launch.value("init.personalInitArgs").split()


def make_origin(parent, kernel_in=None):
    """A bare-ish git repository holding the notebooks, requirements and package."""
    repo = parent / "origin" / "mise-en-production.git"
    repo.mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", repo)
    for part in ("notebooks", "requirements", "examples", "tools/coursekit"):
        shutil.copytree(
            ROOT / part,
            repo / part,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"),
        )
    if kernel_in is not None:
        (repo / "requirements" / "kernel.in").write_text(kernel_in)
    env = {**os.environ, **GIT_ENV}
    for cmd in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["commit", "-q", "-m", "c"],
    ):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    return repo


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    return make_origin(tmp_path_factory.mktemp("git"))


def run_init(home, origin, args, extra_env=None, script=None):
    """`curl … | bash -s -- $ARGS`, with github.com redirected to the local origin."""
    home.mkdir(parents=True, exist_ok=True)
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        f'[url "{origin.parent.as_uri()}/"]\n\tinsteadOf = https://github.com/m2-imsd/\n'
    )
    env = {
        **os.environ,
        "HOME": str(home),
        "PYTHON": sys.executable,
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        **(extra_env or {}),
    }
    for var in ("WORKSPACE", "XDG_DATA_HOME", "VIRTUAL_ENV"):
        env.pop(var, None)
    start = time.monotonic()
    result = subprocess.run(
        ["bash", "-s", "--", *args],
        input=script if script is not None else SCRIPT.read_bytes(),
        capture_output=True,
        env=env,
        cwd=home,
        timeout=600,
    )
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    result.seconds = time.monotonic() - start
    return result


def default_url(home):
    config = (home / ".jupyter" / "jupyter_server_config.py").read_text()
    lines = [line for line in config.splitlines() if "c.LabApp.default_url" in line]
    assert len(lines) == 1, config
    return lines[0].split("'")[1]


def kernel(home):
    path = home / ".local/share/jupyter/kernels/python3/kernel.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def started(tmp_path_factory, origin):
    home = tmp_path_factory.mktemp("home")
    freeze = [sys.executable, "-m", "pip", "freeze", "--all"]
    before = subprocess.run(freeze, capture_output=True, text=True, check=True).stdout
    first = run_init(home, origin, onyxia_args())
    after = subprocess.run(freeze, capture_output=True, text=True, check=True).stdout
    return SimpleNamespace(
        home=home, first=first, image_before=before, image_after=after
    )


def test_first_start_clones_installs_and_opens_the_notebook(started):
    assert started.first.returncode == 0, started.first.stderr
    clone = started.home / "work" / "mise-en-production"
    assert (clone / NOTEBOOK).is_file()
    assert default_url(started.home) == f"/lab/tree/mise-en-production/{NOTEBOOK}"
    spec = kernel(started.home)
    assert spec["display_name"] == "Python 3 (ipykernel)"
    python = spec["argv"][0]
    assert Path(python).is_relative_to(started.home / "work")
    imported = subprocess.run(
        [python, "-c", "import resilia, ipykernel; print(resilia.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(imported.stdout.strip()).is_relative_to(clone / "examples" / "resilia")


def test_the_image_is_left_as_it_was(started):
    assert started.first.returncode == 0, started.first.stderr
    assert started.image_after == started.image_before


def test_second_start_installs_nothing_and_keeps_the_work(started, origin):
    clone = started.home / "work" / "mise-en-production"
    (clone / NOTEBOOK).write_text("my edits")
    # A restart: everything outside ~/work comes back from the image.
    shutil.rmtree(started.home / ".jupyter")
    shutil.rmtree(started.home / ".local")
    again = run_init(started.home, origin, onyxia_args())
    assert again.returncode == 0, again.stderr
    assert "keeping it" in again.stdout and "nothing to install" in again.stdout
    assert (clone / NOTEBOOK).read_text() == "my edits"
    assert default_url(started.home) == f"/lab/tree/mise-en-production/{NOTEBOOK}"
    assert kernel(started.home)["argv"][0].startswith(str(started.home / "work"))
    print(f"first start {started.first.seconds:.1f} s, second {again.seconds:.1f} s")


def test_a_failed_install_still_opens_the_notebook_and_says_why(tmp_path):
    origin = make_origin(tmp_path, kernel_in="course-book-no-such-package\n")
    home = tmp_path / "home"
    result = run_init(home, origin, onyxia_args(), {"PIP_NO_INDEX": "1"})
    assert result.returncode == 1
    assert "installation failed" in result.stderr
    assert default_url(home) == f"/lab/tree/mise-en-production/{NOTEBOOK}"
    assert "mise-en-production-installation.log" in kernel(home)["display_name"]
    log = home / "work" / "mise-en-production-installation.log"
    assert "ERROR" in log.read_text()  # pip's own words, kept for the student


def test_unknown_notebook_is_a_clear_error(tmp_path, origin):
    home = tmp_path / "home"
    result = run_init(home, origin, ["notebooks/nope.ipynb", "main", REPOSITORY])
    assert result.returncode == 1
    assert "notebooks/nope.ipynb not found" in result.stderr
    assert default_url(home) == "/lab/tree/mise-en-production"


@pytest.mark.parametrize("args", [[], ["a"], ["a", "b", "c", "d"]])
def test_wrong_arguments_print_usage(tmp_path, origin, args):
    result = run_init(tmp_path / "home", origin, args)
    assert result.returncode == 2
    assert "usage: init.sh NOTEBOOK" in result.stderr


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_download_cut_short_runs_nothing(tmp_path, origin, keep):
    script = SCRIPT.read_bytes()
    home = tmp_path / "home"
    run_init(home, origin, onyxia_args(), script=script[: int(len(script) * keep)])
    assert not (home / ".jupyter").exists() and not (home / "work").exists()
