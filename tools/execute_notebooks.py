"""Re-execute notebooks and store their outputs (``make notebooks``).

Each notebook is first synced with its jupytext twin, then executed from its own
folder. A notebook that fails is left as it was on disk, and the failing cell is
named.

A notebook that runs records, in ``metadata.provenance``, the Python version and the
versions of the packages it imports, as its kernel saw them (a last cell, removed
afterwards, asks the kernel), and the date: the site shows them under the page
(_ext/provenance.py).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TIMEOUT = 600

# Run by the kernel after the notebook: the versions of what the notebook imported.
PROBE = """\
import importlib.metadata as _metadata, json as _json, sys as _sys
_dists = _metadata.packages_distributions()
_versions = {{}}
for _module in {modules!r}:
    for _name in _dists.get(_module, [_module]):
        try:
            _versions[_metadata.metadata(_name)["Name"]] = _metadata.version(_name)
        except _metadata.PackageNotFoundError:
            pass
print(_json.dumps({{"python": _sys.version.split()[0], "packages": _versions}}))
"""


def imported_modules(nb) -> list[str]:
    """Top-level modules the notebook's code cells import, standard library aside."""
    modules = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        code = "\n".join(x for x in lines if not x.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return sorted(modules - set(sys.stdlib_module_names))


def run_with_provenance(client: NotebookClient, nb) -> None:
    """Execute ``nb`` with ``client``, then record what produced its outputs."""
    probe = nbformat.v4.new_code_cell(PROBE.format(modules=imported_modules(nb)))
    nb.cells.append(probe)
    try:
        client.execute()
    finally:
        nb.cells.remove(probe)
    streams = [o for o in probe.outputs if o.output_type == "stream"]
    text = "".join(o.text for o in streams)
    recorded = json.loads(text.strip().splitlines()[-1])
    packages = recorded["packages"]
    nb.metadata["provenance"] = {
        "python": recorded["python"],
        "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
        "executed": datetime.now(tz=UTC).date().isoformat(),
    }


def execute(path: Path) -> bool:
    subprocess.run(
        [sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)], check=True
    )
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.monotonic()
    try:
        run_with_provenance(client, nb)
    except CellExecutionError as exc:
        index = next(
            (
                i
                for i, c in enumerate(nb.cells)
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            "?",
        )
        print(
            f"FAILED {path} (cell {index}): {str(exc).splitlines()[-1] if str(exc) else exc}"
        )
        return False
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    # The .md twin keeps the same text; syncing refreshes jupytext's pairing.
    jupytext.write(jupytext.read(path), path.with_suffix(".md"), fmt="md:myst")
    print(f"ok     {path} ({time.monotonic() - start:.1f} s)")
    return True


def main(paths: list[str]) -> int:
    if not paths:
        print("no notebook given", file=sys.stderr)
        return 2
    results = [execute(Path(p)) for p in paths]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
