"""The book on an Onyxia-like pod: the init script as onyxia-init.sh runs it, then the
notebooks, in Debian trixie's Python 3.13 as user onyxia (tests/onyxia_pod.py).

For each service (jupyter-python, jupyter-pyspark) the pod starts as Onyxia starts it:
``curl $PERSONAL_INIT_SCRIPT | bash -s -- $PERSONAL_INIT_ARGS``, the arguments taken
from the book's own launch link; then it restarts (only ~/work survives) and starts
again. Timings are printed (run with -s), not asserted.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from coursekit.policy import unavailable
from coursekit.runner import free_port
from tests import onyxia_pod
from tests.helpers import ROOT
from tests.onyxia_launcher import parse_launch_url
from tests.test_site import page

SERVICES = {
    "jupyter-python": "notebooks/industrialisation.ipynb",
    "jupyter-pyspark": "notebooks/spark.ipynb",
}


@pytest.fixture(scope="module")
def pod(tmp_path_factory):
    reason = onyxia_pod.missing_requirements()
    if reason:
        unavailable(reason)
    log_path = tmp_path_factory.mktemp("pod") / "build.log"
    with log_path.open("a") as log:
        try:
            pod = onyxia_pod.ensure(log)
        except Exception:
            print(log_path.read_text()[-5000:])
            raise
    print(log_path.read_text())
    return pod


def launch(notebook: str):
    """The book's launch link for ``notebook``, as the launcher decodes it."""
    html = page(f"notebooks/{Path(notebook).stem}.html")
    found = html.select("a.notebook-launch-onyxia")
    links = {a["data-notebook"]: a["href"] for a in found}
    # The notebook itself (its link is "solution" where a student copy exists).
    return parse_launch_url(links.get("notebook") or links["solution"])


@pytest.fixture(scope="module")
def origin(pod):
    """github.com/<repository> inside the pod: the working tree at the link's ref."""
    args = launch(SERVICES["jupyter-python"]).value("init.personalInitArgs").split()
    _, ref, repository = args
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo.git"
        for name in filter(None, tracked):
            source = ROOT / name.decode()
            if source.is_file():
                (repo / name.decode()).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, repo / name.decode())
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
        env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
        env["PATH"] = "/usr/bin:/bin"
        commands = (["init", "-q", "-b", ref], ["add", "-A"], ["commit", "-qm", "book"])
        for cmd in commands:
            subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
        target = pod.root / "srv" / "git" / f"{repository}.git"
        onyxia_pod.remove(target, pod.sudo)
        subprocess.run([*pod.sudo, "mkdir", "-p", str(target.parent)], check=True)
        subprocess.run([*pod.sudo, "cp", "-a", str(repo), str(target)], check=True)
    pod.run("chown -R 1000:100 /srv/git", user=False, check=True, cwd="/")
    # Plumbing: https://github.com/ is this local folder for git in the pod.
    pod.run(
        "git config --system url.file:///srv/git/.insteadOf https://github.com/",
        user=False,
        check=True,
        cwd="/",
    )
    return repository


@pytest.fixture(scope="module")
def init_server():
    """Serves the working tree's init script where raw.githubusercontent.com would."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(ROOT / ".onyxia")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/init.sh"
    server.shutdown()
    server.server_close()


def start(pod, image, url, args):
    """What onyxia-init.sh does with init.personalInit and init.personalInitArgs."""
    began = time.monotonic()
    result = pod.run(
        "bash -c 'curl $PERSONAL_INIT_SCRIPT | bash -s -- $PERSONAL_INIT_ARGS'",
        image,
        env={"PERSONAL_INIT_SCRIPT": url, "PERSONAL_INIT_ARGS": args},
    )
    result.seconds = time.monotonic() - began
    return result


def check_output(pod, image, command):
    return pod.run(command, image, check=True).stdout


@pytest.fixture(scope="module", params=list(SERVICES), ids=list(SERVICES))
def service(request, pod, origin, init_server):
    image, notebook = request.param, SERVICES[request.param]
    link = launch(notebook)
    assert link.chart == image
    args = link.value("init.personalInitArgs")
    pod.reset_home()
    python = f"/opt/{image}/bin/python"
    freeze = pod.freeze(image)
    image_check = pod.run(f"{python} -m pip check", image).stdout
    first = start(pod, image, init_server, args)
    after_first = pod.freeze(image)
    pod.restart()
    second = start(pod, image, init_server, args)
    print(
        f"\n{image}: first start {first.seconds:.1f} s, second {second.seconds:.1f} s"
        f"\n{first.stdout}{first.stderr}\n{second.stdout}{second.stderr}"
    )
    return SimpleNamespace(
        image=image,
        notebook=notebook,
        name=args.split()[2].split("/")[-1],
        python=python,
        freeze=freeze,
        image_check=image_check,
        first=first,
        after_first=after_first,
        second=second,
    )


def test_both_starts_succeed(service):
    assert service.first.returncode == 0, service.first.stdout + service.first.stderr
    assert service.second.returncode == 0, service.second.stdout + service.second.stderr
    assert "nothing to install" in service.second.stdout


def test_no_preinstalled_package_changed(pod, service):
    assert service.after_first == service.freeze
    assert pod.freeze(service.image) == service.freeze


def test_pip_check_reports_nothing_new(pod, service):
    kernel = kernel_python(pod, service)
    pip = f"{service.python} -m pip --python {kernel}"
    venv = pod.run(f"{pip} check", service.image).stdout
    new = set(venv.splitlines()) - set(service.image_check.splitlines())
    assert not {line for line in new if not line.startswith("No broken")}, venv


def kernel_python(pod, service):
    listed = check_output(pod, service.image, "jupyter kernelspec list --json")
    specs = json.loads(listed)
    spec = specs["kernelspecs"]["python3"]
    assert spec["resource_dir"].startswith(onyxia_pod.HOME)
    return spec["spec"]["argv"][0]


def test_only_the_images_pyspark(pod, service):
    kernel = kernel_python(pod, service)
    pip = f"{service.python} -m pip --python {kernel}"
    listed = check_output(pod, service.image, f"{pip} list")
    assert "pyspark" not in listed.lower()
    if service.image == "jupyter-pyspark":
        code = "import pyspark; print(pyspark.__version__, pyspark.__file__)"
        found = check_output(pod, service.image, f"{kernel} -c '{code}'").split()
        assert found[0] == onyxia_pod.spark_version()
        assert found[1].startswith(onyxia_pod.SPARK_HOME)


def test_jupyterlab_opens_the_notebook(pod, service):
    port = free_port()
    lab = pod.run(
        f"jupyter lab --no-browser --ip 127.0.0.1 --port {port} "
        f"--IdentityProvider.token= --ServerApp.root_dir={onyxia_pod.WORK}",
        service.image,
        background=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    landed = response.url
                break
            except OSError:
                if time.monotonic() > deadline or lab.poll() is not None:
                    raise
                time.sleep(0.5)
        path = f"{service.name}/{service.notebook}"
        assert landed == f"{url}lab/tree/{path}"
        api = f"{url}api/contents/{path}?content=0"
        with urllib.request.urlopen(api, timeout=10) as response:
            assert json.load(response)["type"] == "notebook"
        # The notebook's kernel, as this server resolves it: the init's venv.
        with urllib.request.urlopen(f"{url}api/kernelspecs", timeout=10) as response:
            python3 = json.load(response)["kernelspecs"]["python3"]["spec"]
        assert python3["argv"][0] == kernel_python(pod, service)
        assert python3["argv"][0].startswith(f"{onyxia_pod.WORK}/")
    finally:
        subprocess.run([*pod.sudo, "kill", "--", f"-{lab.pid}"], check=False)
        lab.wait(timeout=30)


def test_the_notebook_executes_in_the_pod(pod, service):
    clone = f"{onyxia_pod.WORK}/{service.name}"
    began = time.monotonic()
    result = pod.run(
        f"jupyter nbconvert --to notebook --execute --output /tmp/executed.ipynb "
        f"--ExecutePreprocessor.timeout=900 {service.notebook}",
        service.image,
        cwd=clone,
        offline=True,  # notebooks need no network; this machine's ports stay apart
    )
    print(f"{service.notebook} in the pod: {time.monotonic() - began:.0f} s")
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
