"""Paths shared by the repository-level tests (tool policy: coursekit.policy)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
SITE = ROOT / "_build" / "html"
TEACHING_CHAPTERS = [
    "industrialisation",
    "observabilite",
    "securite",
    "reglementation",
    "tests",
    "audit",
    "documentation",
    "airflow",
    "devops",
    "docker",
    "kubernetes",
    "spark",
]
"""The chapters that teach (with exercises, glossary links), in the book's order."""
