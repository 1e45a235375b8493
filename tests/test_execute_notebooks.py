"""tools/execute_notebooks.py records what produced a notebook's outputs."""

import importlib.util
import platform
from importlib.metadata import version

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import ROOT

_spec = importlib.util.spec_from_file_location(
    "execute_notebooks", ROOT / "tools" / "execute_notebooks.py"
)
execute_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute_notebooks)


def test_imported_modules_skip_the_standard_library_and_magics():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nimport json, yaml"),
        nbformat.v4.new_code_cell("from bs4 import B\nimport nbformat.v4 as v4"),
        nbformat.v4.new_code_cell("from . import local\n!pip install pandas"),
        nbformat.v4.new_markdown_cell("import pandas"),
    ]
    assert execute_notebooks.imported_modules(nb) == ["bs4", "nbformat", "yaml"]


def test_execution_records_python_and_package_versions_from_the_kernel(tmp_path):
    nb = nbformat.v4.new_notebook()
    code = "import yaml\nimport nbformat\nprint('done')"
    nb.cells = [nbformat.v4.new_code_cell(code)]
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    execute_notebooks.run_with_provenance(client, nb)

    assert len(nb.cells) == 1 and nb.cells[0].outputs[0]["text"] == "done\n"
    provenance = nb.metadata["provenance"]
    assert provenance["python"] == platform.python_version()
    assert provenance["packages"] == {
        "nbformat": version("nbformat"),
        "PyYAML": version("PyYAML"),
    }
    assert provenance["executed"][:4].isdigit()


def test_a_failing_notebook_records_nothing():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise ValueError('boom')")]
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with pytest.raises(Exception, match="boom"):
        execute_notebooks.run_with_provenance(client, nb)
    assert "provenance" not in nb.metadata and len(nb.cells) == 1
