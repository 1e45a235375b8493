"""Every notebook is paired with a jupytext MyST twin and ships its outputs."""

import jupytext
import nbformat
import pytest

from tests.helpers import CHAPTERS, NOTEBOOKS, ROOT


def _cells(notebook):
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebook found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_is_in_sync(path):
    twin = path.with_suffix(".md")
    assert twin.is_file(), (
        f"{path.name} has no jupytext twin {twin.name}: run `make sync`"
    )
    ipynb, md = jupytext.read(path), jupytext.read(twin)
    assert md.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert _cells(ipynb) == _cells(md), (
        f"{path.name} and {twin.name} differ: run `make sync` (the newer file wins)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stored_and_clean(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert any(c.outputs for c in code), (
        f"{path.name} has no stored output: run `make notebooks`"
    )
    errors = [
        i
        for i, c in enumerate(notebook.cells)
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors, f"{path.name} stores error outputs in cells {errors}"
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} was not executed top to bottom in one go: run `make notebooks`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_belongs_to_its_chapter(path):
    # Parallel shape: notebooks/<chapter>[-part].ipynb hangs under chapters/<chapter>.md
    chapter = ROOT / "chapters" / f"{path.stem.split('-')[0]}.md"
    assert chapter in CHAPTERS, (
        f"{path.name} has no chapter {chapter.relative_to(ROOT)}"
    )
    assert f"notebooks/{path.stem}" in chapter.read_text(encoding="utf-8"), (
        f"{chapter.name} does not link {path.name}"
    )
