"""pytest plugin: each exercise of a notebook is proved from both sides by nbval.

Before nbval runs a solution cell, the plugin runs the exercise's stub (what the
student copy holds instead) in the same kernel, then the check cell: it must fail
with ``ExerciseError`` and its French message. nbval then runs the solution and the
check as usual, which must pass. A check that a stub passes, or that fails with a
bare error instead of a message, fails the solution cell.

An exercise that changes a file of the fil rouge (``course.region``) is checked
against a copy of that file where its solution is replaced by the stub line, as
``make checkpoint`` leaves it for the student.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from queue import Empty

import pytest

from coursekit.checkpoint import stub_regions
from coursekit.exercises import (
    ROOT_VARIABLE,
    SOLUTION,
    STUB,
    exercises,
    repository_root,
)
from tests.plugins import is_notebook_cell

TIMEOUT = 120


def _run(kernel, source: str) -> list[dict]:
    """Execute ``source`` in the kernel; return its iopub messages."""
    msg_id = kernel.execute_cell_input(source, allow_stdin=False)
    messages = []
    while True:
        msg = kernel.get_message(stream="iopub", timeout=TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
        messages.append(msg)


def _errors(messages: list[dict]) -> list[dict]:
    return [m["content"] for m in messages if m["msg_type"] == "error"]


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # A stub is not a step of the notebook: it is run below, before its solution.
    stubs = [
        i
        for i in items
        if is_notebook_cell(i) and STUB in i.cell.metadata.get("tags", [])
    ]
    if stubs:
        items[:] = [i for i in items if i not in stubs]
        config.hook.pytest_deselected(items=stubs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    if is_notebook_cell(item) and SOLUTION in item.cell.metadata.get("tags", []):
        _stub_must_fail_its_check(item)
    return (yield)


def _stub_must_fail_its_check(item: pytest.Item) -> None:
    notebook = item.parent.nb
    ident = item.cell.metadata["course"]["exercise"]
    parts = exercises(notebook)[ident]
    stub = notebook.cells[parts["stub"]].source
    check = notebook.cells[parts["check"]].source
    kernel = item.parent.kernel
    region = parts["region"]
    with tempfile.TemporaryDirectory() as student_root:
        if region:
            _write_student_file(Path(student_root), region, ident)
            _run(kernel, f"import os; os.environ[{ROOT_VARIABLE!r}] = {student_root!r}")
        try:
            stub_errors = _errors(_run(kernel, stub))
            check_errors = _errors(_run(kernel, check))
        except Empty:
            pytest.fail(
                f"exercise {ident}: the stub or its check did not finish", False
            )
        finally:
            if region:
                _run(kernel, f"import os; os.environ.pop({ROOT_VARIABLE!r}, None)")
    if stub_errors:
        error = stub_errors[0]
        pytest.fail(
            f"exercise {ident}: the stub itself fails ({error['ename']}: "
            f"{error['evalue']}); a student must be able to run it",
            pytrace=False,
        )
    if not check_errors:
        pytest.fail(
            f"exercise {ident}: its check passes with the stub, so it cannot tell a "
            "student that the exercise is not done",
            pytrace=False,
        )
    error = check_errors[0]
    if error["ename"] != "ExerciseError":
        pytest.fail(
            f"exercise {ident}: with the stub, the check fails with {error['ename']}: "
            f"{error['evalue']} instead of an ExerciseError and its French message",
            pytrace=False,
        )
    item.user_properties.append(("stub_message", error["evalue"]))


def _write_student_file(student_root: Path, region: str, ident: str) -> None:
    source = (repository_root() / region).read_text(encoding="utf-8")
    student = stub_regions(source, ids={ident})
    if student == source:
        pytest.fail(f"exercise {ident}: no region {ident!r} in {region}", pytrace=False)
    target = student_root / region
    target.parent.mkdir(parents=True)
    target.write_text(student, encoding="utf-8")
