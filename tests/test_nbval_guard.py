"""The notebook suite fails loudly: it names the notebook and the cell, and catches leaks."""

import os
import subprocess
import sys

import nbformat

from tests.helpers import ROOT
from tests.plugins.nbval_guard import MARKER, marked_processes


def run_notebook(tmp_path, name, *sources, timeout=60, requires=(), ci=False):
    notebook = nbformat.v4.new_notebook()
    if requires:
        notebook.metadata["course"] = {"requires": list(requires)}
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = tmp_path / name
    nbformat.write(notebook, path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, MARKER: f"guard-test-{name}", "CI": "true" if ci else ""}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.plugins.nbval_guard",
            "-p",
            "tests.plugins.notebook_requirements",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            f"--nbval-cell-timeout={timeout}",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    return result, result.stdout + result.stderr


def test_failing_cell_names_notebook_and_cell(tmp_path):
    result, output = run_notebook(
        tmp_path, "broken.ipynb", "x = 1", "raise RuntimeError('boom in cell')"
    )
    assert result.returncode == 1
    assert "broken.ipynb::Cell 1" in output
    assert "boom in cell" in output


def test_hanging_cell_is_stopped_and_named(tmp_path):
    result, output = run_notebook(
        tmp_path, "hang.ipynb", "import time\ntime.sleep(120)", timeout=3
    )
    assert result.returncode == 1
    assert "hang.ipynb::Cell 0" in output
    assert "timed out" in output.lower() or "timeout" in output.lower()


def test_leftover_process_and_port_fail_the_notebook(tmp_path):
    # A daemon-like server in its own session: killing the kernel does not stop it.
    source = (
        "import subprocess, sys, time\n"
        "cmd = [sys.executable, '-m', 'http.server', '--bind', '127.0.0.1', '0']\n"
        "server = subprocess.Popen(cmd, start_new_session=True)\n"
        "time.sleep(1.5)"
    )
    result, output = run_notebook(tmp_path, "leaky.ipynb", source)
    assert result.returncode == 1
    assert "leaky.ipynb left things behind" in output
    assert "http.server" in output
    assert "listening on 127.0.0.1:" in output
    survivors = marked_processes("guard-test-leaky.ipynb")
    assert not survivors, "the guard must kill what it reports"


def test_clean_notebook_passes(tmp_path):
    result, output = run_notebook(
        tmp_path, "clean.ipynb", "x = 2", "assert x * 21 == 42"
    )
    assert result.returncode == 0, output
    assert "2 passed" in output


def test_notebook_needing_a_missing_tool_is_skipped_with_the_reason(tmp_path):
    result, output = run_notebook(
        tmp_path, "needs.ipynb", "x = 1", requires=["no-such-tool-xyz"], ci=False
    )
    assert result.returncode == 0, output
    assert "1 skipped" in output
    assert "needs.ipynb needs no-such-tool-xyz: not installed" in output


def test_in_ci_a_missing_tool_fails_the_notebook(tmp_path):
    result, output = run_notebook(
        tmp_path, "needs.ipynb", "x = 1", requires=["no-such-tool-xyz"], ci=True
    )
    assert result.returncode == 1
    assert "needs.ipynb needs no-such-tool-xyz: not installed" in output
    assert ".ci/install-system-packages" in output
