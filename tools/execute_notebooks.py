"""Re-execute notebooks and store their outputs (``make notebooks``).

Each notebook is first synced with its jupytext twin, then executed from its own
folder. A notebook that fails is left as it was on disk, and the failing cell is
named.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TIMEOUT = 600


def execute(path: Path) -> bool:
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(path)], check=True)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as exc:
        index = next(
            (
                i
                for i, c in enumerate(nb.cells)
                if any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            "?",
        )
        print(f"FAILED {path} (cell {index}): {str(exc).splitlines()[-1] if str(exc) else exc}")
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
