"""Exercises: well formed, at least three per chapter, student copies in sync,
checkpoints for every chapter. (The plugin tests/plugins/exercises.py proves, while
nbval runs each notebook, that every stub fails its check and every solution passes.)
"""

import ast
import subprocess
import sys

import nbformat
import pytest

from coursekit.checkpoint import chapter_order, regions
from coursekit.exercises import (
    CHECK,
    SOLUTION,
    STUB,
    exercises,
    student_copy,
    student_path,
)
from tests.helpers import NOTEBOOKS, ROOT, TEACHING_CHAPTERS


def _chapter_exercises(chapter):
    found = {}
    for path in NOTEBOOKS:
        if path.stem.split("-")[0] == chapter:
            found |= exercises(nbformat.read(path, as_version=4))
    return found


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_each_chapter_has_graded_exercises_one_changing_the_fil_rouge(chapter):
    found = _chapter_exercises(chapter)
    assert len(found) >= 3, f"{chapter}: {len(found)} exercises, at least 3 expected"
    assert any(e["region"] for e in found.values()), (
        f"{chapter}: no exercise changes the fil rouge's code (course.region)"
    )
    assert all(ident.startswith(f"{chapter}-") for ident in found), list(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_is_the_notebook_minus_its_solutions(path):
    notebook = nbformat.read(path, as_version=4)
    if not exercises(notebook):
        assert not student_path(path).exists(), f"{student_path(path)} has no source"
        return
    committed = student_path(path)
    assert committed.is_file(), f"no {committed.name}: run `make notebooks`"
    stored = nbformat.read(committed, as_version=4)
    assert stored == student_copy(notebook), (
        f"{committed} is stale: run `make notebooks`"
    )
    kept = [
        c.source for c in notebook.cells if SOLUTION not in c.metadata.get("tags", [])
    ]
    assert [c.source for c in stored.cells] == kept
    assert not any(c.get("outputs") for c in stored.cells)


def _names(source, kind):
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics
        return set()
    names = {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, kind)
    }
    if kind is ast.Store:
        names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_rest_of_the_notebook_does_not_depend_on_an_answer(path):
    # A student who skips an exercise must still be able to run what follows.
    notebook = nbformat.read(path, as_version=4)
    answered, problems = set(), []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if tags & {STUB, SOLUTION, CHECK}:
            answered |= _names(cell.source, ast.Store)
        elif used := answered & _names(cell.source, ast.Load):
            problems.append(f"cell {index} uses {sorted(used)}")
    assert not problems, "; ".join(problems)


def _all_regions():
    found = {}
    for path in (ROOT / "examples").rglob("*"):
        if path.is_file() and path.suffix in {
            ".py",
            ".toml",
            ".yaml",
            ".yml",
            ".j2",
            "",
        }:
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            for ident, region in regions(text).items():
                found[ident] = (path.relative_to(ROOT).as_posix(), region)
    return found


def test_every_region_belongs_to_an_exercise_and_back():
    declared = {}
    for chapter in TEACHING_CHAPTERS:
        for ident, parts in _chapter_exercises(chapter).items():
            if parts["region"]:
                declared[ident] = parts["region"]
    found = {ident: path for ident, (path, _) in _all_regions().items()}
    assert declared == found


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    target = tmp_path_factory.mktemp("clone") / "book"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def _checkpoint(clone, *args):
    return subprocess.run(
        [sys.executable, "-m", "coursekit.checkpoint", *args, "--depot", str(clone)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_checkpoint_restores_the_start_of_the_chapter_and_keeps_the_work(
    clone, chapter
):
    edited = clone / "examples" / "resilia" / "src" / "resilia" / "model.py"
    edited.write_text(edited.read_text() + "# my own work\n")
    result = _checkpoint(clone, chapter)
    assert result.returncode == 0, result.stderr
    assert "examples/resilia/src/resilia/model.py" in result.stdout
    backup = result.stdout.rsplit("sauvegardées dans ", 1)[1].strip()
    assert (
        (clone / backup / "examples/resilia/src/resilia/model.py")
        .read_text()
        .endswith("# my own work\n")
    )
    order = chapter_order(clone)
    for ident, (path, _) in _all_regions().items():
        text = (clone / path).read_text()
        region = regions(text)[ident]
        todo = f"À vous : exercice {ident}"
        if order.index(region.chapter) >= order.index(chapter):
            assert todo in region.body, f"{chapter}: {ident} should be left to do"
        else:
            assert todo not in region.body, f"{chapter}: {ident} should be solved"
    imported = subprocess.run(
        [sys.executable, "-c", "import resilia.model, resilia.schema"],
        env={"PYTHONPATH": str(clone / "examples" / "resilia" / "src")},
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    again = _checkpoint(clone, chapter)
    assert again.returncode == 0 and "déjà dans l'état" in again.stdout


def test_checkpoint_of_an_unknown_chapter_names_the_chapters(clone):
    result = _checkpoint(clone, "kubernetess")
    assert result.returncode == 2
    assert "chapitre inconnu 'kubernetess'" in result.stderr
    assert "industrialisation" in result.stderr


def _section(text, title):
    return (
        text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
        if title in text
        else ""
    )


@pytest.mark.parametrize("chapter", TEACHING_CHAPTERS)
def test_chapter_frames_the_learning(chapter):
    text = (ROOT / "chapters" / f"{chapter}.md").read_text(encoding="utf-8")
    assert "Ce que vous saurez faire" in text, "objectives"
    assert "Prérequis" in text, "prerequisites"
    assert "**Durée :**" in text, "duration"
    keep = [
        line
        for line in _section(text, "À retenir").splitlines()
        if line.startswith("- ")
    ]
    assert 5 <= len(keep) <= 8, f"À retenir: {len(keep)} ideas, 5 to 8 expected"
    assert f"make checkpoint CHAPITRE={chapter}" in _section(text, "Exercices")
    assert text.index("\n## Exercices\n") < text.index("\n## À retenir\n")
