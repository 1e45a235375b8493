"""The documentation chapter: the reference, the architecture diagram and the API
guide's examples stay true to the code."""

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit.runner import ManagedProcess, free_port
from resilia.config import load_settings
from resilia.model import save_model, train_from_settings
from tests.browser import built_site
from tests.helpers import ROOT

BIN = Path(sys.executable).parent
SCRIPT = ROOT / "examples/documentation/api-usage.sh"


def test_every_public_class_and_function_has_a_docstring():
    run = subprocess.run(
        [BIN / "ruff", "check", "--select", "D101,D103", "--no-cache",
         "--output-format", "concise", "examples/resilia/src"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout


@pytest.mark.parametrize("module", ["resilia.model", "resilia.schema"])
def test_the_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted >= 1 and result.failed == 0


def test_the_architecture_diagram_matches_the_code():
    run = subprocess.run(
        [sys.executable, "examples/documentation/architecture.py", "--check"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def test_the_reference_documents_every_module():
    modules = {
        ".".join(p.relative_to(ROOT / "examples/resilia/src").with_suffix("").parts)
        for p in (ROOT / "examples/resilia/src/resilia").rglob("*.py")
        if not p.name.startswith("_") or p.name == "__init__.py"
    }
    modules = {m.removesuffix(".__init__") for m in modules}
    reference = built_site() / "chapters/api-reference"
    pages = {
        ".".join(p.parent.relative_to(reference).parts)
        for p in reference.rglob("index.html")
    }
    assert modules <= pages, sorted(modules - pages)


def test_the_api_guide_examples_answer_as_documented(tmp_path):
    expected = re.findall(r"^# \[(\w+)\] expect: (\d{3})$", SCRIPT.read_text(), re.M)
    assert len(expected) >= 5
    api_port, store_port = free_port(), free_port()
    env = {
        "RESILIA_ENV": "dev",
        "RESILIA_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "RESILIA_API__PORT": str(api_port),
        "RESILIA_FEATURE_STORE__URL": f"http://127.0.0.1:{store_port}",
    }
    settings = load_settings(environ=env)
    save_model(*train_from_settings(settings), settings.model_path)
    store = ManagedProcess(
        "feature store", [BIN / "resilia", "feature-store"], env=env,
        log_path=tmp_path / "store.out", port=store_port,
        ready_url=f"http://127.0.0.1:{store_port}/health/ready",
    )  # fmt: skip
    api = ManagedProcess(
        "API", [BIN / "resilia", "serve"], env=env, log_path=tmp_path / "api.out",
        ready_url=f"http://127.0.0.1:{api_port}/health/ready", port=api_port,
    )  # fmt: skip
    with store, api:
        run = subprocess.run(
            ["bash", SCRIPT], capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "RESILIA_URL": f"http://127.0.0.1:{api_port}"},
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    statuses = re.findall(r" -> HTTP (\d{3})$", run.stdout, re.M)
    assert statuses == [status for _, status in expected], run.stdout
