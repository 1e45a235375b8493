"""Checkpoints: put the fil rouge back as it stands at the start of a chapter.

A student who fell behind, or broke the fil rouge, runs::

    make checkpoint CHAPITRE=docker        # or: python -m coursekit.checkpoint docker

Every file of ``examples/`` that differs from the book's reference version is first
copied aside (``.checkpoints/<date>/``, the command prints where), then replaced by the
reference. Code that a chapter's exercises ask the student to write sits in the
reference between two markers::

    # exercise: docker-healthcheck
    ...the solution...
    # end of exercise

For the chapter asked and the ones after it, that code is replaced by a line saying
what to write; the chapters before keep their solutions.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# exercise: (?P<id>[a-z0-9-]+)[ \t]*$")
END = re.compile(r"^[ \t]*# end of exercise[ \t]*$")
BACKUP_FOLDER = ".checkpoints"


class CheckpointError(Exception):
    """A checkpoint that cannot be made; the message says why, in French."""


@dataclass(frozen=True)
class Region:
    ident: str
    indent: str
    first: int  # index of the line after the begin marker
    last: int  # index of the end marker
    body: str

    @property
    def chapter(self) -> str:
        return self.ident.split("-", 1)[0]


def regions(text: str) -> dict[str, Region]:
    """The exercise regions of a file's text, by id."""
    lines = text.splitlines(keepends=True)
    found: dict[str, Region] = {}
    begin = None
    for index, line in enumerate(lines):
        if match := BEGIN.match(line):
            if begin is not None:
                raise CheckpointError(
                    f"ligne {index + 1} : zone d'exercice non refermée"
                )
            begin = (match, index)
        elif END.match(line):
            if begin is None:
                raise CheckpointError(f"ligne {index + 1} : fin de zone sans début")
            match, start = begin
            body = "".join(lines[start + 1 : index])
            found[match["id"]] = Region(
                match["id"], match["indent"], start + 1, index, body
            )
            begin = None
    if begin is not None:
        raise CheckpointError(f"ligne {begin[1] + 1} : zone d'exercice non refermée")
    return found


def stub_regions(
    text: str, chapters: set[str] = frozenset(), ids: set[str] = frozenset()
) -> str:
    """``text`` with the regions of ``chapters`` (or with these ``ids``) replaced by a
    line saying what to do."""
    lines = text.splitlines(keepends=True)
    for region in sorted(regions(text).values(), key=lambda r: -r.first):
        if region.chapter in chapters or region.ident in ids:
            todo = (
                f"{region.indent}# À vous : exercice {region.ident}, "
                f"énoncé dans notebooks/{region.chapter}.ipynb\n"
            )
            lines[region.first : region.last] = [todo]
    return "".join(lines)


def chapter_order(root: Path) -> list[str]:
    """The chapters in the order of the book (the toctrees of index.md)."""
    index = (root / "index.md").read_text(encoding="utf-8")
    return re.findall(r"^chapters/([a-z0-9-]+)$", index, flags=re.MULTILINE)


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise CheckpointError(f"git {' '.join(args)} : {result.stderr.strip()}")
    return result.stdout


def reference(root: Path) -> str:
    """The book's version: the branch this clone follows, else its last commit."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", "@{upstream}").strip()
    except CheckpointError:
        return _git(root, "rev-parse", "HEAD").strip()


def checkpoint(
    root: Path, chapter: str, ref: str | None = None
) -> tuple[list[str], Path]:
    """Restore ``examples/`` as at the start of ``chapter``.

    Returns the restored paths and the folder where the previous versions were kept.
    """
    order = chapter_order(root)
    if chapter not in order:
        raise CheckpointError(
            f"chapitre inconnu {chapter!r} ; chapitres : {', '.join(order)}"
        )
    later = set(order[order.index(chapter) :])
    ref = ref or reference(root)
    backup = root / BACKUP_FOLDER / datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    restored = []
    for path in _git(root, "ls-tree", "-r", "--name-only", ref, "examples").split():
        wanted = stub_regions(_git(root, "show", f"{ref}:{path}"), later)
        target = root / path
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current == wanted:
            continue
        if current is not None:
            (backup / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, backup / path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted, encoding="utf-8")
        restored.append(path)
    return restored, backup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="checkpoint",
        description="Remettre le fil rouge dans l'état du début d'un chapitre.",
    )
    parser.add_argument("chapitre", help="par exemple : docker")
    parser.add_argument("--depot", type=Path, default=Path.cwd(), help="le dépôt")
    args = parser.parse_args(argv)
    root = args.depot.resolve()
    try:
        restored, backup = checkpoint(root, args.chapitre)
    except CheckpointError as exc:
        print(f"checkpoint : erreur : {exc}", file=sys.stderr)
        return 2
    if not restored:
        print(
            f"Le fil rouge est déjà dans l'état du début du chapitre {args.chapitre}."
        )
        return 0
    print(f"Fil rouge remis à l'état du début du chapitre {args.chapitre} :")
    for path in restored:
        print(f"  {path}")
    if backup.exists():
        print(
            f"Vos versions précédentes sont sauvegardées dans {backup.relative_to(root)}/"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
