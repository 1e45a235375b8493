"""Exercises in the notebooks: checks that speak French, and the student copies.

An exercise in a notebook is four cells, in this order:

- the statement, in markdown (an ``{admonition}`` of class ``exercice``);
- the stub, what the student starts from: a code cell tagged ``stub`` and
  ``remove-cell`` (not on the site; the test suite runs it before the solution);
- the solution: a code cell tagged ``solution`` and ``hide-cell`` (folded on the site
  behind "Voir la solution"), with ``course: {exercise: <chapter>-<name>}`` in its
  metadata, and ``region: <file>`` when the exercise changes a file of the fil rouge;
- a check cell tagged ``check`` that calls the functions below: it says, in French,
  whether the answer is right and, if not, what is wrong.

The student copy of a notebook (``notebooks/exercices/<name>.ipynb``) is the notebook
without its solution cells, outputs cleared. ``python -m coursekit.exercises
notebooks/*.ipynb`` writes them (``make notebooks`` does it).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Iterable
from copy import deepcopy
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat

STUB, SOLUTION, CHECK = "stub", "solution", "check"
STUB_TAGS = {STUB, "remove-cell"}
SOLUTION_TAGS = {SOLUTION, "hide-cell"}
STUDENT_FOLDER = "exercices"


class ExerciseError(AssertionError):
    """A check that failed: the message tells the student what is wrong."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a stack trace that would bury the message.
        return [f"✗ {self}"]


def check(condition: bool, message: str) -> None:
    """Fail with ``message`` (in French) unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message)


def check_done(value: Any, what: str) -> None:
    """Fail while ``value`` is still the stub's ``...`` (or None)."""
    if value is Ellipsis or value is None:
        raise ExerciseError(f"{what} n'est pas encore écrit : remplacez les « ... ».")


def check_equal(
    actual: Any,
    expected: Any,
    what: str,
    *,
    tolerance: float = 0.0,
    hint: str = "",
) -> None:
    """Fail unless ``actual`` equals ``expected`` (within ``tolerance`` for numbers)."""
    check_done(actual, what)
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        ok = isinstance(actual, int | float) and math.isclose(
            float(actual), float(expected), rel_tol=0.0, abs_tol=tolerance
        )
    else:
        ok = actual == expected
    if not ok:
        message = f"{what} vaut {actual!r}, ce n'est pas la valeur attendue."
        raise ExerciseError(f"{message} {hint}".strip())


def passed(message: str) -> None:
    """Tell the student the exercise is solved."""
    print(f"✓ {message}")


# --- Exercises that change the fil rouge's code -----------------------------------

ROOT_VARIABLE = "COURSEKIT_FIL_ROUGE"
"""Where the fil rouge's files are read from (default: the repository of this notebook).
The test suite points it at a checkpoint copy to prove that a check fails there."""


def repository_root() -> Path:
    """The repository that holds ``examples/``: $COURSEKIT_FIL_ROUGE, or the first
    parent of the current folder that has one (notebooks run from ``notebooks/``)."""
    if os.environ.get(ROOT_VARIABLE):
        return Path(os.environ[ROOT_VARIABLE])
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "examples").is_dir():
            return folder
    raise ExerciseError(
        "dossier examples/ introuvable : ouvrez le notebook depuis le dépôt du cours."
    )


def load_source(relative: str) -> ModuleType:
    """The module in the fil rouge's file ``relative``, read from disk right now.

    A check calls this rather than ``import``: the student's latest edit counts,
    without restarting the kernel.
    """
    path = repository_root() / relative
    if not path.is_file():
        raise ExerciseError(f"{relative} est introuvable dans {path.parent}.")
    name = f"exercise_{path.stem}_{abs(hash(path.read_bytes()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ExerciseError(
            f"{relative}, ligne {exc.lineno} : le code n'est pas du Python valide ({exc.msg})."
        ) from None
    return module


def show_region(relative: str, ident: str) -> None:
    """Print the reference code of exercise ``ident`` in the fil rouge's file."""
    from coursekit.checkpoint import regions

    text = (repository_root() / relative).read_text(encoding="utf-8")
    region = regions(text).get(ident)
    if region is None:
        raise ExerciseError(f"pas de zone d'exercice {ident!r} dans {relative}.")
    print(f"# {relative}")
    print(region.body, end="")


# --- Notebooks ------------------------------------------------------------------


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def exercises(notebook) -> dict[str, dict]:
    """``{id: {"stub": index, "solution": index, "check": index, "region": path}}``.

    Raises ValueError, naming the cell, when the cells are not in the expected shape.
    """
    found: dict[str, dict] = {}
    stub = current = None
    for index, cell in enumerate(notebook.cells):
        tags = _tags(cell)
        if STUB in tags:
            if missing := STUB_TAGS - tags:
                raise ValueError(f"cell {index}: a stub also needs the tags {missing}")
            stub = index
        elif SOLUTION in tags:
            ident = cell.metadata.get("course", {}).get("exercise")
            if missing := SOLUTION_TAGS - tags:
                raise ValueError(
                    f"cell {index}: a solution also needs the tags {missing}"
                )
            if not ident:
                raise ValueError(f"cell {index}: a solution needs course.exercise")
            if stub != index - 1:
                raise ValueError(
                    f"cell {index}: exercise {ident} has no stub just before"
                )
            if ident in found:
                raise ValueError(f"cell {index}: exercise {ident!r} has two solutions")
            current = found[ident] = {
                "stub": stub,
                "solution": index,
                "check": None,
                "region": cell.metadata["course"].get("region"),
            }
            stub = None
        elif CHECK in tags:
            if current is None or current["check"] is not None:
                raise ValueError(f"cell {index}: a check cell follows a solution")
            current["check"] = index
    if stub is not None:
        raise ValueError(f"cell {stub}: a stub with no solution after it")
    for ident, parts in found.items():
        if parts["check"] is None:
            raise ValueError(f"exercise {ident!r} has no check cell after its solution")
    return found


def student_copy(notebook):
    """The notebook a student starts from: no solution cells, no outputs."""
    copy = nbformat.from_dict(deepcopy(notebook))
    copy.cells = [c for c in copy.cells if SOLUTION not in _tags(c)]
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if STUB in _tags(cell):
            cell.metadata["tags"] = ["exercise"]
    copy.metadata.setdefault("course", {})["student_copy"] = True
    return copy


def student_path(path: Path) -> Path:
    return path.parent / STUDENT_FOLDER / path.name


def write_student_copies(paths: Iterable[Path]) -> list[Path]:
    """Write the student copy of each notebook that has exercises; return their paths."""
    written = []
    for path in map(Path, paths):
        notebook = nbformat.read(path, as_version=4)
        if not exercises(notebook):
            continue
        target = student_path(path)
        target.parent.mkdir(exist_ok=True)
        nbformat.write(student_copy(notebook), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the student copies of notebooks."
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        for target in write_student_copies(args.notebooks):
            print(f"student copy: {target}")
    except (ValueError, OSError) as exc:
        print(f"coursekit.exercises: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
