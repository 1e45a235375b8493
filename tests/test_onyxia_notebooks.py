"""What each notebook page tells a student about Onyxia, checked against what the
notebook asks of Onyxia (its metadata) and does (the Kubernetes calls it makes)."""

import re

import nbformat
import pytest

from tests.helpers import NOTEBOOKS, ROOT

BOX = ":::{admonition} Sur Onyxia ou sur un portable ?"
# Kubernetes' default ClusterRoles, least first (library-chart binds the one asked).
# view reads most objects but no Secret; edit also writes pods, services,
# configmaps and secrets; admin also writes Roles and RoleBindings.
ROLES = ("view", "edit", "admin")
NEEDS = {
    "edit": re.compile(
        r"\b(create|patch|delete|replace)_namespaced_(?!role)\w+|_secret\b"
    ),
    "admin": re.compile(r"_namespaced_role(_binding)?\b"),
}


def first_markdown(notebook):
    cells = nbformat.read(notebook, as_version=4).cells
    return next(cell.source for cell in cells if cell.cell_type == "markdown")


def onyxia(notebook):
    metadata = nbformat.read(notebook, as_version=4).metadata
    return metadata.get("course", {}).get("onyxia", {})


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_first_cell_says_what_runs_on_onyxia_and_what_needs_a_laptop(notebook):
    source = first_markdown(notebook)
    assert source.count(BOX) == 1, f"{notebook.name}: one '{BOX}' box in the first cell"
    box = source.split(BOX, 1)[1].split("\n:::", 1)[0]
    assert "- **Onyxia** :" in box and "- **Portable** :" in box
    chart = onyxia(notebook).get("chart", "jupyter-python")
    if chart != "jupyter-python":
        assert f"*{chart}*" in box, (
            f"{notebook.name}: the box names the {chart} service"
        )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_kubernetes_access_is_said_and_is_the_least_that_works(notebook):
    values = onyxia(notebook).get("values", {})
    box = first_markdown(notebook).split(BOX, 1)[-1]
    if values.get("kubernetes.enabled") is False:
        assert "kubernetes.enabled=false" in box
    role = values.get("kubernetes.role")
    if role is None:
        return
    assert values.get("kubernetes.enabled") is True, "a role needs kubernetes.enabled"
    assert f"**`{role}`**" in box and f"kubernetes.role={role}" in box
    # What the notebook and the helpers it calls do with the Kubernetes API.
    code = "\n".join(
        cell.source
        for cell in nbformat.read(notebook, as_version=4).cells
        if cell.cell_type == "code"
    )
    code += (ROOT / "examples/spark/resilia_spark/k8s.py").read_text()
    needed = "view"
    for candidate in ("edit", "admin"):
        if NEEDS[candidate].search(code):
            needed = candidate
    assert ROLES.index(role) == ROLES.index(needed), (
        f"{notebook.name} asks for {role!r}; what it does needs {needed!r}"
    )
