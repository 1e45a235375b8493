"""The layering of the code stays true: the import graph is checked, not remembered.

- no import cycle in resilia, resilia_kubernetes, resilia_spark or coursekit (lazy imports count);
- the core of resilia imports neither its serving part nor the course kit;
- the product (resilia, resilia_kubernetes, resilia_spark) never imports the course kit;
- the core imports and runs without the serving extra installed.
"""

import re
import subprocess
import sys

import grimp
import pytest

from tests.helpers import ROOT

PACKAGES = ("resilia", "resilia_kubernetes", "resilia_spark", "coursekit")
CORE = {
    "resilia",
    "resilia._names",
    "resilia.config",
    "resilia.data",
    "resilia.model",
    "resilia.schema",
    "resilia.scoring",
}
SERVING_EXTRA = (
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
    "opentelemetry",
)


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(*PACKAGES)


def _cycles(graph, package):
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    edges = {
        m: {n for n in graph.find_modules_directly_imported_by(m) if n in modules}
        for m in modules
    }
    found, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(graph, package):
    cycles = _cycles(graph, package)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_core_imports_only_the_core(graph):
    assert set(graph.modules) >= CORE, CORE - set(graph.modules)
    illegal = {
        (module, target)
        for module in CORE
        for target in graph.find_modules_directly_imported_by(module)
        if target.split(".")[0] in PACKAGES and target not in CORE
    }
    assert not illegal, f"the core imports beyond itself: {sorted(illegal)}"


@pytest.mark.parametrize("package", ["resilia", "resilia_kubernetes", "resilia_spark"])
def test_product_never_imports_the_course_kit(graph, package):
    chains = graph.find_shortest_chains(importer=package, imported="coursekit")
    assert not chains, f"{package} reaches the course kit: {chains}"


def test_core_works_without_the_serving_extra(tmp_path):
    blocker = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVING_EXTRA!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (serving extra absent)")
sys.meta_path.insert(0, Block())
import {", ".join(sorted(CORE))}
from resilia.cli import main
raise SystemExit(main(["settings", "--env", "prod"]))
"""
    result = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert '"environment": "prod"' in result.stdout


def test_nothing_edits_sys_path():
    # Packages are installed (make); nothing reaches code by editing the import path.
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.ipynb", "*.cfg", "*.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pattern = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+=\[]")
    edits = [
        f"{name}:{number}"
        for name in files
        if name != "tests/test_architecture.py"
        for number, line in enumerate(
            (ROOT / name).read_text(encoding="utf-8").splitlines(), start=1
        )
        if pattern.search(line)
    ]
    assert not edits, f"sys.path edited in {edits}"
